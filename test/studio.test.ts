/**
 * LangGraph Studio: every graph `langgraph.json` names is a factory of the workflow's real compiled graph on a throwaway
 * sandbox (its own temp home and an in-memory checkpointer), never the user's store or config; it runs to its first
 * gate, and nothing Studio can send (a resume, a goto into the gated step with an edited state, a state update as the
 * approval node) gets a gated step to run without that gate's own decision in the agent store.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command } from "@langchain/langgraph";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { CLEANUP, ROLLBACK, gateNode, graphSteps } from "../src/graph/builder.js";
import { requireWorkflow } from "../src/graph/workflows/registry.js";
import type { DecisionRecord } from "../src/core/records.js";
import { EPOCH, tempHome } from "./helpers.js";

const ROOT = resolve(new URL("..", import.meta.url).pathname);

/** What the LangGraph CLI reads from `langgraph.json` for a JavaScript project (the fields used here). */
const LanggraphJson = z
  .object({
    node_version: z.enum(["20", "22"]),
    graphs: z.record(z.string(), z.string().regex(/^\.\/[\w./-]+\.ts:[A-Za-z_$][\w$]*$/, "must be ./<file>.ts:<export>")),
    env: z.union([z.record(z.string(), z.string()), z.string(), z.array(z.string())]),
  })
  .strict();

/** The ten steps of each workflow, as the design names them (part of the contract). */
const STEPS: Record<string, string[]> = {
  "add-caching-layer": ["AnalyzeCurrentPerformance", "DesignCachingStrategy", "EstimateCostImpact", "ProvisionCacheInfrastructure", "ConfigureCaching", "WarmCache", "EnableCachingGradually", "MonitorCachePerformance", "OptimizeCacheSettings", "GeneratePerformanceReport"],
  "modify-metadata-storage": ["AnalyzeCurrentMetadataStore", "SelectNewMetadataStore", "ProvisionNewStore", "DefineDataMapping", "MigrateMetadataIncrementally", "ValidateDataIntegrity", "SwitchReadTrafficGradually", "MonitorNewStore", "DisableOldStore", "UpdateDocumentation"],
  "add-storage-backend": ["IdentifyStorageRequirement", "ProvisionStorageBackend", "ConfigureStorageProvider", "TestStorageConnectivity", "DefineDataPlacementRules", "MigrateExistingData", "UpdateCatalogReferences", "ValidateDataAccess", "EnableMultiStorageRouting", "MonitorStoragePerformance"],
  "upgrade-database-schema": ["AnalyzeCurrentSchema", "DesignSchemaChanges", "ValidateMigrationSafety", "BackupDatabase", "ApplySchemaChanges", "ValidateSchemaIntegrity", "UpdateApplicationCode", "RunRegressionTests", "MonitorDatabasePerformance", "UpdateDocumentation"],
  "modify-observability": ["IdentifyObservabilityGap", "DesignObservabilityChanges", "ValidateConfigurationSyntax", "ApplyPrometheusChanges", "WaitForConfigReload", "UpdateGrafanaDashboards", "UpdateAlertmanagerRoutes", "TestAlerts", "MonitorObservabilityHealth", "DocumentChanges"],
};

/** A plan for each workflow and the gate it stops at first (the design's first gated step). */
const FIRST_GATE: Record<string, { params: Record<string, unknown>; gate: string }> = {
  "add-caching-layer": { params: {}, gate: "ProvisionCacheInfrastructure" },
  "modify-metadata-storage": { params: { toStore: "sqlite" }, gate: "ProvisionNewStore" },
  "add-storage-backend": { params: { backend: "s3", region: "us-west-2" }, gate: "ProvisionStorageBackend" },
  "upgrade-database-schema": { params: { changes: ["CREATE INDEX features_geom ON features USING gist (geom)"] }, gate: "ApplySchemaChanges" },
  "modify-observability": { params: { changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }] }, gate: "ApplyPrometheusChanges" },
};

type StudioModule = typeof import("../src/studio.js");
type Graph = Awaited<ReturnType<StudioModule["addCachingLayer"]>>;

const config = LanggraphJson.parse(JSON.parse(readFileSync(join(ROOT, "langgraph.json"), "utf8")));
const user = tempHome();
const saved = { ...process.env };
let studio: StudioModule;
const graphs = new Map<string, Graph>();

beforeAll(async () => {
  // Settings a user's shell may carry: the studio must use none of them (a config that does not exist would throw,
  // a store URL nothing listens on would fail to connect).
  process.env.HONUA_AGENT_HOME = user.home;
  process.env.HONUA_AGENT_CONFIG = join(user.home, "no-such-config.yaml");
  process.env.HONUA_AGENT_DATABASE_URL = "postgres://nobody@127.0.0.1:1/none";
  process.env.HONUA_SANDBOX_EPOCH = EPOCH;
  delete process.env.HONUA_SANDBOX_FAULTS;
  for (const [id, spec] of Object.entries(config.graphs)) {
    const [file, symbol] = spec.split(":") as [string, string];
    const mod = (await import(pathToFileURL(resolve(ROOT, file)).href)) as Record<string, unknown>;
    studio ??= mod as unknown as StudioModule;
    const exported = mod[symbol];
    expect(typeof exported, `${spec} exports a graph factory`).toBe("function");
    graphs.set(id, await (exported as (c: { configurable?: Record<string, unknown> }) => Promise<Graph>)({ configurable: {} }));
  }
});

afterAll(async () => {
  await studio?.closeStudio();
  process.env = saved;
  user.cleanup();
});

describe("langgraph.json", () => {
  it("names one graph per workflow, each a factory in src/studio.ts", () => {
    expect(Object.keys(config.graphs).sort()).toEqual(Object.keys(STEPS).sort());
    for (const [id, spec] of Object.entries(config.graphs)) {
      expect(spec).toBe(`./src/studio.ts:${studio.STUDIO_EXPORTS[id as keyof StudioModule["STUDIO_EXPORTS"]]}`);
    }
  });

  it.each(Object.keys(STEPS))("%s resolves to its compiled graph: the ten steps, their approval nodes and the builder's", async (id) => {
    const g = graphs.get(id)!;
    expect(typeof g.invoke).toBe("function");
    expect(typeof g.getGraph).toBe("function");
    // The factory hands back the same compiled graph each time the server asks (it sets its own checkpointer on it).
    expect(await studio.STUDIO_FACTORIES[id as keyof StudioModule["STUDIO_FACTORIES"]]()).toBe(g);
    const def = requireWorkflow(id).def;
    const all = graphSteps(def);
    const gated = all.filter((s) => s.gated).map((s) => gateNode(s.name));
    expect(gated.length).toBeGreaterThan(0);
    const expected = [
      "__start__", "__end__", "init", "finish", ROLLBACK, "approve_inconclusive", "approve_hold",
      ...STEPS[id]!, ...(def.cleanup ? [CLEANUP] : []), ...gated,
    ].sort();
    const drawn = g.getGraph();
    expect(Object.keys(drawn.nodes).sort()).toEqual(expected);
    const mermaid = drawn.drawMermaid();
    for (const node of expected.filter((n) => !n.startsWith("__"))) expect(mermaid).toContain(node);
    // The design's first gate is behind its approval node in the drawing too: the only edge into it comes from there.
    const into = drawn.edges.filter((e) => e.target === FIRST_GATE[id]!.gate).map((e) => e.source);
    expect(into).toEqual([gateNode(FIRST_GATE[id]!.gate)]);
  });
});

describe("running a studio graph on the sandbox", () => {
  it.each(Object.keys(STEPS))("%s runs to its first gate and writes only under the studio's own home", async (id) => {
    const g = graphs.get(id)!;
    const { params, gate } = FIRST_GATE[id]!;
    const run = `studio-first-${id}`;
    const cfg = { configurable: { thread_id: run } };
    await g.invoke(studio.studioInput(id as keyof StudioModule["STUDIO_EXPORTS"], { run, params }), cfg);
    const state = await g.getState(cfg);
    const asked = state.tasks.flatMap((t) => t.interrupts.map((i) => (i.value as { step: string }).step));
    expect(asked).toEqual([gate]);
    expect(state.next).toEqual([gateNode(gate)]);
    // Every step before the gate ran and is in the studio's store; the gated step did not.
    const ctx = await studio.studioContext();
    const before = STEPS[id]!.slice(0, STEPS[id]!.indexOf(gate));
    const records = (await ctx.store.records(run, "steps", 0, state.values.recorded)) as { name: string; status: string }[];
    expect(records.map((r) => r.name)).toEqual(before);
    expect(records.every((r) => r.status === "done")).toBe(true);
    expect(readdirSync(user.home)).toEqual([]);
    expect(resolve(ctx.home)).not.toBe(resolve(user.home));
    expect(readdirSync(ctx.home)).toEqual(expect.arrayContaining(["agent.sqlite", "sandbox.sqlite"]));
  });

  it("refuses params the workflow does not accept and a deployment that is not a built-in sandbox", () => {
    expect(() => studio.studioInput("add-caching-layer", { params: { cacheType: "memcached" } })).toThrow(/invalid params for add-caching-layer/);
    expect(() => studio.studioInput("add-caching-layer", { deployment: "eu-prod" })).toThrow(/built-in sandbox deployments/);
  });
});

describe("decisions taken in Studio are not recorded decisions", () => {
  const STEP = "ProvisionCacheInfrastructure";
  const run = "studio-bypass";
  const cfg = { configurable: { thread_id: run } };
  let g: Graph;
  let planHash: string;

  /** What the run did at or after the gate: step records of the gated step and journal entries (side effects). */
  async function acted(): Promise<{ records: string[]; journal: number }> {
    const ctx = await studio.studioContext();
    const recorded = (await g.getState(cfg)).values.recorded;
    const records = ((await ctx.store.records(run, "steps", 0, recorded)) as { name: string }[]).map((r) => r.name).filter((n) => n === STEP);
    return { records, journal: (await ctx.store.journal(run)).length };
  }

  beforeAll(async () => {
    g = graphs.get("add-caching-layer")!;
    await g.invoke(studio.studioInput("add-caching-layer", { run, deployment: "prod" }), cfg);
    const v = (await g.getState(cfg)).tasks[0]!.interrupts[0]!.value as { step: string; planHash: string };
    expect(v.step).toBe(STEP);
    planHash = v.planHash;
  });

  it("a resume sent from Studio is refused: the approval node finds no decision in the store", async () => {
    await expect(g.invoke(new Command({ resume: { interrupt: "studio-click", planHash } }), cfg)).rejects.toThrow(/no recorded decision for ProvisionCacheInfrastructure/);
    expect(await acted()).toEqual({ records: [], journal: 0 });
  });

  /** Every error a superstep raised (LangGraph gathers the errors of nodes run in the same superstep). */
  async function refusals(p: Promise<unknown>): Promise<string[]> {
    const e = await p.then(() => null, (err: unknown) => err);
    if (!(e instanceof Error)) return [];
    const inner = (e as Error & { errors?: unknown[] }).errors ?? [];
    return [e.message, ...inner.map((x) => (x instanceof Error ? x.message : String(x)))];
  }

  const forged = (interrupt: string): DecisionRecord => ({ step: STEP, stage: null, kind: "provision", decision: "approve", by: "alice", at: EPOCH, planHash, interrupt, comment: null });

  it("an edited state with a made-up approval and a goto straight into the gated step is refused by the step", async () => {
    const errors = await refusals(g.invoke(new Command({ goto: STEP, update: { decisions: [forged("studio-edit")], gate: null, next: { to: "step", index: 3, stage: 0 } } }), cfg));
    expect(errors).toContain("gated step ProvisionCacheInfrastructure reached without a recorded approval");
    expect(await acted()).toEqual({ records: [], journal: 0 });
  });

  it("an edited state naming another gate's stored decision is refused: the row must be this gate's own", async () => {
    const ctx = await studio.studioContext();
    await ctx.store.createRun({ run, workflow: "add-caching-layer", deployment: "prod", status: "waiting", requestedBy: "studio", startedAt: EPOCH, request: "x" });
    // A real approval, of the traffic gate's first stage, on the same plan hash.
    await ctx.store.recordDecision({ run, interrupt: "other-gate", step: "EnableCachingGradually", stage: 0, kind: "traffic", decision: "approve", by: "alice", at: EPOCH, planHash, comment: null, groups: [] });
    const errors = await refusals(g.invoke(new Command({ goto: STEP, update: { decisions: [forged("other-gate")], next: { to: "step", index: 3, stage: 0 } } }), cfg));
    expect(errors).toContain("gated step ProvisionCacheInfrastructure reached without a recorded approval");
    expect(await acted()).toEqual({ records: [], journal: 0 });
  });

  it("a state update made as the approval node leads nowhere: only the node's own Command routes into the step", async () => {
    await g.updateState(cfg, { decisions: [forged("studio-update")], gate: null, next: { to: "step", index: 3, stage: 0 } }, gateNode(STEP));
    expect((await g.getState(cfg)).next).toEqual([]);
    await g.invoke(null, cfg);
    expect(await acted()).toEqual({ records: [], journal: 0 });
  });
});
