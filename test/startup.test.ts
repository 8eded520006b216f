import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { STAMP, distIsFresh } from "../bin/dist.mjs";
import { cli, engineSuite } from "./helpers.js";

const HOOK = new URL("./fixtures/import-log.mjs", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;

/** The packages (node_modules/<name>) a command's process imported. */
function packagesImported(home: string, args: string[]): { code: number | null; packages: Set<string> } {
  const log = join(home, "imports.log");
  writeFileSync(log, "");
  const r = cli(home, args, { NODE_OPTIONS: `--import ${HOOK}`, HONUA_IMPORTS_LOG: log });
  const packages = new Set(
    readFileSync(log, "utf8")
      .split("\n")
      .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1])
      .filter((p): p is string => !!p),
  );
  return { code: r.code, packages };
}

const CLOUD_AND_MODEL = ["ioredis", "@azure/storage-blob", "@aws-sdk/client-s3", "@aws-sdk/client-cloudwatch", "@aws-sdk/client-cloudfront", "@aws-sdk/client-elasticache", "@langchain/openai", "openai", "@slack/bolt", "@langchain/langgraph-checkpoint-postgres"];

describe("start-up: a command imports what it uses", () => {
  const suite = engineSuite();

  it("--help loads neither LangGraph nor the model client, Slack or the cloud SDKs; doctor only the SQLite saver", () => {
    // doctor opens the store files through the official SQLite saver (which brings @langchain/core), not the graph
    for (const [args, also] of [[["--help"], ["@langchain/core", "@langchain/langgraph-checkpoint-sqlite"]], [["doctor", "--json"], []]] as const) {
      const r = packagesImported(suite.home, [...args]);
      expect(r.code, args.join(" ")).toBe(0);
      expect(r.packages.has("commander"), "the recording works").toBe(true);
      for (const p of [...CLOUD_AND_MODEL, "@langchain/langgraph", ...also]) expect(r.packages.has(p), `${args.join(" ")} imported ${p}`).toBe(false);
    }
  });

  it("runs, status and plan on the sandbox load LangGraph but not the model client, Slack or the cloud SDKs", () => {
    for (const args of [["runs", "--json"], ["status", "run-00000000-0000000000", "--json"], ["plan", "add redis caching to prod", "--json"]]) {
      const r = packagesImported(suite.home, args);
      expect(r.code, args.join(" ")).toBe(args[0] === "status" ? 2 : 0);
      expect(r.packages.has("@langchain/langgraph"), "the recording works").toBe(true);
      for (const p of CLOUD_AND_MODEL) expect(r.packages.has(p), `${args.join(" ")} imported ${p}`).toBe(false);
    }
  });
});

describe("the real storage adapters load the Azure SDK only for a backend that uses it", () => {
  it("importing them loads none of it; the first Azure client loads it", () => {
    // The SDK is loaded through its CommonJS build (a store needs its container URL synchronously): require's cache shows it.
    const script = `
      import { createRequire } from "node:module";
      const req = createRequire(import.meta.url);
      const loaded = () => Object.keys(req.cache).some((p) => p.includes("/@azure/storage-blob/"));
      await import("./src/providers/real.ts");
      const before = loaded();
      const { azureService } = await import("./src/tools/storage/azure.ts");
      const s = azureService({ account: "devstoreaccount1", endpoint: "http://127.0.0.1:10000/devstoreaccount1", credential: { accountKey: Buffer.from("key").toString("base64") } });
      console.log(JSON.stringify({ before, after: loaded(), url: s.getContainerClient("cold").url }));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ before: false, after: true, url: "http://127.0.0.1:10000/devstoreaccount1/cold" });
  });
});

describe("bin runs dist/ only while it is newer than every source", () => {
  const suite = engineSuite();
  const at = (root: string, path: string, seconds: number) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), "");
    utimesSync(join(root, path), seconds, seconds);
    // the folders on the way count too (a removal shows only there): given the same time, not the wall clock's
    const parts = path.split("/").slice(0, -1);
    for (let i = parts.length; i > 0; i--) utimesSync(join(root, ...parts.slice(0, i)), seconds, seconds);
  };

  it("no stamp, a stamp older than a nested source or a tsconfig: the sources; otherwise dist/", () => {
    const root = suite.home;
    at(root, "src/graph/deep/a.ts", 1000);
    at(root, "prompts/p.ts", 1000);
    expect(distIsFresh(root)).toBe(false); // never built
    at(root, STAMP, 2000);
    expect(distIsFresh(root)).toBe(true);
    at(root, "src/graph/deep/a.ts", 3000);
    expect(distIsFresh(root)).toBe(false); // a source edited after the build
    at(root, STAMP, 4000);
    expect(distIsFresh(root)).toBe(true);
    at(root, "tsconfig.build.json", 5000);
    expect(distIsFresh(root)).toBe(false);
    at(root, STAMP, 6000);
    expect(distIsFresh(root)).toBe(true);
    // a source removed after the build (its folder's time moves; dist/ still holds the compiled file)
    rmSync(join(root, "src/graph/deep/a.ts"));
    utimesSync(join(root, "src/graph/deep"), 7000, 7000);
    expect(distIsFresh(root)).toBe(false);
  });
});
