#!/usr/bin/env node
// `npm run build` (and `prepare`, which `npm ci` runs): compiles src/ and prompts/ to dist/ with tsc, then writes the
// stamp bin/honua-agent.mjs checks, so a stale or half-written dist/ is never run. Without TypeScript installed
// (`npm ci --omit=dev`) it says so and leaves dist/ absent: the command line then runs the sources through tsx.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { STAMP } from "./dist.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
let tsc;
try {
  tsc = join(dirname(createRequire(join(root, "package.json")).resolve("typescript/package.json")), "bin/tsc");
} catch {
  process.stderr.write("honua-agent build: TypeScript is not installed (dev dependencies omitted); the command line will run the sources through tsx\n");
  process.exit(0);
}
rmSync(join(root, "dist"), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root, stdio: "inherit" });
if (r.status !== 0 || !existsSync(join(root, "dist/src/cli.js"))) {
  rmSync(join(root, "dist"), { recursive: true, force: true });
  process.stderr.write(`honua-agent build: tsc failed (exit ${r.status ?? r.signal}); dist/ removed\n`);
  process.exit(1);
}
writeFileSync(join(root, STAMP), `${new Date().toISOString()}\n`);
