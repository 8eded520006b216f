/**
 * Routing with `Command({ goto })`: every node declares the nodes it may go to (`ends`), the builder checks at build
 * time that its router can answer nothing else and that a gated step is an end of its own approval node only, and
 * every transition actually taken (read back from the checkpoints, not from the builder) lands on a declared end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { GateKind } from "../src/core/gates.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { CLEANUP, ROLLBACK, assertRoutes, gateNode } from "../src/graph/builder.js";
import type { Next } from "../src/graph/state.js";
import { defineStep, type Step, type WorkflowDef } from "../src/graph/step.js";
import { seeded } from "./fixtures/random.js";
import { workflowDefs } from "../src/graph/workflows/registry.js";
import { CACHING_PLAN, tempHome, testEnv } from "./helpers.js";

/** Each node's declared ends, as the compiled graph holds them. */
function declaredEnds(engine: Engine, workflow: string): Map<string, readonly string[] | undefined> {
  const nodes = (engine.graph(workflow) as unknown as { builder: { nodes: Record<string, { ends?: readonly string[] }> } }).builder.nodes;
  return new Map(Object.entries(nodes).map(([name, n]) => [name, n.ends]));
}

/** The transitions a run took, from its checkpoints: consecutive loop checkpoints name the node that ran and the one it chose. */
async function transitions(engine: Engine, workflow: string, run: string): Promise<[string, string][]> {
  const history = [];
  for await (const h of engine.graph(workflow).getStateHistory({ configurable: { thread_id: run } })) history.push(h);
  history.reverse();
  const out: [string, string][] = [];
  for (let i = 1; i < history.length; i++) {
    const [a, b] = [history[i - 1]!, history[i]!];
    if (a.metadata?.source !== "loop" || b.metadata?.source !== "loop" || (b.metadata.step ?? 0) !== (a.metadata.step ?? 0) + 1) continue;
    if (a.next.length !== 1 || b.next.length !== 1) continue;
    out.push([a.next[0]!, b.next[0]!]);
  }
  return out;
}


/** Random steps: gates of every kind, stages, verdicts that roll back or ask, and a cleanup that is a `delete` gate. */
function randomWorkflow(seed: number): WorkflowDef {
  const { next: r, pick } = seeded(seed);
  const steps: Step[] = [];
  for (let i = 0; i < 2 + Math.floor(r() * 5); i++) {
    const gate: GateKind | null = r() < 0.5 ? pick(["provision", "traffic", "delete"] as const) : null;
    const stages = r() < 0.35 ? [10, 50, 100].slice(0, 1 + Math.floor(r() * 3)) : null;
    const verdict = r() < 0.15 ? pick(["degraded", "inconclusive"] as const) : "healthy";
    const fails = r() < 0.05;
    steps.push(defineStep({
      name: `S${i}`,
      description: `S${i}`,
      input: z.object({}),
      output: z.object({ ok: z.boolean() }),
      prepare: () => ({}),
      ...(stages ? { stages: () => stages } : {}),
      run: async () => {
        if (fails) throw new Error("step failed on purpose");
        return { output: { ok: true }, verdict };
      },
      ...(gate ? { gate: { kind: gate, describe: async () => ({ action: `do S${i}`, why: "test", risk: "none", change: {} }) } } : {}),
    }));
  }
  return {
    id: `routes-${seed}`, title: "random", params: z.object({}), steps,
    rollback: async () => ({ restored: [], leftovers: seed % 2 ? [{ id: `r-${seed}`, kind: "thing", description: "a thing" }] : [] }),
    cleanup: async () => undefined,
  };
}

describe("every node routes only to its declared ends", () => {
  let t: ReturnType<typeof tempHome>;
  let engine: Engine;
  const randoms: Record<string, WorkflowDef> = {};
  for (let seed = 1; seed <= 40; seed++) randoms[`routes-${seed}`] = randomWorkflow(seed);
  const registered = workflowDefs();
  beforeAll(async () => {
    t = tempHome();
    engine = await Engine.open({ env: testEnv(t.home), cwd: t.home, workflows: { ...registered, ...randoms } });
  });
  afterAll(async () => {
    await engine.close();
    t.cleanup();
  });

  it("in every registered workflow's compiled graph: each node declares its ends, each end is a node, a gated step is an end of its approval node only", () => {
    expect(Object.keys(registered).length).toBeGreaterThanOrEqual(5);
    for (const [id, def] of Object.entries({ ...registered, ...randoms })) {
      const ends = declaredEnds(engine, id);
      const names = new Set(ends.keys());
      for (const [node, e] of ends) {
        if (node === "__start__" || node === "finish") continue;
        expect(e?.length, `${id}/${node} declares no ends`).toBeGreaterThan(0);
        for (const end of e!) expect(names.has(end), `${id}/${node} -> ${end}`).toBe(true);
      }
      const gated = [...def.steps.filter((s) => s.gated).map((s) => s.name), ...(def.cleanup ? [CLEANUP] : [])];
      for (const step of gated) {
        const into = [...ends].filter(([, e]) => e?.includes(step)).map(([n]) => n);
        expect(into, `${id}/${step}`).toEqual([gateNode(step)]);
      }
    }
  });

  it("over caching runs (approved, rejected, cancelled, paused) and 40 random runs with random decisions, every transition taken is a declared end", async () => {
    const seen = new Set<string>();
    const check = async (workflow: string, s: RunSummary) => {
      const ends = declaredEnds(engine, workflow);
      const taken = await transitions(engine, workflow, s.run);
      expect(taken.length).toBeGreaterThan(0);
      for (const [from, to] of taken) {
        expect(ends.get(from), `${workflow}: ${from} -> ${to}`).toContain(to);
        // A gated step is entered from its approval node, never from anywhere else.
        const def = engine.workflow(workflow);
        if (def.steps.some((st) => st.gated && st.name === to) || to === CLEANUP) expect(from).toBe(gateNode(to));
        seen.add(`${from}->${to}`);
      }
    };
    const drive = async (s0: RunSummary, decide: (s: RunSummary) => Promise<RunSummary>) => {
      let s = s0;
      for (let guard = 0; s.pending && guard < 60; guard++) s = await decide(s);
      return s;
    };

    const approved = await drive(await engine.start(CACHING_PLAN, "carol", "x"), (s) => engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash }));
    expect(approved.status).toBe("done");
    await check(CACHING_PLAN.workflow, approved);
    let gates = 0;
    const rejected = await drive(await engine.start({ ...CACHING_PLAN, deployment: "staging" }, "carol", "x"), (s) => engine.decide(s.run, "alice", ++gates === 2 ? "reject" : "approve", { planHash: s.pending!.planHash }));
    expect(["rejected", "rolled-back"]).toContain(rejected.status);
    await check(CACHING_PLAN.workflow, rejected);

    for (let seed = 1; seed <= 40; seed++) {
      const r = seeded(seed * 104729).next;
      const id = `routes-${seed}`;
      const s = await drive(await engine.start({ workflow: id, deployment: "staging", params: {} }, "carol", "x"), async (cur) => {
        const action = r();
        try {
          if (action < 0.75) return await engine.decide(cur.run, "alice", r() < 0.85 ? "approve" : "reject", { planHash: cur.pending!.planHash });
          if (action < 0.85) return await engine.pause(cur.run, "carol", "pause");
          if (action < 0.93) return (await engine.requestRollback(cur.run, "carol", "rollback")).summary;
          return await engine.cancel(cur.run, "carol", "cancel");
        } catch {
          return engine.decide(cur.run, "alice", "reject");
        }
      });
      expect(["done", "rejected", "rolled-back", "failed", "cancelled"], id).toContain(s.status);
      await check(id, s);
    }
    // The runs went through every kind of node: approvals, holds, inconclusive gates, rollbacks, cleanups.
    const kinds = [...seen].join(" ");
    for (const node of ["approve_inconclusive", "approve_hold", ROLLBACK, `approve_${CLEANUP}`, "finish"]) expect(kinds).toContain(node);
  });
});

describe("the build-time check refuses a wiring that could skip a gate", () => {
  const steps = [{ name: "A", gated: false }, { name: "B", gated: true }];
  const all = ["A", "approve_B", ROLLBACK, "finish"];
  const route = (n: Next): string => (n.to === "step" ? (n.index === 0 ? "A" : "approve_B") : n.to === "finish" ? "finish" : ROLLBACK);
  const ok = [
    { name: "init", router: route, ends: all },
    { name: "A", router: route, ends: all },
    { name: ROLLBACK, router: route, ends: all },
    { name: "approve_B", router: (n: Next) => (n.to === "step" ? "B" : route(n)), ends: ["B", ROLLBACK, "finish"] },
    { name: "B", router: route, ends: all },
  ];

  it("accepts the wiring the builder makes", () => {
    expect(() => assertRoutes("w", ok, steps)).not.toThrow();
  });

  it("a router that can answer an end it did not declare", () => {
    const bad = ok.map((r) => (r.name === "A" ? { ...r, ends: ["A", ROLLBACK, "finish"] } : r));
    expect(() => assertRoutes("w", bad, steps)).toThrow(/w: A can go to approve_B .*not among its declared ends/);
  });

  it("a gated step reachable from another node than its approval node", () => {
    const bad = ok.map((r) => (r.name === "A" ? { ...r, router: (n: Next) => (n.to === "step" && n.index === 1 ? "B" : route(n)), ends: [...all, "B"] } : r));
    expect(() => assertRoutes("w", bad, steps)).toThrow(/gated step B is reachable from A, approve_B, not only from approve_B/);
  });

  it("an end that is not a node", () => {
    const bad = ok.map((r) => (r.name === ROLLBACK ? { ...r, ends: [...all, "Nowhere"] } : r));
    expect(() => assertRoutes("w", bad, steps)).toThrow(/Rollback declares end Nowhere, which is not a node/);
  });
});
