import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import { CACHING_PLAN, engineSuite, testEnv } from "./helpers.js";

const REQUEST = "add redis caching to prod";

describe("pause, cancel, rollback requests and approval expiry", () => {
  const suite = engineSuite();
  const open = () => suite.open();

  it("a pause acts at the next step boundary; continuing still stops at the next gate", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash }); // provision
    const atStage1 = await e.summary(s.run);
    expect(atStage1.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
    const paused = await e.pause(s.run, "carol", "deploy freeze until 15:00");
    expect(paused.status).toBe("waiting"); // a run waiting at a gate stays there; the pause acts after it
    const held = await e.decide(s.run, "alice", "approve", { planHash: atStage1.pending!.planHash });
    expect(held.status).toBe("paused");
    expect(held.pending).toMatchObject({ kind: "paused", step: "EnableCachingGradually", expiresAt: null });
    expect(held.pending!.gate.why).toMatch(/Paused by carol: deploy freeze until 15:00/);
    expect(e.sandbox().share("prod", "cache")).toBe(10);
    await expect(e.unpause(s.run, "mallory")).rejects.toThrow(/mallory may not resume run .*requester \(carol\) or an approver/);
    const resumed = await e.unpause(s.run, "carol");
    // Continuing a pause is not an approval of the traffic stage that follows it.
    expect(resumed.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
    expect(resumed.pending!.gate.stage).toBe(1);
    expect(e.sandbox().share("prod", "cache")).toBe(10);
    const decisions = await e.store.listDecisions(s.run);
    expect(decisions.map((d) => [d.kind, d.decision, d.by])).toEqual([
      ["provision", "approve", "alice"],
      ["traffic", "approve", "alice"],
      ["paused", "approve", "carol"],
    ]);
  });

  it("a pause during a watch window leaves the window at once (no record of the step), holds before it, and continuing watches on from the same start", async () => {
    const events: RunEvent[] = [];
    let e!: Engine;
    e = await suite.open({}, events);
    const sink = events.push.bind(events);
    events.push = (...xs: RunEvent[]) => {
      for (const x of xs) {
        // The pause arrives while the window runs (as Ctrl-C in the chat does), not at a step boundary.
        if (x.type === "step-start" && x.step === "MonitorCachePerformance") void e.store.addControl({ run: x.run, id: "pause:ctrl-c", kind: "pause", by: "carol", reason: "Ctrl-C in the chat", at: new Date(0).toISOString() });
      }
      return sink(...xs);
    };
    let s = await e.start(CACHING_PLAN, "carol", REQUEST);
    while (s.pending && s.pending.kind !== "paused") s = await e.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    expect(s.status).toBe("paused");
    expect(s.pending).toMatchObject({ kind: "paused", step: "MonitorCachePerformance" });
    expect(s.pending!.gate.why).toBe("Paused by carol: Ctrl-C in the chat");
    expect(events.some((x) => x.type === "progress" && /^left the watch window after [\d.]+ of \d+ min for the pause by carol; continuing watches on from the same start$/.test(x.message))).toBe(true);
    const before = await e.transcript(s.run);
    expect(before.steps.map((x) => x.name)).not.toContain("MonitorCachePerformance");
    const startedOnce = await e.store.remember(s.run, "MonitorCachePerformance:0:window-start", "not-recorded");
    expect(startedOnce).not.toBe("not-recorded");
    const done = await e.unpause(s.run, "carol");
    let end = done;
    while (end.pending) end = await e.decide(end.run, "alice", "approve", { planHash: end.pending.planHash });
    expect(end.status, end.outcome ?? "").toBe("done");
    const after = await e.transcript(s.run);
    expect(after.steps.filter((x) => x.name === "MonitorCachePerformance")).toHaveLength(1);
    expect(await e.store.remember(s.run, "MonitorCachePerformance:0:window-start", "not-recorded")).toBe(startedOnce);
  });

  it("two pauses record one; a pause that has not acted yet can be withdrawn", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    await Promise.all([e.pause(s.run, "alice"), e.pause(s.run, "alice")]);
    expect((await e.store.openControls(s.run)).filter((c) => c.kind === "pause").length).toBeGreaterThanOrEqual(1);
    const withdrawn = await e.unpause(s.run, "alice");
    expect(withdrawn.pending?.kind).toBe("provision");
    expect(await e.store.openControls(s.run)).toEqual([]);
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(next.pending).toMatchObject({ kind: "traffic" });
  });

  it("cancel by the requester at a traffic gate restores config and traffic and ends cancelled", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    const before = e.sandbox().config("prod");
    expect(before).toHaveProperty("Cache__Enabled");
    const gate = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(e.sandbox().config("prod")).not.toEqual(before);
    await expect(e.cancel(s.run, "mallory")).rejects.toThrow(/may not cancel/);
    const cancelled = await e.cancel(s.run, "carol", "wrong deployment");
    expect(e.sandbox().config("prod")).toEqual(before);
    expect(e.sandbox().share("prod", "cache")).toBe(0);
    // The cache node the run created waits behind a delete gate, which the requester may not approve on prod.
    expect(cancelled.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
    await expect(e.decide(s.run, "carol", "approve")).rejects.toThrow(/two-person rule|may not decide/);
    // What the rollback left is a delete decision: neither a cancel nor a rollback request answers it.
    await expect(e.cancel(s.run, "carol")).rejects.toThrow(/already rolled back; what it left waits at CleanupAfterRollback/);
    await expect(e.requestRollback(s.run, "alice", "again")).rejects.toThrow(/already rolled back/);
    const done = await e.decide(s.run, "bob", "approve", { planHash: cancelled.pending!.planHash });
    expect(done.status).toBe("cancelled");
    expect(done.outcome).toMatch(/cancelled by carol at EnableCachingGradually: wrong deployment/);
    expect(e.sandbox().activeResources("prod")).toEqual([]);
    expect(gate.pending?.kind).toBe("traffic");
    await expect(e.cancel(s.run, "carol")).rejects.toThrow(/already ended \(cancelled/);
  });

  it("a rollback asked for by a non-approver becomes a gate that only an approver decides", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    const stage1 = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    const asked = await e.requestRollback(s.run, "dave", "tiles look stale");
    expect(asked.acted).toBe(false);
    expect(asked.message).toMatch(/dave may not roll back prod alone.*approvers \(alice, bob\)/);
    const held = await e.decide(s.run, "alice", "approve", { planHash: stage1.pending!.planHash });
    expect(held.pending).toMatchObject({ kind: "rollback" });
    expect(held.status).toBe("waiting");
    expect(e.sandbox().share("prod", "cache")).toBe(10);
    await expect(e.decide(s.run, "dave", "approve")).rejects.toThrow(/dave may not decide/);
    await expect(e.decide(s.run, "carol", "reject")).rejects.toThrow(/carol may not decide/); // declining would keep the change
    const rolled = await e.decide(s.run, "bob", "approve", { planHash: held.pending!.planHash });
    expect(e.sandbox().share("prod", "cache")).toBe(0);
    expect(rolled.pending).toMatchObject({ step: "CleanupAfterRollback" });
    const end = await e.decide(s.run, "alice", "reject", { planHash: rolled.pending!.planHash });
    expect(end.status).toBe("rolled-back");
    expect(end.outcome).toMatch(/rollback requested by dave \(tiles look stale\), approved by bob/);
  });

  it("an approver's rollback at a gate acts at once; a declined rollback request lets the run go on", async () => {
    const e = await open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    const stage1 = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    await e.requestRollback(s.run, "dave", "");
    const held = await e.decide(s.run, "alice", "approve", { planHash: stage1.pending!.planHash });
    const goOn = await e.decide(s.run, "bob", "reject", { planHash: held.pending!.planHash, comment: "healthy" });
    expect(goOn.pending).toMatchObject({ kind: "traffic", step: "EnableCachingGradually" });
    expect(e.sandbox().share("prod", "cache")).toBe(10);
    const r = await e.requestRollback(s.run, "bob", "not worth it");
    expect(r.acted).toBe(true);
    expect(e.sandbox().share("prod", "cache")).toBe(0);
    expect(r.summary.pending?.step).toBe("CleanupAfterRollback");
    const end = await e.decide(s.run, "alice", "reject", { planHash: r.summary.pending!.planHash });
    expect(end.status).toBe("rolled-back");
    await expect(e.requestRollback(s.run, "bob", "again")).rejects.toThrow(/already ended/);
  });

  it("an expired approval request refuses decisions until asked again; each notice goes out once", async () => {
    let now = Date.parse("2026-11-26T10:00:00Z");
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, now: () => new Date(now) }));
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    expect(s.pending!.expiresAt).toBe("2026-11-27T10:00:00.000Z"); // provision: 24 h
    now += 20 * 3_600_000;
    const [ticket] = await e.pendingGates();
    expect(ticket).toMatchObject({ run: s.run, kind: "provision", warnedAt: null });
    expect(await e.noteGate(s.run, ticket!.interrupt, "warned")).toBe(true);
    expect(await e.noteGate(s.run, ticket!.interrupt, "warned")).toBe(false);
    now += 5 * 3_600_000;
    await expect(e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash })).rejects.toThrow(/expired at 2026-11-27T10:00:00.000Z; nothing proceeds/);
    expect(await e.store.listDecisions(s.run)).toEqual([]);
    expect(e.sandbox().count("prod", "provision-cache")).toBe(0);
    await expect(e.requestAgain(s.run, "mallory")).rejects.toThrow(/may not/);
    expect(await e.store.listDecisions(s.run)).toEqual([]);
    const again = await e.requestAgain(s.run, "carol");
    expect(again.pending!.planHash).toBe(s.pending!.planHash);
    expect(again.pending!.expiresAt).toBe(new Date(now + 24 * 3_600_000).toISOString());
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(next.pending?.kind).toBe("traffic");
    expect(next.pending!.expiresAt).toBe(new Date(now + 60 * 60_000).toISOString()); // traffic: 60 min
    expect((await e.pendingGates()).map((t) => t.kind)).toEqual(["traffic"]);
    // An expired request can still be rejected (or cancelled): that only restores.
    now += 2 * 3_600_000;
    const cancelled = await e.cancel(s.run, "carol", "too late now");
    expect(cancelled.pending?.step).toBe("CleanupAfterRollback");
    expect(e.sandbox().config("prod")).not.toHaveProperty("ConnectionStrings__Redis");
  });

  it("approvers named as external groups decide only with verified membership, re-checked by the graph", async () => {
    const loaded = parseConfig({ deployments: { prod: { provider: "sandbox", seed: 16, approvers: ["S0ONCALL", "U0ALICE"] } } }, "test");
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, config: loaded }));
    const s = await e.start(CACHING_PLAN, "U0CAROL", REQUEST);
    await expect(e.decide(s.run, "U0BOB", "approve")).rejects.toThrow(/U0BOB may not decide on prod/);
    const next = await e.decide(s.run, { user: "U0BOB", groups: ["S0ONCALL"] }, "approve", { planHash: s.pending!.planHash });
    expect(next.pending?.kind).toBe("traffic");
    expect((await e.store.listDecisions(s.run))[0]).toMatchObject({ by: "U0BOB", groups: ["S0ONCALL"] });
    const by = await e.decide(s.run, "U0ALICE", "approve", { planHash: next.pending!.planHash });
    expect(by.pending?.kind).toBe("traffic");
  });

  it("an external group listed inside a config group counts too", async () => {
    const loaded = parseConfig({ deployments: { prod: { provider: "sandbox", seed: 16, approvers: ["oncall"] } }, groups: { oncall: ["S0ONCALL"] } }, "test");
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, config: loaded }));
    const s = await e.start(CACHING_PLAN, "U0CAROL", REQUEST);
    await expect(e.decide(s.run, { user: "U0BOB", groups: ["S0OTHER"] }, "approve")).rejects.toThrow(/may not decide/);
    expect((await e.decide(s.run, { user: "U0BOB", groups: ["S0ONCALL"] }, "approve", { planHash: s.pending!.planHash })).pending?.kind).toBe("traffic");
  });
});

describe("monitoring windows", () => {
  const suite = engineSuite();

  it("a degradation ends the window as soon as it shows, not after the full window", async () => {
    const e = await suite.open({ HONUA_SANDBOX_FAULTS: "latency-regression" });
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    const stage1 = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    const end = await e.decide(s.run, "alice", "approve", { planHash: stage1.pending!.planHash });
    expect(e.sandbox().share("prod", "cache")).toBe(0);
    const tr = await e.transcript(s.run);
    const stage = tr.steps.find((x) => x.name === "EnableCachingGradually")!.output as { verdict: string; reason: string; window: { samples: number } };
    expect(stage.verdict).toBe("degraded");
    expect(stage.reason).toMatch(/after [3-9] of 10 min/);
    expect(stage.window.samples).toBeLessThan(10);
    expect(end.pending?.step).toBe("CleanupAfterRollback");
    // The raw values behind the verdict are in the transcript, outside the checkpointed state.
    const evidence = tr.evidence[(tr.steps.find((x) => x.name === "EnableCachingGradually")!.output as { evidence: string }).evidence] as { queries: { reading: string; points: { value: number }[] }[] };
    const p95 = evidence.queries.find((q) => q.reading === "p95Ms")!;
    expect(p95.points.length).toBe(stage.window.samples);
    expect(Math.max(...p95.points.map((p) => p.value))).toBe((stage.window as unknown as { p95Ms: number }).p95Ms);
  });
});

describe("watch (unit)", () => {
  const healthy = { p95Ms: 80, errorRate: 0.001, hitRatio: 0.8, requestsPerSecond: 100, originRequestsPerSecond: 20 };
  function fakeAdapters(startMs: number) {
    let now = startMs;
    const adapters = {
      clock: { now: () => new Date(now), sleep: async (ms: number) => void (now += ms) },
      metrics: {
        samples: async (from: Date, to: Date, every: number) => {
          const out = [];
          for (let t = from.getTime() + every * 60_000; t <= to.getTime(); t += every * 60_000) out.push({ at: new Date(t).toISOString(), ...healthy });
          return out;
        },
      },
      cost: { monthly: async () => ({ origin: 100 }) },
    };
    return adapters as unknown as import("../src/tools/types.js").DeploymentAdapters;
  }
  const baseline = { at: "x", windowMinutes: 60, samples: 60, p95Ms: 100, errorRate: 0.001, hitRatio: null, requestsPerSecond: 100, originRequestsPerSecond: 100, monthlyCostUsd: 100 };
  const monitoring = { minSamples: 3, errorRateThreshold: 0.02, latencyFactor: 1.5, latencyMinDeltaMs: 20 };

  it("a degraded reading is confirmed by the next before a rollback: a one-off blip is named and watched on, a lasting one degrades", async () => {
    const { monitorWindow } = await import("../src/graph/patterns/monitor-window.js");
    const start = Date.parse("2026-11-26T10:00:00Z");
    const ctxFor = (adapters: ReturnType<typeof fakeAdapters>, progress: unknown[]) => ({
      adapters, deploymentConfig: { monitoring: { ...monitoring, windowMinutes: 60, stageMinutes: 10, sampleEveryMinutes: 1, minSamples: 3 } },
      remember: async (_n: string, v: string) => v, attach: async (n: string) => n, progress: (m: unknown) => void progress.push(m),
      stopRequested: async () => null, pauseRequested: async () => null,
    }) as unknown as import("../src/graph/step.js").StepContext;
    const readings = (verdicts: ("healthy" | "degraded")[]) => {
      let i = 0;
      return { name: "database", read: async () => {
        const v = verdicts[Math.min(i++, verdicts.length - 1)]!;
        return { verdict: v, reason: v === "degraded" ? "query time 31 ms > baseline 1 ms x 1.5 (and > +20 ms)" : "database healthy", figures: {} };
      } };
    };
    const notes: unknown[] = [];
    const blip = await monitorWindow(ctxFor(fakeAdapters(start), notes), { minutes: 60, baseline, signals: [readings(["healthy", "degraded", "healthy"])] });
    expect(blip.verdict).toBe("healthy");
    expect(blip.reason).toContain("(1 unconfirmed: query time 31 ms > baseline 1 ms x 1.5 (and > +20 ms), not confirmed by the next reading)");
    expect(notes).toContain("database: query time 31 ms > baseline 1 ms x 1.5 (and > +20 ms); the next reading does not confirm it, watching on");
    const lasting = await monitorWindow(ctxFor(fakeAdapters(start), []), { minutes: 60, baseline, signals: [readings(["healthy", "degraded", "degraded"])] });
    expect(lasting.verdict).toBe("degraded");
    expect(lasting.endedEarly).toBe("degraded");
    expect(lasting.reason).toMatch(/^query time 31 ms > baseline 1 ms x 1\.5 \(and > \+20 ms\) \(after 10 of 60 min\)$/);
  });

  it("a stop request ends the wait between slices; a window started before a crash only waits for what is left", async () => {
    const { watch } = await import("../src/tools/metrics/observe.js");
    const start = Date.parse("2026-11-26T10:00:00Z");
    let asked = 0;
    const stopped = await watch(fakeAdapters(start), 60, 1, { start: new Date(start), baseline, monitoring, stopRequested: async () => (++asked >= 2 ? "cancel requested by carol" : null) });
    expect(stopped.endedEarly).toBe("cancel requested by carol");
    expect(stopped.window.samples).toBe(10); // two 5-minute slices
    const resumed = fakeAdapters(start + 45 * 60_000);
    const w = await watch(resumed, 60, 1, { start: new Date(start), baseline, monitoring });
    expect(w).toMatchObject({ verdict: "healthy", endedEarly: null });
    expect(w.window.samples).toBe(60);
    expect(resumed.clock.now().getTime() - start).toBe(60 * 60_000); // waited 15 minutes, not 60
  });
});

describe("a start interrupted before it took the lock", () => {
  const suite = engineSuite();

  it("is reported failed (never started), not running forever, and does not hold the deployment", async () => {
    const now = Date.parse("2026-11-26T10:00:00Z");
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, now: () => new Date(now) }));
    const startedAt = new Date(now - 120_000).toISOString();
    await e.store.createRun({ run: "run-crashed", workflow: "add-caching-layer", deployment: "prod", status: "running", requestedBy: "carol", startedAt, request: REQUEST });
    expect(await e.summary("run-crashed")).toMatchObject({ status: "failed", outcome: expect.stringMatching(/never started/) });
    expect((await e.runs()).find((r) => r.run === "run-crashed")?.status).toBe("failed");
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    expect(s.pending?.kind).toBe("provision");
  });
});

describe("run claims across hosts and databases from an earlier version", () => {
  const suite = engineSuite();

  it("a claim from another host holds while renewed and is taken over once its lease ran out", async () => {
    const { isAlive, CLAIM_LEASE_MS } = await import("../src/engine.js");
    const e = await suite.open();
    const now = Date.parse("2026-11-26T10:00:00Z");
    const at = (msAgo: number) => new Date(now - msAgo).toISOString();
    await e.store.createRun({ run: "run-x", workflow: "add-caching-layer", deployment: "prod", status: "running", requestedBy: "carol", startedAt: at(0), request: REQUEST });
    await e.store.claim("run-x", "replica-b:4242:aa", at(1000), () => true);
    await expect(e.store.claim("run-x", "replica-a:1:bb", at(0), (o, c) => isAlive(o, c, now))).rejects.toThrow(/driven by another process \(replica-b:4242:aa\)/);
    await e.store.heartbeat("run-x", "replica-b:4242:aa", at(CLAIM_LEASE_MS + 1000));
    await e.store.claim("run-x", "replica-a:1:bb", at(0), (o, c) => isAlive(o, c, now));
    // The old driver's late heartbeat and release touch nothing it no longer holds.
    await e.store.heartbeat("run-x", "replica-b:4242:aa", at(0));
    await e.store.release("run-x", "replica-b:4242:aa");
    await expect(e.store.claim("run-x", "replica-c:1:cc", at(0), (o, c) => isAlive(o, c, now))).rejects.toThrow(/replica-a:1:bb/);
  });

  it("opens an agent database made before decisions recorded groups and claims had a lease", async () => {
    const { default: Database } = await import("better-sqlite3");
    const { join } = await import("node:path");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(suite.home, { recursive: true });
    const old = new Database(join(suite.home, "agent.sqlite"));
    old.exec(`CREATE TABLE honua_runs (run TEXT PRIMARY KEY, workflow TEXT NOT NULL, deployment TEXT NOT NULL, status TEXT NOT NULL,
      requested_by TEXT NOT NULL, started_at TEXT NOT NULL, updated_at TEXT NOT NULL, request TEXT NOT NULL, owner TEXT);
      CREATE TABLE honua_decisions (run TEXT NOT NULL, interrupt TEXT NOT NULL, step TEXT NOT NULL, stage INTEGER, kind TEXT NOT NULL,
      decision TEXT NOT NULL, by_user TEXT NOT NULL, at TEXT NOT NULL, plan_hash TEXT NOT NULL, comment TEXT, PRIMARY KEY (run, interrupt));`);
    old.close();
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", REQUEST);
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(next.pending?.kind).toBe("traffic");
    expect((await e.store.listDecisions(s.run))[0]).toMatchObject({ by: "alice", groups: [] });
  });
});

describe("a cancel racing an approval", () => {
  const suite = engineSuite();

  it("never fails because the gate was decided first: the cancel acts before the next step, once", async () => {
    const a = await suite.open();
    const b = await suite.open();
    const s = await a.start(CACHING_PLAN, "carol", REQUEST);
    const stage1 = await a.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    const p = stage1.pending!;
    // Another process recorded bob's approval and has not resumed the run yet when carol cancels.
    await a.store.recordDecision({ run: s.run, interrupt: p.interrupt, step: p.step, stage: p.gate.stage, kind: p.kind, decision: "approve", by: "bob", at: "2026-11-26T10:00:00.000Z", planHash: p.planHash, comment: null, groups: [] });
    const cancelled = await b.cancel(s.run, "carol", "changed my mind");
    expect(cancelled.pending?.interrupt).toBe(p.interrupt);
    // That process resumes: the approved stage runs, then the cancel rolls everything back.
    let cur = await a.resume(s.run);
    expect(cur.pending?.step).toBe("CleanupAfterRollback");
    expect(a.sandbox().share("prod", "cache")).toBe(0);
    cur = await a.decide(s.run, "bob", "approve", { planHash: cur.pending!.planHash });
    expect(cur).toMatchObject({ status: "cancelled", outcome: expect.stringMatching(/cancelled by carol: changed my mind/) });
    expect(a.sandbox().count("prod", "traffic-share")).toBe(2); // 10 %, then back to 0 %: nothing ran twice
  });
});
