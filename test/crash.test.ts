import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SandboxWorld } from "../src/sandbox/sandbox.js";
import { CACHING_PLAN, approveAll, cli, openEngine, tempHome } from "./helpers.js";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { StepRecord } from "../src/graph/state.js";

/** Env that SIGKILLs the command just before its `nth` durable statement whose SQL matches `match` (test/fixtures/killpoints-hook.mjs). */
const killAt = (match: string, nth: number) => ({
  NODE_OPTIONS: `--import ${new URL("./fixtures/killpoints-hook.mjs", import.meta.url).pathname}`,
  HONUA_KILL_MATCH: match,
  HONUA_KILL_AT: String(nth),
});

interface Summary {
  run: string;
  status: string;
  pending: { step: string; kind: string; interrupt: string; planHash: string } | null;
}

describe("a run survives the process being killed (SIGKILL)", () => {
  let t: ReturnType<typeof tempHome>;
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(() => t.cleanup());

  const provisions = () => {
    const w = new SandboxWorld(join(t.home, "sandbox.sqlite"));
    try {
      return w.count("prod", "provision-cache");
    } finally {
      w.close();
    }
  };

  it("killed after the provisioning call, before its checkpoint: restart finishes with exactly one provisioning", async () => {
    const started = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]);
    expect(started.code, started.stderr).toBe(3);
    const s = started.json() as Summary;
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");

    const killed = cli(t.home, ["approve", s.run, "--as", "alice", "--json"], { HONUA_AGENT_FAILPOINT: "after:ProvisionCacheInfrastructure" });
    expect(killed.signal).toBe("SIGKILL");
    expect(provisions()).toBe(1);

    // the approval is recorded and applied; a second approve is refused, the run is not re-decided
    const again = cli(t.home, ["approve", s.run, "--as", "bob", "--json"]);
    expect(again.code).toBe(2);

    const resumed = cli(t.home, ["resume", s.run, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(3);
    expect((resumed.json() as Summary).pending?.step).toBe("EnableCachingGradually");
    expect(provisions()).toBe(1);

    let cur = resumed.json() as Summary;
    while (cur.pending) {
      const r = cli(t.home, ["approve", cur.run, "--as", "alice", "--plan-hash", cur.pending.planHash, "--json"]);
      cur = r.json() as Summary;
    }
    expect(cur.status).toBe("done");
    expect(provisions()).toBe(1);
    const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { steps: { name: string }[]; decisions: unknown[] };
    expect(tr.steps.filter((x) => x.name === "ProvisionCacheInfrastructure")).toHaveLength(1);
    expect(tr.decisions).toHaveLength(4);
  });

  it("killed in the middle of a step (during the first traffic stage): restart re-runs it once and goes on", async () => {
    const s = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]).json() as Summary;
    const p = cli(t.home, ["approve", s.run, "--as", "alice", "--json"]).json() as Summary;
    expect(p.pending?.step).toBe("EnableCachingGradually");
    const killed = cli(t.home, ["approve", p.run, "--as", "bob", "--json"], { HONUA_AGENT_FAILPOINT: "after:EnableCachingGradually" });
    expect(killed.signal).toBe("SIGKILL");
    const runs = cli(t.home, ["runs", "--json"]).json() as { run: string; status: string }[];
    expect(runs[0]).toMatchObject({ run: s.run });
    const resumed = cli(t.home, ["resume", s.run, "--json"]).json() as Summary;
    expect(resumed.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
    const w = new SandboxWorld(join(t.home, "sandbox.sqlite"));
    try {
      expect(w.share("prod", "cache")).toBe(10);
      expect(w.count("prod", "traffic-share")).toBe(1);
    } finally {
      w.close();
    }
    // The re-run stage continued the window that started before the kill instead of watching a new one.
    const db = new Database(join(t.home, "agent.sqlite"), { readonly: true });
    const memo = db.prepare(`SELECT value FROM honua_memo WHERE run = ? AND key LIKE 'EnableCachingGradually:0:window-start'`).get(s.run) as { value: string };
    db.close();
    const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { steps: { name: string; startedAt: string; output: { window: { at: string } } }[] };
    const stage = tr.steps.find((x) => x.name === "EnableCachingGradually")!;
    expect(Date.parse(stage.startedAt)).toBeGreaterThan(Date.parse(memo.value)); // the record is the re-run's
    expect(Date.parse(stage.output.window.at) - Date.parse(memo.value)).toBe(10 * 60_000); // one 10-minute window in all
  });

  it("killed writing the run's first checkpoint: status and runs say interrupted, and resume starts it from its beginning", async () => {
    const killed = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"], killAt("INTO checkpoints", 1));
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    const db = new Database(join(t.home, "checkpoints.sqlite"), { readonly: true });
    const checkpoints = (db.prepare(`SELECT COUNT(*) AS n FROM checkpoints`).get() as { n: number }).n;
    db.close();
    expect(checkpoints).toBe(0);
    const runs = cli(t.home, ["runs", "--json"]).json() as { run: string; status: string }[];
    expect(runs).toHaveLength(1);
    const run = runs[0]!.run;
    expect(runs[0]!.status).toBe("interrupted");
    const status = cli(t.home, ["status", run]);
    expect(status.stdout).toContain("interrupted");
    expect(status.stdout).toContain(`honua-agent resume ${run}`);

    const resumed = cli(t.home, ["resume", run, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(3);
    expect((resumed.json() as Summary).pending?.step).toBe("ProvisionCacheInfrastructure");
    expect((cli(t.home, ["runs", "--json"]).json() as { status: string }[])[0]?.status).toBe("waiting");

    const e = await openEngine(t.home);
    try {
      const done = await approveAll(e, await e.summary(run));
      expect(done.status).toBe("done");
      expect(e.sandbox().count("prod", "provision-cache")).toBe(1);
      expect(await e.store.listDecisions(run)).toHaveLength(4);
      expect(await e.store.lockHolder("prod")).toBeUndefined();
    } finally {
      await e.close();
    }
  });

  it("killed writing the checkpoint after a step finished: resume applies the step's saved writes instead of running it again", async () => {
    const e = await openEngine(t.home);
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    await e.close();
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");
    // The approval writes a checkpoint after its gate node, then runs ProvisionCacheInfrastructure and is killed
    // writing the checkpoint after it.
    const killed = cli(t.home, ["approve", s.run, "--as", "alice", "--json"], killAt("INTO checkpoints", 2));
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect(provisions()).toBe(1);

    // What that leaves, as LangGraph reads it: no next task and no interrupt, the step's writes saved with the
    // last checkpoint. `resume` used to stop here and answer "running" for ever.
    const reader = await openEngine(t.home);
    try {
      const snap = await reader.graph("add-caching-layer").getState({ configurable: { thread_id: s.run } });
      expect(snap.next).toEqual([]);
      expect(snap.tasks.flatMap((x) => x.interrupts)).toEqual([]);
      // The step's saved writes count its record; the record itself is kept beside the checkpoints, at the place counted.
      const counted = snap.tasks.flatMap((x) => (x.result as { recorded?: number } | undefined)?.recorded ?? []);
      expect(counted).toHaveLength(1);
      const saved = (await reader.store.records(s.run, "steps", counted[0]! - 1, counted[0]!)) as StepRecord[];
      expect(saved.map((r) => r.name)).toEqual(["ProvisionCacheInfrastructure"]);
      expect((await reader.summary(s.run)).status).toBe("interrupted");
    } finally {
      await reader.close();
    }
    expect((cli(t.home, ["runs", "--json"]).json() as { status: string }[])[0]?.status).toBe("interrupted");

    const resumed = cli(t.home, ["resume", s.run]);
    expect(resumed.code, resumed.stderr).toBe(3);
    expect(resumed.stderr).not.toContain("▶ ProvisionCacheInfrastructure");
    expect(resumed.stderr).toContain("▶ ConfigureCaching");
    expect(resumed.stdout).toContain("EnableCachingGradually");
    expect(provisions()).toBe(1);

    const e2 = await openEngine(t.home);
    try {
      const done = await approveAll(e2, await e2.summary(s.run));
      expect(done.status).toBe("done");
      const tr = await e2.transcript(s.run);
      expect(tr.steps.filter((x) => x.name === "ProvisionCacheInfrastructure")).toHaveLength(1);
      expect(tr.decisions).toHaveLength(4);
      expect(e2.sandbox().count("prod", "provision-cache")).toBe(1);
    } finally {
      await e2.close();
    }
  });

  it("a checkpoint with nothing left to run and no outcome (as a graph whose nodes changed since leaves one) is driven on from the state's next", async () => {
    const e = await openEngine(t.home);
    try {
      const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
      expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");
      const g = e.graph("add-caching-layer");
      const cfg = { configurable: { thread_id: s.run } };
      await g.updateState(cfg, {}, "finish"); // supersedes the interrupt with a checkpoint whose only way on is END
      const stalled = await g.getState(cfg);
      expect(stalled.next).toEqual([]);
      expect(stalled.tasks).toEqual([]);
      expect((stalled.values as { status: string }).status).toBe("running");
      expect((await e.summary(s.run)).status).toBe("interrupted");

      const resumed = await e.resume(s.run);
      // The state's next is the provision step: the run goes back through its gate, which asks again.
      expect(resumed.status).toBe("waiting");
      expect(resumed.pending).toMatchObject({ step: "ProvisionCacheInfrastructure", planHash: s.pending!.planHash });
      expect(provisions()).toBe(0);
      const done = await approveAll(e, resumed);
      expect(done.status).toBe("done");
      expect(provisions()).toBe(1);
    } finally {
      await e.close();
    }
  });

  it("a stalled checkpoint after a gate was answered goes on into the step, which still needs the recorded approval", async () => {
    const e = await openEngine(t.home);
    try {
      const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
      const g = e.graph("add-caching-layer");
      const cfg = { configurable: { thread_id: s.run } };
      const p = s.pending!;
      // The gate answered (its prepared gate cleared) but no approval recorded: the step refuses, nothing is provisioned.
      await g.updateState(cfg, { gate: null }, "finish");
      await expect(e.resume(s.run)).rejects.toThrow(/reached without a recorded approval/);
      expect(provisions()).toBe(0);
      // With the approval recorded (as the gate node does, in the store and in the state), the run goes on into the step.
      const rec = await e.store.recordDecision({
        run: s.run, interrupt: p.interrupt, step: p.step, stage: null, kind: "provision", decision: "approve", by: "alice",
        at: "2026-11-26T00:00:00.000Z", planHash: p.planHash, comment: null, groups: [],
      });
      const { run: _run, groups: _groups, ...record } = rec.decision;
      await g.updateState(cfg, { decisions: [record] }, "finish");
      const resumed = await e.resume(s.run);
      expect(resumed.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
      expect(provisions()).toBe(1);
    } finally {
      await e.close();
    }
  });

  it("a sandbox deployment an earlier version left half built is completed when nothing ran against it, refused when something did", () => {
    const path = join(t.home, "sandbox.sqlite");
    const old = new Database(path);
    // The earlier version's tables, and two deployments whose defaults were being written one statement at a time.
    old.exec(`
      CREATE TABLE sandbox_deployments (name TEXT PRIMARY KEY, seed INTEGER NOT NULL, clock_ms INTEGER NOT NULL, warm REAL NOT NULL DEFAULT 0);
      CREATE TABLE sandbox_config (deployment TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (deployment, key));
      CREATE TABLE sandbox_traffic (deployment TEXT NOT NULL, feature TEXT NOT NULL, percent INTEGER NOT NULL, PRIMARY KEY (deployment, feature));
      CREATE TABLE sandbox_resources (id TEXT PRIMARY KEY, deployment TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL, endpoint TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT);
      CREATE TABLE sandbox_ops (key TEXT PRIMARY KEY, deployment TEXT NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL);
      INSERT INTO sandbox_deployments (name, seed, clock_ms) VALUES ('prod', 16, 0), ('staging', 16, 0);
      INSERT INTO sandbox_config (deployment, key, value) VALUES ('prod', 'Cache__Enabled', 'true'), ('staging', 'Cache__Enabled', 'true');
      INSERT INTO sandbox_ops (key, deployment, op, result, at) VALUES ('run-x:ConfigureCaching:0', 'staging', 'config-apply', '1', '2026-11-26T00:00:00Z');
    `);
    old.close();
    const w = new SandboxWorld(path);
    try {
      w.ensure("prod", 16, 0);
      const prod = w.config("prod");
      expect(Object.keys(prod)).toHaveLength(11);
      expect(prod).toMatchObject({ ConnectionStrings__DefaultConnection: "env:HONUA_PROD_DATABASE_URL", Cache__QueryTtlSeconds: "30" });
      expect(() => w.ensure("staging", 16, 0)).toThrow(/staging .*half built .*missing ConnectionStrings__DefaultConnection, .*Cache__QueryTtlSeconds/);
      expect(Object.keys(w.config("staging"))).toEqual(["Cache__Enabled"]); // refused, not patched
    } finally {
      w.close();
    }
  });
});
