import { describe, expect, it } from "vitest";
import { CACHING_PLAN, approveAll, engineSuite } from "./helpers.js";

describe("decisions, policy and the deployment lock", () => {
  const suite = engineSuite();
  const open = () => suite.open();

  it("two approvals of the same gate at once: one decision, one resume, one provisioning", async () => {
    const a = await open();
    const b = await open();
    const s = await a.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const results = await Promise.allSettled([
      a.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash }),
      b.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(String(refused[0]!.reason)).toMatch(/already approved by (alice|bob)|no decision waiting/);
    expect(a.sandbox().count("prod", "provision-cache")).toBe(1);
    const decisions = await a.store.listDecisions(s.run);
    expect(decisions).toHaveLength(1);
  });

  it("a click on a decided or stale card changes nothing and says who decided", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const shown = s.pending!.planHash;
    const next = await e.decide(s.run, "alice", "approve", { planHash: shown });
    expect(next.pending?.step).toBe("EnableCachingGradually");
    await expect(e.decide(s.run, "bob", "approve", { planHash: shown })).rejects.toThrow(/already decided: approve by alice/);
    await expect(e.decide(s.run, "bob", "approve", { planHash: "0000000000000000" })).rejects.toThrow(/plan changed/);
    expect(await e.store.listDecisions(s.run)).toHaveLength(1);
    expect(e.sandbox().share("prod", "cache")).toBe(0);
  });

  it("someone who is not an approver is refused and nothing is recorded", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    await expect(e.decide(s.run, "mallory", "approve")).rejects.toThrow(/mallory may not decide on prod; approvers: alice, bob/);
    expect(await e.store.listDecisions(s.run)).toEqual([]);
    expect((await e.summary(s.run)).pending?.step).toBe("ProvisionCacheInfrastructure");
  });

  it("one modification per deployment: the second run is refused naming the holder; released at the end", async () => {
    const e = await open();
    const first = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    await expect(e.start(CACHING_PLAN, "dave", "again")).rejects.toThrow(new RegExp(`in progress: run ${first.run}`));
    expect((await e.runs()).map((r) => r.run)).toEqual([first.run]);
    const other = await e.start({ ...CACHING_PLAN, deployment: "staging" }, "dave", "staging is free");
    expect(other.status).toBe("waiting");
    await e.decide(first.run, "alice", "reject");
    expect(await e.store.lockHolder("prod")).toBeUndefined();
    const third = await e.start(CACHING_PLAN, "dave", "now it is free");
    expect(third.status).toBe("waiting");
  });

  it("unknown deployment and invalid params are refused before anything happens", async () => {
    const e = await open();
    await expect(e.start({ ...CACHING_PLAN, deployment: "qa" }, "carol", "x")).rejects.toThrow(/unknown deployment "qa"; known: prod, staging/);
    await expect(e.start({ ...CACHING_PLAN, params: { rolloutSteps: [50, 10] } }, "carol", "x")).rejects.toThrow(/rollout steps must increase/);
    await expect(e.start({ workflow: "upgrade-database-schema", deployment: "prod", params: {} }, "carol", "x")).rejects.toThrow(/no schema change was given/);
    await expect(e.start({ workflow: "upgrade-database-schema", deployment: "prod", params: { changes: ["CREAT INDX oops"] } }, "carol", "x")).rejects.toThrow(/does not parse/);
    expect(await e.runs()).toEqual([]);
    expect(await e.store.lockHolder("prod")).toBeUndefined();
  });

  it("autoApprove policy records an automatic decision like a human one", async () => {
    const { parseConfig } = await import("../src/config.js");
    const { Engine } = await import("../src/engine.js");
    const { testEnv } = await import("./helpers.js");
    const config = parseConfig({
      deployments: { sbx: { provider: "sandbox", approvers: ["alice"], policy: { autoApprove: ["provision", "traffic"] }, monitoring: { windowMinutes: 10 } } },
    }, "test");
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), config }));
    const s = await approveAll(e, await e.start({ ...CACHING_PLAN, deployment: "sbx" }, "carol", "x"));
    expect(s.status).toBe("done");
    const tr = await e.transcript(s.run);
    expect(tr.decisions.map((d) => [d.decision, d.by])).toEqual([
      ["auto", "policy:sbx"], ["auto", "policy:sbx"], ["auto", "policy:sbx"], ["auto", "policy:sbx"],
    ]);
  });
});
