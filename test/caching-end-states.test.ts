import { describe, expect, it } from "vitest";
import type { JournalEntry } from "../src/core/journal.js";
import type { Engine, RunSummary } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import type { SandboxWorld } from "../src/sandbox/sandbox.js";
import { approveAll, engineSuite } from "./helpers.js";

/**
 * Every way a caching run can end, on a sandbox deployment that already has a finished Redis rollout under a custom
 * key prefix: the end state is the start state plus exactly this run's effects when it finishes, and the start state
 * after any rollback (once what it created is deleted behind the delete gate). The state is what Honua and its
 * traffic would see: every config key, every traffic split, every live resource.
 */

interface State {
  config: Record<string, string>;
  traffic: Record<string, number>;
  resources: string[];
}

function stateOf(w: SandboxWorld, deployment = "prod"): State {
  const rows = w.db.prepare(`SELECT feature, percent FROM sandbox_traffic WHERE deployment = ? ORDER BY feature`).all(deployment) as { feature: string; percent: number }[];
  return {
    config: w.config(deployment),
    // A split never moved reads as 0, the same as one moved back to 0.
    traffic: Object.fromEntries(rows.filter((r) => r.percent !== 0).map((r) => [r.feature, r.percent])),
    resources: w.activeResources(deployment).map((r) => r.id).sort(),
  };
}

/** The start state with a run's journalled effects applied: each target at its last written value, created resources added. */
function plus(start: State, journal: JournalEntry[]): State {
  const out: State = { config: { ...start.config }, traffic: { ...start.traffic }, resources: [...start.resources] };
  for (const e of journal) {
    for (const f of e.effects) {
      if (f.kind === "config") {
        if (f.after === null) delete out.config[f.key];
        else out.config[f.key] = f.after;
      } else if (f.kind === "share") {
        if (f.after === 0) delete out.traffic[f.feature];
        else out.traffic[f.feature] = f.after;
      } else if (f.kind === "resource" && f.created && f.id !== null && f.capability === "cache" && !out.resources.includes(f.id)) {
        out.resources.push(f.id);
      }
    }
  }
  out.resources.sort();
  return out;
}

const VARNISH = { workflow: "add-caching-layer", deployment: "prod", params: { cacheType: "varnish" } } as const;
const REDIS = { workflow: "add-caching-layer", deployment: "prod", params: {} } as const;

describe("a caching run ends in the start state plus exactly its own effects, or in the start state", () => {
  const suite = engineSuite();

  /** prod with Cache__KeyPrefix nctry: and a finished Redis rollout (100% of the cache path). */
  async function finishedRollout(): Promise<{ start: State }> {
    const first = await suite.open();
    first.adaptersFor("prod"); // the sandbox deployment exists from here
    first.sandbox().db.prepare(`UPDATE sandbox_config SET value = 'nctry:' WHERE deployment = 'prod' AND key = 'Cache__KeyPrefix'`).run();
    const done = await approveAll(first, await first.start(REDIS, "carol", "add redis caching to prod"));
    expect(done.status).toBe("done");
    const start = stateOf(first.sandbox());
    // The custom prefix was used, not rewritten.
    expect(start.config.Cache__KeyPrefix).toBe("nctry:");
    expect(start.traffic).toEqual({ cache: 100 });
    return { start };
  }

  const journalOf = async (engine: Engine, run: string) => engine.store.journal(run);

  /** Approves as alice until `stop` says to do otherwise at a gate; then returns the summary there. */
  async function approveUntil(engine: Engine, s: RunSummary, stop: (p: NonNullable<RunSummary["pending"]>, traffic: number) => boolean): Promise<RunSummary> {
    let traffic = 0;
    while (s.pending && !(s.pending.kind === "traffic" ? stop(s.pending, ++traffic) : stop(s.pending, 0))) {
      s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    }
    return s;
  }

  /** After a rollback: the delete gate deletes what the run created (alice approves; carol requested). */
  async function deleteLeftovers(engine: Engine, s: RunSummary): Promise<RunSummary> {
    if (s.pending?.step !== "CleanupAfterRollback") return s;
    return engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
  }

  it("done: the start state plus this run's effects; the Redis rollout in place is untouched", async () => {
    const { start } = await finishedRollout();
    const engine = await suite.open();
    const s = await approveAll(engine, await engine.start(VARNISH, "carol", "add varnish caching to prod"));
    expect(s.status).toBe("done");
    const end = stateOf(engine.sandbox());
    expect(end).toEqual(plus(start, await journalOf(engine, s.run)));
    expect(end.traffic).toEqual({ cache: 100, "cache:varnish": 100 });
    expect(end.config.ConnectionStrings__Redis).toBe(start.config.ConnectionStrings__Redis);
    expect(end.config.Cache__ResponseCachingEnabled).toBe(start.config.Cache__ResponseCachingEnabled); // a CDN is not Honua's response cache
  });

  it("rejected at the provision gate: the start state, nothing restored because nothing changed", async () => {
    const { start } = await finishedRollout();
    const engine = await suite.open();
    const first = await engine.start(VARNISH, "carol", "add varnish caching to prod");
    const s = await engine.decide(first.run, "alice", "reject", { planHash: first.pending!.planHash });
    expect(s.status).toBe("rejected");
    expect(stateOf(engine.sandbox())).toEqual(start);
    const rollback = (await engine.transcript(s.run)).steps.find((x) => x.name === "Rollback")!.output as { restored: string[] };
    expect(rollback.restored).toEqual([]);
  });

  for (const stage of [1, 2, 3]) {
    it(`rejected at traffic stage ${stage}: restored to the start state, the created Varnish deleted behind the delete gate`, async () => {
      const { start } = await finishedRollout();
      const engine = await suite.open();
      let s = await approveUntil(engine, await engine.start(VARNISH, "carol", "add varnish caching to prod"), (p, n) => p.kind === "traffic" && n === stage);
      expect(s.pending?.gate.stage).toBe(stage - 1);
      s = await engine.decide(s.run, "alice", "reject", { planHash: s.pending!.planHash });
      // Before the delete decision only the Varnish the run created is left over.
      expect(stateOf(engine.sandbox())).toEqual({ ...start, resources: [...start.resources, ...stateOf(engine.sandbox()).resources.filter((r) => !start.resources.includes(r))].sort() });
      expect(stateOf(engine.sandbox()).resources.filter((r) => !start.resources.includes(r))).toHaveLength(1);
      s = await deleteLeftovers(engine, s);
      expect(s.status).toBe("rejected");
      expect(stateOf(engine.sandbox())).toEqual(start);
    });
  }

  it("cancelled at the provision gate and at the second traffic gate: the start state", async () => {
    const { start } = await finishedRollout();
    const engine = await suite.open();
    const a = await engine.start(VARNISH, "carol", "add varnish caching to prod");
    expect((await engine.cancel(a.run, "carol", "wrong day")).status).toBe("cancelled");
    expect(stateOf(engine.sandbox())).toEqual(start);

    let b = await approveUntil(engine, await engine.start(VARNISH, "carol", "add varnish caching to prod"), (p, n) => p.kind === "traffic" && n === 2);
    b = await engine.cancel(b.run, "carol", "wrong day");
    b = await deleteLeftovers(engine, b);
    expect(b.status).toBe("cancelled");
    expect(stateOf(engine.sandbox())).toEqual(start);
  });

  for (const [stage, share] of [[1, 10], [2, 50], [3, 100]] as const) {
    it(`automatic rollback at stage ${stage} (${share}%): the start state, no human decision needed to restore`, async () => {
      const { start } = await finishedRollout();
      const events: RunEvent[] = [];
      const engine = await suite.open({ HONUA_SANDBOX_FAULTS: `latency-regression@${share}` }, events);
      let s = await approveUntil(engine, await engine.start(VARNISH, "carol", "add varnish caching to prod"), (p) => p.step === "CleanupAfterRollback");
      expect(events.find((e) => e.type === "rollback")).toMatchObject({ automatic: true, reason: expect.stringMatching(/^EnableCachingGradually: .*p95/) });
      const stages = (await engine.transcript(s.run)).steps.filter((x) => x.name === "EnableCachingGradually");
      expect(stages.map((x) => [x.stageValue, x.verdict])).toEqual([...[10, 50, 100].slice(0, stage - 1).map((v) => [v, "healthy"]), [share, "degraded"]]);
      // Restored before anyone decided anything: only the created Varnish is left, behind the delete gate.
      expect(stateOf(engine.sandbox()).config).toEqual(start.config);
      expect(stateOf(engine.sandbox()).traffic).toEqual(start.traffic);
      s = await deleteLeftovers(engine, s);
      expect(s.status).toBe("rolled-back");
      expect(stateOf(engine.sandbox())).toEqual(start);
    });
  }

  it("failed design because the change appeared after the plan was checked: nothing of the run's, the other change stays", async () => {
    const { start } = await finishedRollout();
    let raced = false;
    let runner: Engine | undefined;
    const events: RunEvent[] = [];
    // Someone else moves traffic onto a Varnish path between the plan check and the run's first step.
    events.push = (...es: RunEvent[]) => {
      for (const e of es) {
        if (!raced && e.type === "step-start" && e.step === "AnalyzeCurrentPerformance") {
          raced = true;
          runner!.sandbox().db.prepare(`INSERT INTO sandbox_traffic (deployment, feature, percent) VALUES ('prod', 'cache:varnish', 100)`).run();
        }
      }
      return Array.prototype.push.apply(events, es);
    };
    runner = await suite.open({}, events);
    const s = await runner.start(VARNISH, "carol", "add varnish caching to prod");
    expect(raced).toBe(true);
    expect(s.status).toBe("failed");
    expect(s.outcome).toMatch(/DesignCachingStrategy failed: already in place: prod already has Varnish caching/);
    expect(stateOf(runner.sandbox())).toEqual({ ...start, traffic: { ...start.traffic, "cache:varnish": 100 } });
    const rollback = (await runner.transcript(s.run)).steps.find((x) => x.name === "Rollback")!.output as { restored: string[]; leftovers: unknown[] };
    expect(rollback).toMatchObject({ restored: [], leftovers: [] });
  });

  it("asking again for what is there starts nothing, on the plan check and in start itself", async () => {
    const { start } = await finishedRollout();
    const engine = await suite.open();
    const pre = await engine.preflight(REDIS);
    expect(pre.inPlace).toMatchObject({ summary: "prod already has Redis caching", evidence: [expect.stringMatching(/^Honua's config sets ConnectionStrings__Redis = /), "100% of traffic is on the cache path"] });
    await expect(engine.start(REDIS, "carol", "add redis caching to prod")).rejects.toMatchObject({ code: "in-place" });
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
    expect((await engine.runs()).filter((r) => r.status !== "done")).toEqual([]);
    expect(stateOf(engine.sandbox())).toEqual(start);
    // A different cache on its own path is possible, and the plan says what happens to the one in place.
    expect((await engine.preflight(VARNISH)).notes).toEqual([expect.stringMatching(/^Redis stays in place .*Varnish is added on its own traffic path and Redis is not touched$/)]);
  });
});
