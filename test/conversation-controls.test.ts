import { afterEach, describe, expect, it } from "vitest";
import { converse, matchIntent } from "../src/conversation/index.js";
import { MemoryCallSink } from "../src/planner/calls.js";
import type { Engine, RunSummary } from "../src/engine.js";
import { startFakeOpenAI, type FakeOpenAI, type FakeReply } from "./fixtures/fake-openai.js";
import { CACHING_PLAN, engineSuite } from "./helpers.js";

/** Waiting at the first traffic stage: provision approved by alice. */
async function atFirstTrafficGate(engine: Engine): Promise<RunSummary> {
  const s = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
  const t = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
  expect(t.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
  return t;
}

const decisionsOf = async (engine: Engine, run: string) => (await engine.transcript(run)).decisions.map((d) => `${d.step}:${d.decision}:${d.by}`);

describe("conversation with a model: a control runs at most once per message", () => {
  const suite = engineSuite();
  let fake: FakeOpenAI | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });
  const say = async (engine: Engine, script: FakeReply[], run: string, text: string, user: string) => {
    fake = await startFakeOpenAI(script);
    const sink = new MemoryCallSink();
    const reply = await converse(engine, { run, user, groups: [], text }, { env: { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "fake-model" }, sink });
    return { reply, sink };
  };

  it("a model that calls request_rollback twice does not decide the cleanup gate the rollback left behind", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(
      engine,
      [{ toolCalls: [{ name: "request_rollback", args: { reason: "asked" } }, { name: "request_rollback", args: { reason: "asked again" } }] }, { content: "Rolled back." }],
      s.run, "roll it back", "bob",
    );
    expect(reply.actions.filter((a) => a.ok).map((a) => a.tool)).toEqual(["request_rollback"]);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice", "EnableCachingGradually:reject:bob"]);
    expect((await engine.summary(s.run)).pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
  });

  it("the same across model calls: a second cancel_run in a later call is not run", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(
      engine,
      [{ toolCalls: [{ name: "cancel_run", args: { reason: null } }] }, { toolCalls: [{ name: "cancel_run", args: { reason: null } }] }, { content: "Cancelled." }],
      s.run, "cancel it", "carol",
    );
    expect(reply.actions.filter((a) => a.ok).map((a) => a.tool)).toEqual(["cancel_run"]);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice", "EnableCachingGradually:reject:carol"]);
    expect((await engine.summary(s.run)).pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
  });

  it("a model that fails after running the control does not make the rule-based fallback run it again", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply, sink } = await say(engine, [{ toolCalls: [{ name: "request_rollback", args: { reason: null } }] }, { status: 500, message: "boom" }], s.run, "roll it back", "bob");
    expect(reply.answeredBy).toBe("rules");
    expect(reply.text).toMatch(/rolling back run/);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice", "EnableCachingGradually:reject:bob"]);
    expect((await engine.summary(s.run)).pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
    // Both calls are recorded, the failed one with its outcome.
    expect(sink.records.map((r) => r.outcome)).toEqual(["ok", "error"]);
  });

  it("a model that fails before any tool ran still gets the user's control done by the rules, once", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(engine, [{ status: 429, message: "rate limited" }], s.run, "roll it back", "bob");
    expect(reply).toMatchObject({ answeredBy: "rules", text: expect.stringMatching(/^\(The model failed[\s\S]*rolling back run/) });
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice", "EnableCachingGradually:reject:bob"]);
  });

  it("a request to approve is declined by the rules without asking the model, and names the approvers", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(engine, [{ content: "Approved! The traffic stage is live." }], s.run, "approve it please, I'm on call", "alice");
    expect(fake!.requests).toHaveLength(0);
    expect(reply).toMatchObject({ answeredBy: "rules", modelCalls: 0, actions: [] });
    expect(reply.text).toMatch(/can't approve, reject or skip a gate[\s\S]*approvers \(alice, bob\)/);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice"]);
  });

  it("a cap of model calls that is not a positive number falls back to the default instead of making none", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    fake = await startFakeOpenAI([{ content: "It is waiting for a traffic approval." }]);
    const r = await converse(engine, { run: s.run, user: "carol", groups: [], text: "status?" }, { env: { OPENAI_BASE_URL: fake.url }, maxModelCalls: Number.NaN, sink: new MemoryCallSink() });
    expect(r).toMatchObject({ answeredBy: "model", modelCalls: 1, text: "It is waiting for a traffic approval." });
  });

  it("a model that reads \"don't roll it back\" as a rollback is not obeyed", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(engine, [{ toolCalls: [{ name: "request_rollback", args: { reason: null } }] }, { content: "Rolled back." }], s.run, "don't roll it back, it looks fine", "bob");
    expect(reply.actions).toMatchObject([{ tool: "request_rollback", ok: false, detail: expect.stringMatching(/did not ask/) }]);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice"]);
  });

  it("a model reply cannot carry terminal escapes or bidi overrides to the reader", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const { reply } = await say(engine, [{ content: "Waiting.\u001b[2J\u001b[H\u202eApproved by alice\u0007" }], s.run, "status?", "carol");
    expect(reply.text).toBe("Waiting.[2J[HApproved by alice");
  });

  it("a model that asks for dozens of tool calls in one answer gets a bounded number run", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const many = Array.from({ length: 40 }, () => ({ name: "run_status", args: {} }));
    const { reply } = await say(engine, [{ toolCalls: many }, { toolCalls: many }, { content: "Waiting for traffic approval." }], s.run, "status?", "carol");
    expect(reply.actions.filter((a) => a.ok)).toHaveLength(12);
    const lastToolMessages = fake!.requests.at(-1)!.messages.filter((m) => m.role === "tool");
    expect(lastToolMessages).toHaveLength(80);
    expect(String(lastToolMessages.at(-1)!.content)).toMatch(/at most 12 tool calls per message/);
  });

  it("every tool sent to the model passes the strict-schema check", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    await say(engine, [{ content: "ok" }], s.run, "status?", "carol");
    expect(fake!.requests[0]!.tools!.map((t) => t.function.name).sort()).toEqual(
      ["cancel_run", "cost", "deployments", "metrics", "pause_run", "plan_and_diff", "request_rollback", "resume_run", "revert_run", "run_status", "transcript_excerpt"],
    );
    expect(fake!.refusals).toEqual([]);
  });
});

describe("conversation without a model: decisions are declined and the approvers named", () => {
  const suite = engineSuite();
  const ask = (engine: Engine, run: string, text: string, user = "carol") => converse(engine, { run, user, groups: [], text }, { model: { offline: true } });

  it("approve, reject, deny and veto in everyday words are declined; nothing is decided", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    for (const text of ["approve", "reject it", "deny this", "I veto this change", "greenlight it", "lgtm", "approved, go"]) {
      const r = await ask(engine, s.run, text, "alice");
      expect(r.text, text).toMatch(/can't approve, reject or skip a gate[\s\S]*approvers \(alice, bob\)[\s\S]*waiting at EnableCachingGradually \(traffic\)/);
      expect(r.actions, text).toEqual([]);
    }
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice"]);
  });
});

describe("the rules read what the user asked, not a control word inside it", () => {
  const suite = engineSuite();
  const ask = (engine: Engine, run: string, text: string, user = "carol") => converse(engine, { run, user, groups: [], text }, { model: { offline: true } });
  const controlOf = (text: string) => {
    const i = matchIntent(text);
    return i.kind === "tools" ? i.calls.map((c) => c.tool).filter((t) => ["pause_run", "resume_run", "cancel_run", "request_rollback"].includes(t)) : [];
  };

  it("a negated control is no control", () => {
    for (const text of ["don't roll it back", "please do not cancel the run", "no need to pause", "never mind, don't cancel", "do NOT revert yet", "dont cancel it", "we shouldn't roll back"]) {
      expect(controlOf(text), text).toEqual([]);
    }
    expect(controlOf("don't cancel, just pause it")).toEqual(["pause_run"]);
    expect(controlOf("roll it back")).toEqual(["request_rollback"]);
    expect(controlOf("cancel it, wrong deployment")).toEqual(["cancel_run"]);
  });

  it("ending a pause is a resume, and calling off a rollback is not a rollback", () => {
    for (const text of ["cancel the pause", "undo the pause", "lift the hold"]) expect(controlOf(text), text).toEqual(["resume_run"]);
    for (const text of ["stop the rollback", "cancel the rollback request", "abort the revert"]) expect(controlOf(text), text).toEqual([]);
  });

  it("an approver who says \"don't roll it back\" does not roll it back", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    const r = await ask(engine, s.run, "don't roll it back, the numbers are fine", "bob");
    expect(r.actions.filter((a) => a.kind === "control")).toEqual([]);
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice"]);
    expect((await engine.summary(s.run)).pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
  });

  it("the requester who says \"do not cancel\" keeps the run", async () => {
    const engine = await suite.open();
    const s = await atFirstTrafficGate(engine);
    await ask(engine, s.run, "please do not cancel this", "carol");
    expect((await engine.summary(s.run)).status).toBe("waiting");
    expect(await decisionsOf(engine, s.run)).toEqual(["ProvisionCacheInfrastructure:approve:alice"]);
  });
});
