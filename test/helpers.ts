import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Engine, type RunSummary } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";

export const EPOCH = "2026-11-26T00:00:00Z";

export function tempHome(): { home: string; cleanup: () => void } {
  const home = mkdtempSync(join(tmpdir(), "honua-agent-test-"));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export function testEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: EPOCH, ...extra };
  delete env.HONUA_AGENT_DATABASE_URL;
  delete env.HONUA_AGENT_CONFIG;
  delete env.HONUA_SANDBOX_FAULTS;
  delete env.HONUA_SANDBOX_PACE_MS;
  delete env.HONUA_AGENT_FAILPOINT;
  return { ...env, ...extra };
}

export async function openEngine(home: string, extra: Record<string, string> = {}, events?: RunEvent[]): Promise<Engine> {
  return Engine.open({ env: testEnv(home, extra), cwd: home, onEvent: events ? (e) => events.push(e) : undefined });
}

export const CACHING_PLAN = { workflow: "add-caching-layer", deployment: "prod", params: {} } as const;

/** Approves every gate as `by` until the run stops waiting. */
export async function approveAll(engine: Engine, s: RunSummary, by = "alice"): Promise<RunSummary> {
  let cur = s;
  while (cur.pending) cur = await engine.decide(cur.run, by, "approve", { planHash: cur.pending.planHash });
  return cur;
}

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs the real command line in a child process. */
export function cli(home: string, args: string[], extra: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, [join(ROOT, "bin/honua-agent.mjs"), ...args], {
    cwd: home,
    env: testEnv(home, extra),
    encoding: "utf8",
    timeout: 60_000,
  });
  const json = (): unknown => JSON.parse(res.stdout.trim().split("\n").at(-1) ?? "null");
  return { code: res.status, signal: res.signal, stdout: res.stdout, stderr: res.stderr, json };
}

/** Per test: a fresh home, and every engine opened through `open` closed afterwards. */
export function engineSuite() {
  let t: ReturnType<typeof tempHome> | undefined;
  const engines: Engine[] = [];
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    t?.cleanup();
  });
  return {
    get home(): string {
      return t!.home;
    },
    async open(extra: Record<string, string> = {}, events?: RunEvent[]): Promise<Engine> {
      const e = await openEngine(t!.home, extra, events);
      engines.push(e);
      return e;
    },
    track(e: Engine): Engine {
      engines.push(e);
      return e;
    },
  };
}

/** A fresh PostgreSQL database for one test file, dropped afterwards (HONUA_TEST_POSTGRES_URL, else the local server). */
export function postgresTestDatabase(prefix: string) {
  const admin = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const db = `${prefix}_${randomBytes(4).toString("hex")}`;
  const state = { url: "", home: "" };
  let t: ReturnType<typeof tempHome> | undefined;
  const withAdmin = async (sql: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  beforeAll(async () => {
    t = tempHome();
    state.home = t.home;
    await withAdmin(`CREATE DATABASE ${db}`);
    const u = new URL(admin);
    u.pathname = `/${db}`;
    state.url = u.toString();
  });
  afterAll(async () => {
    await withAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    t?.cleanup();
  });
  return state;
}

/** A TCP port free on 127.0.0.1 right now, for servers a test starts as child processes. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, "127.0.0.1", resolve);
  });
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
