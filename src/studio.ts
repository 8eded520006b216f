/**
 * LangGraph Studio entry points (`langgraph.json` at the repository root): one graph factory per workflow, each
 * returning the workflow's real graph, as the engine builds it, against the built-in sandbox deployments.
 *
 * What opening it in Studio touches: a throwaway agent home of its own (a fresh temp directory holding the agent
 * store and the sandbox world), an in-memory checkpointer, and the built-in sandbox config. Never `honua-agent.yaml`,
 * `HONUA_AGENT_CONFIG`, `HONUA_AGENT_HOME` or `HONUA_AGENT_DATABASE_URL`: no real deployment and no user's store.
 *
 * It is view-only for decisions. A gate's approval node reads the decision from the agent store and a gated step
 * re-reads it before it acts; Studio's resume, "edit state" or a goto into a step never writes one, so a gated step
 * driven from Studio refuses to run. Nothing here records decisions.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemorySaver } from "@langchain/langgraph";
import { BUILTIN_CONFIG, parseConfig, type AgentConfig } from "./config.js";
import { AgentError, describeIssues } from "./core/errors.js";
import { buildWorkflowGraph, type WorkflowGraph } from "./graph/builder.js";
import { requireWorkflow } from "./graph/workflows/registry.js";
import { sandboxAdapterFactory, sandboxSettings } from "./sandbox/adapters.js";
import { sqliteSql } from "./store/sql.js";
import { AgentStore } from "./store/store.js";

/** What the LangGraph API server calls a factory with (the run's config); unused: every call gets the same graph. */
export interface StudioConfig {
  configurable?: Record<string, unknown>;
}
export type StudioGraphFactory = (config?: StudioConfig) => Promise<WorkflowGraph>;

/** The workflows Studio shows, by id, with the export `langgraph.json` names for each. */
export const STUDIO_EXPORTS = {
  "add-caching-layer": "addCachingLayer",
  "modify-metadata-storage": "modifyMetadataStorage",
  "add-storage-backend": "addStorageBackend",
  "upgrade-database-schema": "upgradeDatabaseSchema",
  "modify-observability": "modifyObservability",
} as const;
export type StudioWorkflow = keyof typeof STUDIO_EXPORTS;

export interface StudioContext {
  /** The throwaway agent home (temp directory): the agent store and the sandbox world live here, nothing else. */
  home: string;
  store: AgentStore;
  checkpointer: MemorySaver;
  config: AgentConfig;
  adapters: ReturnType<typeof sandboxAdapterFactory>;
  graphs: Map<string, WorkflowGraph>;
}

let opened: Promise<StudioContext> | undefined;

/** The environment the sandbox reads (faults, epoch, pace), with every setting that names a store or a config removed. */
function studioEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HONUA_AGENT_HOME: home };
  delete env.HONUA_AGENT_DATABASE_URL;
  delete env.HONUA_AGENT_CONFIG;
  return env;
}

async function open(): Promise<StudioContext> {
  const home = mkdtempSync(join(tmpdir(), "honua-agent-studio-"));
  const env = studioEnv(home);
  const { config } = parseConfig(BUILTIN_CONFIG, "built-in (studio)", env);
  const store = new AgentStore(sqliteSql(join(home, "agent.sqlite")));
  await store.setup();
  return { home, store, checkpointer: new MemorySaver(), config, adapters: sandboxAdapterFactory(config, home, sandboxSettings(env)), graphs: new Map() };
}

/** The studio's own context, opened once per process on first use (importing this module writes nothing). */
export function studioContext(): Promise<StudioContext> {
  opened ??= open();
  return opened;
}

/** A workflow's compiled graph on the studio's sandbox, built once per process. */
export async function studioGraph(workflow: StudioWorkflow): Promise<WorkflowGraph> {
  const ctx = await studioContext();
  let graph = ctx.graphs.get(workflow);
  if (!graph) {
    graph = buildWorkflowGraph(requireWorkflow(workflow).def, {
      config: ctx.config,
      store: ctx.store,
      checkpointer: ctx.checkpointer,
      adaptersFor: (d) => ctx.adapters.adaptersFor(d),
    });
    ctx.graphs.set(workflow, graph);
  }
  return graph;
}

/**
 * A run's input as Studio should send it: the fields the engine starts a run with. `params` are the workflow's (absent
 * ones are filled by its Design step); `run` names the run in the sandbox and in every idempotency key, so give each
 * Studio thread its own.
 */
export function studioInput(workflow: StudioWorkflow, o: { run?: string; deployment?: string; params?: unknown; request?: string } = {}) {
  const parsed = requireWorkflow(workflow).def.params.safeParse(o.params ?? {});
  if (!parsed.success) throw new AgentError("bad-input", `invalid params for ${workflow}: ${describeIssues(parsed.error, "params")}`);
  const deployment = o.deployment ?? "staging";
  if (!(deployment in BUILTIN_CONFIG.deployments)) throw new AgentError("bad-input", `studio runs on the built-in sandbox deployments (${Object.keys(BUILTIN_CONFIG.deployments).join(", ")}), not ${deployment}`);
  return {
    run: o.run ?? `studio-${workflow}`,
    workflow,
    deployment,
    requestedBy: "studio",
    request: o.request ?? `${workflow} (from LangGraph Studio)`,
    params: parsed.data,
  };
}

/** Closes the studio's store and sandbox (tests; the Studio server keeps them for its lifetime). */
export async function closeStudio(): Promise<void> {
  const ctx = await opened;
  opened = undefined;
  if (!ctx) return;
  ctx.adapters.close();
  await ctx.store.close();
}

const factory = (workflow: StudioWorkflow): StudioGraphFactory => () => studioGraph(workflow);

export const addCachingLayer = factory("add-caching-layer");
export const modifyMetadataStorage = factory("modify-metadata-storage");
export const addStorageBackend = factory("add-storage-backend");
export const upgradeDatabaseSchema = factory("upgrade-database-schema");
export const modifyObservability = factory("modify-observability");

/** The factories by workflow id (what `langgraph.json` names, through `STUDIO_EXPORTS`). */
export const STUDIO_FACTORIES: Record<StudioWorkflow, StudioGraphFactory> = {
  "add-caching-layer": addCachingLayer,
  "modify-metadata-storage": modifyMetadataStorage,
  "add-storage-backend": addStorageBackend,
  "upgrade-database-schema": upgradeDatabaseSchema,
  "modify-observability": modifyObservability,
};
