import { describe, expect, it } from "vitest";
import type { Engine, RunSummary } from "../src/engine.js";
import { savedState } from "../src/graph/checkpointer.js";
import { engineSuite } from "./helpers.js";

/**
 * A run's summary reads its checkpoint tuple directly (`savedState`), not LangGraph's `getState`. The two must agree on
 * what a summary uses: the state's values, the interrupts waiting, and when the checkpoint was written; at every
 * checkpoint of whole runs of the five workflows, approved to the end, rejected at a later gate (a rollback), and
 * paused.
 */
const PLANS = [
  { workflow: "add-caching-layer", deployment: "prod", params: {} },
  { workflow: "modify-metadata-storage", deployment: "staging", params: { toStore: "sqlite" } },
  { workflow: "add-storage-backend", deployment: "prod", params: { backend: "s3", placement: "imagery older than 90 days", move: true } },
  { workflow: "upgrade-database-schema", deployment: "prod", params: { changes: "add a GIST index on features.geom" } },
  { workflow: "modify-observability", deployment: "prod", params: { changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }] } },
] as const;

async function expectSameAtEveryCheckpoint(engine: Engine, run: string, workflow: string): Promise<number> {
  let n = 0;
  for await (const snap of engine.graph(workflow).getStateHistory({ configurable: { thread_id: run } })) {
    const saved = await savedState(engine.persistence.checkpointer, snap.config);
    const where = `${workflow} ${run} at ${snap.config.configurable?.checkpoint_id}`;
    expect(saved.createdAt, where).toBe(snap.createdAt);
    expect(saved.interrupts, where).toEqual(snap.tasks.flatMap((t) => t.interrupts));
    for (const [k, v] of Object.entries(snap.values as Record<string, unknown>)) expect(saved.values[k], `${where}: ${k}`).toEqual(v);
    n++;
  }
  const latest = await savedState(engine.persistence.checkpointer, { configurable: { thread_id: run } });
  const snap = await engine.graph(workflow).getState({ configurable: { thread_id: run } });
  expect(latest.createdAt).toBe(snap.createdAt);
  expect(latest.interrupts).toEqual(snap.tasks.flatMap((t) => t.interrupts));
  return n;
}

describe("a summary's read of the checkpoint agrees with getState", () => {
  const suite = engineSuite();

  it.each(PLANS.map((p) => [p.workflow, p] as const))("%s: approved to the end, then the same with a rejection at its last gate", async (_wf, plan) => {
    const engine = await suite.open();
    let s: RunSummary = await engine.start(plan, "carol", `test ${plan.workflow}`);
    const gates: string[] = [];
    while (s.pending) {
      expect((await engine.summary(s.run)).pending?.interrupt).toBe(s.pending.interrupt);
      gates.push(s.pending.interrupt);
      s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    }
    expect(s.status).toBe("done");
    expect(await expectSameAtEveryCheckpoint(engine, s.run, plan.workflow)).toBeGreaterThan(5);

    // A second run on a fresh home: rejected at the gate the first run met last (rolls back what it did).
    const other = await suite.open({ HONUA_AGENT_HOME: `${suite.home}/second` });
    let r: RunSummary = await other.start(plan, "carol", `again ${plan.workflow}`);
    for (let i = 0; r.pending; i++) r = await other.decide(r.run, "alice", i === gates.length - 1 ? "reject" : "approve", { planHash: r.pending.planHash });
    expect(r.status).not.toBe("done");
    await expectSameAtEveryCheckpoint(other, r.run, plan.workflow);
  });

  it("a paused run and an unknown thread", async () => {
    const engine = await suite.open();
    const s = await engine.start(PLANS[0], "carol", "cache it");
    const paused = await engine.pause(s.run, "alice", "hold on");
    await expectSameAtEveryCheckpoint(engine, s.run, PLANS[0].workflow);
    expect((await engine.summary(s.run)).status).toBe(paused.status);
    expect(await savedState(engine.persistence.checkpointer, { configurable: { thread_id: "no-such-run" } })).toEqual({ values: {}, interrupts: [], createdAt: undefined });
  });
});
