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

  it("refuses a run that has not finished, an unknown or malformed id, a requester who may not approve, and a rolled-back run; nothing starts", async () => {
    const engine = await suite.open();
    const waiting = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    expect(waiting.status).toBe("waiting");
    await expect(engine.revertPlan(waiting.run, "alice")).rejects.toThrow(`cannot revert ${waiting.run}: it has not finished (waiting): cancel or roll it back instead`);
    await expect(engine.revert(waiting.run, "alice")).rejects.toThrow(/cancel or roll it back instead.*nothing was started/);
    await expect(engine.revert("run-20990101-0000000000", "alice")).rejects.toThrow("unknown run run-20990101-0000000000; nothing was started");
    await expect(engine.revert("x; DROP TABLE honua_runs", "alice")).rejects.toMatchObject({ code: "bad-input" });
    const rejected = await engine.decide(waiting.run, "alice", "reject", { planHash: waiting.pending!.planHash });
    expect(rejected.status).toBe("rejected");
    // carol asked for the change but is not an approver of prod: a revert changes prod, so she may not start one
    await expect(engine.revert(rejected.run, "carol")).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/carol may not approve on prod.*alice, bob|carol may not approve on prod.*oncall/) });
    await expect(engine.revert(rejected.run, "alice")).rejects.toThrow(/it was already rejected and rolled back.*nothing of it left to revert/);
    // a revert is not a plan a request can start
    await expect(engine.start({ workflow: "revert-run", deployment: "prod", params: {} }, "alice", "x")).rejects.toThrow(/use honua-agent revert RUN/);
    expect((await engine.runs()).map((r) => r.run)).toEqual([waiting.run]);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("refuses after another run changed the same share (naming the run), and after a change made outside the agent", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    const a = await finishedCaching(engine);
    // b reverts traffic and config, and keeps the cache (its delete gate rejected): its restores stand
    let b = await engine.revert(a.run, "alice");
    b = await engine.decide(b.run, "alice", "approve");
    b = await engine.decide(b.run, "alice", "approve");
    expect(b.pending).toMatchObject({ step: "RemoveCreated", kind: "delete" });
    b = await engine.decide(b.run, "bob", "reject", { comment: "keep the node for now" });
    expect(b.status).toBe("rejected");
    expect(world.share("prod", "cache")).toBe(0);
    expect(world.activeResources("prod")).toHaveLength(1);
    const c = await finishedCaching(engine);
    expect(world.share("prod", "cache")).toBe(100);
    const runs = (await engine.runs()).length;

    // reverting a would undo c's change of the same share and keys
    const refusal = engine.revert(a.run, "alice");
    await expect(refusal).rejects.toMatchObject({ code: "conflict" });
    await expect(refusal).rejects.toThrow(`traffic share cache was changed since by run ${c.run} (add-caching-layer, done)`);
    await expect(refusal).rejects.toThrow(/config key ConnectionStrings__Redis was changed since by run/);

    // the share moved by hand on the router: what the run left is no longer there
    await engine.adaptersFor("prod").traffic.setShare("cache", 40, "outside:operator:1");
    await expect(engine.revert(c.run, "alice")).rejects.toThrow("the deployment changed since, outside honua-agent: traffic share cache is 40% now; the run left it at 100%");
    expect((await engine.runs()).length).toBe(runs);
    expect(world.share("prod", "cache")).toBe(40);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("refuses a run whose journal marks a point of no return, naming the step and what cannot be restored", async () => {
    const engine = await suite.open();
    const done = await approveAll(engine, await engine.start({ workflow: "modify-metadata-storage", deployment: "staging", params: { toStore: "sqlite" } }, "carol", "move staging's metadata to sqlite"));
    expect(done.status).toBe("done");
    await expect(engine.revert(done.run, "alice")).rejects.toThrow(/its journal marks a point of no return \(DisableOldStore: .*retired.*\), which a revert cannot restore; nothing was started/);
  });

  it("a revert's gates cannot be skipped: a forged resume is refused and nothing moves; a rejection puts back what the revert moved", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    const a = await finishedCaching(engine);
    const configAfter = world.config("prod");
    const s = await engine.revert(a.run, "alice");
    expect(s.pending?.step).toBe("RestoreTraffic");
    // the plan hash binds the card: a stale one decides nothing
    await expect(engine.decide(s.run, "alice", "approve", { planHash: "0".repeat(64) })).rejects.toThrow(/plan changed since it was shown/);

    const atConfig = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(world.share("prod", "cache")).toBe(0);
    expect(atConfig.pending).toMatchObject({ step: "RestoreConfig", kind: "provision" });
    expect(atConfig.pending!.gate.change.config.length).toBeGreaterThan(0);
    const end = await engine.decide(s.run, "bob", "reject", { planHash: atConfig.pending!.planHash, comment: "keep the cache" });
    expect(end.status).toBe("rejected");
    expect(world.share("prod", "cache")).toBe(100);
    expect(world.config("prod")).toEqual(configAfter);
    expect(world.activeResources("prod")).toHaveLength(1);
    const decisions = await engine.store.listDecisions(s.run);
    expect(decisions.map((d) => `${d.step}:${d.kind}:${d.decision}`)).toEqual(["RestoreTraffic:traffic:approve", "RestoreConfig:provision:reject"]);

    // a rejected revert that put nothing back does not count as a change since: a new revert may start. Resuming its
    // gate with a forged decision, or driving its graph straight into the gated step, fails before anything moves
    const again = await engine.revert(a.run, "alice");
    expect(again.pending?.step).toBe("RestoreTraffic");
    const moved = world.count("prod", "traffic-share");
    const { Command } = await import("@langchain/langgraph");
    const cfg = { configurable: { thread_id: again.run }, durability: "sync" as const };
    await expect(engine.graph("revert-run").invoke(new Command({ resume: { interrupt: "forged", planHash: again.pending!.planHash } }), cfg)).rejects.toThrow(/no recorded decision/);
    await expect(engine.graph("revert-run").invoke(new Command({ goto: "RestoreTraffic" }), cfg)).rejects.toThrow(/gated step RestoreTraffic reached without a recorded approval/);
    expect(world.count("prod", "traffic-share")).toBe(moved);
    expect(world.share("prod", "cache")).toBe(100);
  });
});
