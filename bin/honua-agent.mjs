#!/usr/bin/env node
// Runs the compiled JavaScript in dist/ (`npm run build`, which `npm ci` runs through `prepare`) when it is up to
// date with the sources; otherwise, with HONUA_AGENT_FROM_SOURCE=1, or with workflow folders of one's own
// (HONUA_AGENT_WORKFLOWS: TypeScript written against src/, which the compiled program could neither load nor share
// modules with), the TypeScript sources through tsx, a runtime dependency. Compiled start-up skips tsx's transform of
// every module (`npm run bench:startup`).
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { distIsFresh } from "./dist.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (process.env.HONUA_AGENT_FROM_SOURCE !== "1" && !process.env.HONUA_AGENT_WORKFLOWS && distIsFresh(root)) {
  await import(pathToFileURL(join(root, "dist/src/cli.js")).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
