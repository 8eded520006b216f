import { describe, expect, it } from "vitest";
import type { Engine, RunSummary } from "../src/engine.js";
import { CACHING_PLAN, approveAll, engineSuite } from "./helpers.js";

/** A finished caching run on the sandbox's prod, every gate approved by alice. */
async function finishedCaching(engine: Engine): Promise<RunSummary> {
  const done = await approveAll(engine, await engine.start(CACHING_PLAN, "carol", "add redis caching to prod"));
  expect(done.status).toBe("done");
  return done;
}

/** Decides each gate of a revert: the gates seen, in order, as `step:kind`. */
async function driveRevert(engine: Engine, s: RunSummary, by: (kind: string) => string): Promise<{ end: RunSummary; gates: string[] }> {
  const gates: string[] = [];
  let cur = s;
  while (cur.pending) {
    gates.push(`${cur.pending.step}:${cur.pending.kind}`);
    cur = await engine.decide(cur.run, by(cur.pending.kind), "approve", { planHash: cur.pending.planHash });
  }
  return { end: cur, gates };
}

describe("revert of a finished run on the sandbox", () => {
  const suite = engineSuite();

  it("restores the start state exactly: config, shares, and the created cache deleted behind a delete gate", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    engine.adaptersFor("prod"); // the simulated deployment exists from its first use
    const configBefore = world.config("prod");
    const shareBefore = world.share("prod", "cache");
    const forward = await finishedCaching(engine);
    expect(world.share("prod", "cache")).toBe(100);
    expect(world.config("prod")).not.toEqual(configBefore);
    expect(world.activeResources("prod")).toHaveLength(1);

    const plan = await engine.revertPlan(forward.run, "alice");
    expect(plan.traffic).toEqual([{ feature: "cache", from: 100, to: shareBefore }]);
    const now = world.config("prod");
    const changed = [...new Set([...Object.keys(now), ...Object.keys(configBefore)])].filter((k) => now[k] !== configBefore[k]).sort();
    expect(changed.length).toBeGreaterThan(0);
    expect(plan.config.map((c) => c.key).sort()).toEqual(changed);
    expect(plan.config.every((c) => c.before === (now[c.key] ?? null) && c.after === (configBefore[c.key] ?? null))).toBe(true);
    expect(plan.created).toEqual([expect.objectContaining({ kind: "redis" })]);

    const first = await engine.revert(forward.run, "alice");
    expect(first.run).not.toBe(forward.run);
    expect(first.workflow).toBe("revert-run");
    expect(first.pending).toMatchObject({ step: "RestoreTraffic", kind: "traffic" });
    expect(first.pending!.gate.change.traffic).toEqual({ from: 100, to: shareBefore });
    expect(await engine.store.lockHolder("prod")).toBe(first.run);
    // two-person rule on prod: alice asked for the revert, so bob approves its delete
    const { end, gates } = await driveRevert(engine, first, (kind) => (kind === "delete" ? "bob" : "alice"));
    expect(gates).toEqual(["RestoreTraffic:traffic", "RestoreConfig:provision", "RemoveCreated:delete"]);
    expect(end.status).toBe("done");
    expect(world.config("prod")).toEqual(configBefore);
    expect(world.share("prod", "cache")).toBe(shareBefore);
    expect(world.activeResources("prod")).toHaveLength(0);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
    const tr = await engine.transcript(end.run);
    expect(tr.decisions.map((d) => `${d.step}:${d.by}`)).toEqual(["RestoreTraffic:alice", "RestoreConfig:alice", "RemoveCreated:bob"]);

    await expect(engine.revertPlan(forward.run, "alice")).rejects.toThrow(`already reverted by ${end.run}`);
  });
});
