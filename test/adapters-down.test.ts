import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { NginxTrafficOptions, renderSplit } from "../src/tools/traffic/nginx.js";
import { freePort, testEnv } from "./helpers.js";
import { startOrigin, type Origin } from "../src/dev/origin.js";

/**
 * `run` against a local deployment whose Redis, Prometheus or nginx is down: the run fails with a message that
 * names what is down, nothing is applied (config file, nginx include), nothing is reloaded, and the lock is free.
 */
const TILE = "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/1/1";
const ENV = "Cache__Enabled=false\nCache__KeyPrefix=honua:\n";
const PLAN = { workflow: "add-caching-layer", deployment: "local", params: {} } as const;

let dir: string;
let calls: string;
let origin: Origin | undefined;
let engine: Engine | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-adapters-down-"));
  calls = join(dir, "nginx-calls");
  writeFileSync(calls, "");
  writeFileSync(join(dir, "honua.env"), ENV);
});
afterEach(async () => {
  await engine?.close();
  engine = undefined;
  await origin?.close();
  origin = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function open(sections: Record<string, unknown>): Promise<Engine> {
  const include = join(dir, "honua-split.conf");
  const split = { kind: "nginx", include, primary: "honua_primary", candidate: "honua_candidate" } as const;
  writeFileSync(include, renderSplit(NginxTrafficOptions.parse(split), 0));
  const raw = {
    deployments: {
      local: {
        provider: "local",
        approvers: ["oncall"],
        monitoring: { windowMinutes: 0.05, stageMinutes: 0.03, sampleEveryMinutes: 0.01, minSamples: 3 },
        config: { kind: "envfile", path: join(dir, "honua.env") },
        traffic: { ...split, test: ["sh", "-c", `echo test >> ${calls}`], reload: ["sh", "-c", `echo reload >> ${calls}`] },
        ...sections,
      },
    },
    groups: { oncall: ["alice", "bob"] },
  };
  const env = testEnv(join(dir, "home"));
  engine = await Engine.open({ env, cwd: dir, config: parseConfig(raw, "test", env) });
  return engine;
}

const probe = (base: string) => ({ source: "probe", urls: [base + TILE], concurrency: 2, pauseMs: 0, minRequestsPerSample: 2, lookbackSeconds: 0.6, lookbackSamples: 3 });

async function expectNothingApplied(e: Engine, s: RunSummary) {
  expect(readFileSync(join(dir, "honua.env"), "utf8")).toBe(ENV);
  expect(readFileSync(calls, "utf8")).toBe(""); // nginx was neither tested nor reloaded
  // The deployment lock is free: another run can start (and fails the same way).
  const again = await e.start(PLAN, "carol", "add redis caching to local");
  expect(again.run).not.toBe(s.run);
}

describe("honua-agent run with a dependency down (local deployment)", () => {
  it("Prometheus down: fails at the baseline naming Prometheus, applies nothing, frees the lock", async () => {
    const port = await freePort();
    const e = await open({ cache: { redis: { url: "redis://127.0.0.1:6379/13" } }, metrics: { source: "prometheus", url: `http://127.0.0.1:${port}`, timeoutMs: 2000 } });
    const s = await e.start(PLAN, "carol", "add redis caching to local");
    expect(s.status).toBe("failed");
    expect(s.pending).toBeNull();
    expect(s.outcome).toMatch(new RegExp(`AnalyzeCurrentPerformance failed: prometheus http://127\\.0\\.0\\.1:${port}`));
    await expectNothingApplied(e, s);
  });

  it("nginx (the probed splitter) down: fails at the baseline saying there is no data, applies nothing, frees the lock", async () => {
    const port = await freePort();
    const e = await open({ cache: { redis: { url: "redis://127.0.0.1:6379/13" } }, metrics: probe(`http://127.0.0.1:${port}`) });
    const s = await e.start(PLAN, "carol", "add redis caching to local");
    expect(s.status).toBe("failed");
    expect(s.outcome).toMatch(/no baseline: 0 metric samples.*Check the metrics source/);
    await expectNothingApplied(e, s);
  });

  it("Redis down: the approved provision fails naming the Redis, the config file is untouched, the lock is free", async () => {
    origin = await startOrigin({ name: "primary", envFile: join(dir, "honua.env"), workMs: 0 });
    const port = await freePort();
    const e = await open({ cache: { redis: { url: `redis://127.0.0.1:${port}/0`, connectTimeoutMs: 500 } }, metrics: probe(origin.url) });
    const first = await e.start(PLAN, "carol", "add redis caching to local");
    expect(first.pending).toMatchObject({ step: "ProvisionCacheInfrastructure", kind: "provision" });
    const s = await e.decide(first.run, "alice", "approve", { planHash: first.pending!.planHash });
    expect(s.status).toBe("failed");
    expect(s.pending).toBeNull();
    expect(s.outcome).toMatch(new RegExp(`ProvisionCacheInfrastructure failed: Redis at 127\\.0\\.0\\.1:${port} is not reachable`));
    await expectNothingApplied(e, s);
  });
});
