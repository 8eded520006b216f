/**
 * Step records and applied decisions are kept in the agent's store beside the checkpoints, the state holding only
 * their counts: a checkpoint no longer copies the whole transcript, so a run's checkpoint bytes grow linearly with its
 * stages, and everything that reads the transcript (engine, command line, rollback) still sees every record.
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RunStateValue } from "../src/graph/state.js";
import { CACHING_PLAN, approveAll, cli, engineSuite } from "./helpers.js";

const rollout = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.max(1, Math.round(((i + 1) * 100) / n)));

describe("the transcript beside the checkpoints", () => {
  const suite = engineSuite();

  const checkpointBytes = (home: string, run: string): number => {
    const db = new Database(join(home, "checkpoints.sqlite"), { readonly: true });
    try {
      return (db.prepare("SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) AS b FROM checkpoints WHERE thread_id = ?").get(run) as { b: number }).b;
    } finally {
      db.close();
    }
  };

  it("a staged run: every record and decision in the transcript and on the command line, none of their bodies in a checkpoint", async () => {
    const e = await suite.open();
    const done = await approveAll(e, await e.start({ ...CACHING_PLAN, params: { rolloutSteps: [20, 40, 60, 80, 100] } }, "carol", "add redis caching to prod"));
    expect(done.status).toBe("done");
    const tr = await e.transcript(done.run);
    expect(tr.steps.map((s) => s.name)).toEqual([
      "AnalyzeCurrentPerformance", "DesignCachingStrategy", "EstimateCostImpact", "ProvisionCacheInfrastructure", "ConfigureCaching", "WarmCache",
      ...Array.from({ length: 5 }, () => "EnableCachingGradually"),
      "MonitorCachePerformance", "OptimizeCacheSettings", "GeneratePerformanceReport",
    ]);
    expect(tr.steps.filter((s) => s.name === "EnableCachingGradually").map((s) => s.stageValue)).toEqual([20, 40, 60, 80, 100]);
    expect(tr.decisions.map((d) => d.step)).toEqual(["ProvisionCacheInfrastructure", ...Array.from({ length: 5 }, () => "EnableCachingGradually")]);
    expect(tr.steps.find((s) => s.name === "DesignCachingStrategy")?.output).toMatchObject({ cacheType: "redis" });

    const snap = await e.graph(CACHING_PLAN.workflow).getState({ configurable: { thread_id: done.run } });
    const v = snap.values as RunStateValue;
    expect([v.steps.length, v.recorded, v.decisions.length, v.decided]).toEqual([0, 14, 0, 6]);
    // No checkpoint of the run holds a step's output or a decision: only counts and the token of the last write.
    const db = new Database(join(suite.home, "checkpoints.sqlite"), { readonly: true });
    try {
      const bodies = (db.prepare("SELECT CAST(checkpoint AS TEXT) AS c FROM checkpoints WHERE thread_id = ?").all(done.run) as { c: string }[]).map((r) => r.c);
      expect(bodies.length).toBeGreaterThan(10);
      for (const body of bodies) {
        expect(body).not.toContain("ttlReason");
        expect(body).not.toContain(tr.decisions[0]!.interrupt);
      }
    } finally {
      db.close();
    }
    await e.close();

    const shown = cli(suite.home, ["transcript", done.run, "--json"]);
    expect(shown.code, shown.stderr).toBe(0);
    const json = shown.json() as { steps: { name: string }[]; decisions: { step: string }[] };
    expect(json.steps.map((s) => s.name)).toEqual(tr.steps.map((s) => s.name));
    expect(json.decisions).toHaveLength(6);
  });

  it("checkpoint bytes grow linearly with the stages: 4x the stages, under 5x the bytes", async () => {
    const e = await suite.open();
    const bytes: number[] = [];
    for (const [deployment, stages] of [["prod", 10], ["staging", 40]] as const) {
      const done = await approveAll(e, await e.start({ ...CACHING_PLAN, deployment, params: { rolloutSteps: rollout(stages) } }, "carol", "x"));
      expect(done.status).toBe("done");
      expect((await e.transcript(done.run)).steps.filter((s) => s.name === "EnableCachingGradually")).toHaveLength(stages);
      bytes.push(checkpointBytes(suite.home, done.run));
    }
    // Copying the transcript into every checkpoint made this ratio about 16 (and 13.7 MB for 100 stages).
    expect(bytes[1]! / bytes[0]!).toBeLessThan(5);
  });

  it("on SQLite the records live in the checkpoints' file, not fsynced on their own; an older store's records in agent.sqlite are moved there on open", async () => {
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", "x");
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");
    const rows = (file: string): number => {
      const db = new Database(join(suite.home, file), { readonly: true });
      try {
        return (db.prepare("SELECT COUNT(*) AS n FROM honua_records WHERE run = ?").get(s.run) as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const counted = rows("checkpoints.sqlite");
    expect(counted).toBeGreaterThan(0);
    expect(rows("agent.sqlite")).toBe(0);
    expect(Number(await e.store.recordsSql.query("PRAGMA synchronous").then((r) => r[0]!.synchronous))).toBe(1); // NORMAL, as the checkpoints
    expect(Number(await e.store.sql.query("PRAGMA synchronous").then((r) => r[0]!.synchronous))).toBe(2); // FULL: decisions, controls, journal
    const before = await e.transcript(s.run);
    await e.close();

    // As an older store kept them: in agent.sqlite.
    const cp = new Database(join(suite.home, "checkpoints.sqlite"));
    const agent = new Database(join(suite.home, "agent.sqlite"));
    const moved = cp.prepare("SELECT run, list, seq, name, body FROM honua_records WHERE run = ?").all(s.run) as Record<string, unknown>[];
    const put = agent.prepare("INSERT INTO honua_records (run, list, seq, name, body) VALUES (@run, @list, @seq, @name, @body)");
    for (const r of moved) put.run(r);
    cp.prepare("DELETE FROM honua_records WHERE run = ?").run(s.run);
    cp.close();
    agent.close();
    expect(rows("checkpoints.sqlite")).toBe(0);

    const reopened = await suite.open();
    expect(rows("checkpoints.sqlite")).toBe(counted);
    expect(rows("agent.sqlite")).toBe(0);
    expect(await reopened.transcript(s.run)).toEqual(before);
    const done = await approveAll(reopened, await reopened.summary(s.run));
    expect(done.status).toBe("done");
  });

  it("a record the checkpoint counts but the store lost is an error that says so, not a shorter transcript", async () => {
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", "x");
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");
    await e.store.recordsSql.query("DELETE FROM honua_records WHERE run = ? AND list = 'steps' AND seq = 1", [s.run]);
    await expect(e.transcript(s.run)).rejects.toThrow(new RegExp(`run ${s.run}: steps record\\(s\\) 1 counted by its checkpoint are missing from the agent store`));
    await e.close();
    // A process that reads the run afresh (no records of its own in memory) does not run the gated step on a
    // transcript with a hole in it.
    const other = await suite.open();
    await expect(other.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash })).rejects.toThrow(/missing from the agent store/);
    expect(other.sandbox().count("prod", "provision-cache")).toBe(0);
  });
});
