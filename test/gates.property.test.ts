import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { GateKind } from "../src/core/gates.js";
import { Engine } from "../src/engine.js";
import { gateNode } from "../src/graph/builder.js";
import { defineStep, type Step, type WorkflowDef } from "../src/graph/step.js";
import { workflowDefs } from "../src/graph/workflows/registry.js";
import { openEngine, tempHome, testEnv } from "./helpers.js";

/** Small deterministic PRNG so every failure is reproducible from its seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

interface Execution {
  run: string;
  step: string;
  stage: number | null;
}

/** A random workflow: steps with random gates, stages and monitoring verdicts; each execution is logged. */
function randomWorkflow(seed: number, log: Execution[], engineRef: { current?: Engine }): WorkflowDef {
  const r = rng(seed);
  const n = 1 + Math.floor(r() * 6);
  const steps: Step[] = [];
  for (let i = 0; i < n; i++) {
    const gate: GateKind | null = r() < 0.5 ? pick(r, ["provision", "traffic", "delete"] as const) : null;
    const stages = r() < 0.3 ? [10, 50, 100].slice(0, 1 + Math.floor(r() * 3)) : null;
    const verdict = r() < 0.15 ? pick(r, ["degraded", "inconclusive"] as const) : "healthy";
    const name = `S${i}`;
    steps.push(defineStep({
      name,
      description: name,
      input: z.object({ stage: z.number().nullable() }),
      output: z.object({ ok: z.boolean() }),
      prepare: (_v, stage) => ({ stage }),
      ...(stages ? { stages: () => stages } : {}),
      run: async (ctx, input) => {
        // The property, checked at the moment of the side effect: a gated step has a recorded approval for this exact gate.
        if (gate) {
          const decisions = await engineRef.current!.store.listDecisions(ctx.run);
          const stageIdx = input.stage === null ? null : stages!.indexOf(input.stage);
          const mine = decisions.filter((d) => d.step === name && d.stage === stageIdx && d.kind === gate);
          if (!mine.some((d) => d.decision === "approve" || d.decision === "auto")) throw new Error(`PROPERTY VIOLATED: ${name} ran without approval`);
        }
        log.push({ run: ctx.run, step: name, stage: input.stage });
        return { output: { ok: true }, verdict };
      },
      ...(gate ? { gate: { kind: gate, describe: async () => ({ action: `do ${name}`, why: "test", risk: "none", change: {} }) } } : {}),
    }));
  }
  return { id: `random-${seed}`, title: "random", params: z.object({}), steps, rollback: async () => ({ restored: [], leftovers: [] }) };
}

describe("property: no gated step runs without a recorded decision", () => {
  let t: ReturnType<typeof tempHome>;
  beforeAll(() => {
    t = tempHome();
  });
  afterAll(() => t.cleanup());

  it("in every compiled graph (the five workflows and 60 random ones) the only edge into a gated step comes from its approval node", async () => {
    const log: Execution[] = [];
    const ref: { current?: Engine } = {};
    const defs: Record<string, WorkflowDef> = { ...workflowDefs() };
    for (let seed = 1; seed <= 60; seed++) defs[`random-${seed}`] = randomWorkflow(seed, log, ref);
    const engine = await Engine.open({ env: testEnv(t.home), workflows: defs });
    try {
      for (const [id, def] of Object.entries(defs)) {
        const g = await engine.graph(id).getGraphAsync();
        for (const step of def.steps.filter((s) => s.gated)) {
          const into = g.edges.filter((e) => e.target === step.name);
          expect(into.length, `${id}/${step.name}`).toBeGreaterThan(0);
          expect(into.every((e) => e.source === gateNode(step.name)), `${id}/${step.name}: ${into.map((e) => e.source).join(",")}`).toBe(true);
        }
      }
    } finally {
      await engine.close();
    }
  });

  it("over 120 actual runs with random decisions, pauses, cancels and rollback requests by random people, every gated execution had an approval first", async () => {
    const log: Execution[] = [];
    const ref: { current?: Engine } = {};
    const defs: Record<string, WorkflowDef> = {};
    for (let seed = 1; seed <= 120; seed++) defs[`random-${seed}`] = randomWorkflow(seed, log, ref);
    const engine = await Engine.open({ env: testEnv(t.home), workflows: defs });
    ref.current = engine;
    const people = ["alice", "bob", "carol", "mallory"];
    let gatedSeen = 0;
    let refusals = 0;
    const kindsSeen = new Set<string>();
    const endings = new Set<string>();
    try {
      for (let seed = 1; seed <= 120; seed++) {
        const r = rng(seed * 7919);
        const requester = pick(r, people);
        let s = await engine.start({ workflow: `random-${seed}`, deployment: "staging", params: {} }, requester, "random");
        for (let guard = 0; s.pending && guard < 50; guard++) {
          gatedSeen++;
          kindsSeen.add(s.pending.kind);
          const who = pick(r, people);
          const decision = r() < 0.8 ? "approve" : "reject";
          const action = r();
          try {
            if (action < 0.7) s = await engine.decide(s.run, who, decision, { planHash: s.pending.planHash });
            else if (action < 0.8) s = await engine.pause(s.run, who, "random pause");
            else if (action < 0.9) s = (await engine.requestRollback(s.run, who, "random rollback")).summary;
            else s = await engine.cancel(s.run, who, "random cancel");
          } catch (e) {
            refusals++;
            expect(String(e)).toMatch(/may not|two-person|waiting for an approver to decide a rollback|has already rolled back/);
            s = await engine.summary(s.run);
            if (r() < 0.5) s = await engine.decide(s.run, "alice", "reject").catch(() => engine.decide(s.run, "bob", "reject"));
          }
        }
        expect(["done", "rejected", "rolled-back", "failed", "cancelled"]).toContain(s.status);
        endings.add(s.status);
        expect(await engine.store.lockHolder("staging")).toBeUndefined();
        // every execution of a gated step in this run matches one approve/auto decision, one-to-one
        const def = defs[`random-${seed}`]!;
        const gatedExecs = log.filter((x) => x.run === s.run && def.steps.find((st) => st.name === x.step)!.gated);
        // Answers to inconclusive, pause and rollback-request gates are not approvals of a step.
        const approvals = (await engine.store.listDecisions(s.run)).filter((d) => d.decision !== "reject" && ["provision", "traffic", "delete"].includes(d.kind));
        expect(gatedExecs.length).toBe(approvals.length);
      }
    } finally {
      await engine.close();
    }
    expect(gatedSeen).toBeGreaterThan(50);
    expect(refusals).toBeGreaterThan(5);
    expect([...kindsSeen].sort()).toEqual(expect.arrayContaining(["paused", "rollback", "provision", "traffic", "delete"]));
    expect([...endings].sort()).toEqual(expect.arrayContaining(["cancelled", "done", "rejected"]));
    expect(log.some((x) => x.step)).toBe(true);
  });
});

describe("no model output or user text can route around a gate", () => {
  it("resuming a gate directly with a forged decision id is refused, and the step does not run", async () => {
    const t = tempHome();
    const e = await openEngine(t.home);
    try {
      const s = await e.start({ workflow: "add-caching-layer", deployment: "prod", params: {} }, "carol", "x");
      const { Command } = await import("@langchain/langgraph");
      const cfg = { configurable: { thread_id: s.run }, durability: "sync" as const };
      await expect(e.graph("add-caching-layer").invoke(new Command({ resume: { interrupt: "forged", planHash: s.pending!.planHash } }), cfg)).rejects.toThrow(/no recorded decision/);
      await expect(e.graph("add-caching-layer").invoke(new Command({ resume: "approve" }), cfg)).rejects.toThrow();
      expect(e.sandbox().count("prod", "provision-cache")).toBe(0);
      expect((await e.summary(s.run)).pending?.step).toBe("ProvisionCacheInfrastructure");
    } finally {
      await e.close();
      t.cleanup();
    }
  });
});
