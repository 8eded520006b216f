import { existsSync, readdirSync, statSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { AgentError } from "../../core/errors.js";
import type { WorkflowDef } from "../step.js";
import type { WorkflowModule } from "./module.js";
import { revertWorkflow } from "../revert/workflow.js";

/**
 * Every workflow is one folder beside this file (`<id>/index.ts`, exporting `workflow`), or one in a folder named by
 * `HONUA_AGENT_WORKFLOWS` (path-separated). The plan schema, the model's tool, titles, prompts, evals, the fronts and
 * the config check all ask this registry: adding a workflow is its folder, nothing else edited.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const byId = new Map<string, WorkflowModule>();
let version = 0;

const RESERVED = new Set(["Rollback", "CleanupAfterRollback", "finish", "init"]);

/** Checks what the builder and the planner rely on, with the folder named in the error. */
function check(m: WorkflowModule, from: string): void {
  const id = m.def.id;
  if (!/^[a-z][a-z0-9-]*$/.test(id)) throw new AgentError("bad-input", `workflow in ${from}: id "${id}" must be lower-case words joined by -`);
  const names = new Set<string>();
  for (const s of m.def.steps) {
    if (names.has(s.name) || RESERVED.has(s.name)) throw new AgentError("bad-input", `workflow ${id} (${from}): duplicate or reserved step name ${s.name}`);
    names.add(s.name);
  }
  if (m.def.steps.length === 0) throw new AgentError("bad-input", `workflow ${id} (${from}) has no steps`);
  // Folders named by HONUA_AGENT_WORKFLOWS are not type-checked: the planner's parts are checked here, not on first use.
  if (typeof m.intent?.extract !== "function") throw new AgentError("bad-input", `workflow ${id} (${from}) has no intent: export one from its intent.ts and set \`workflow.intent\``);
  if (typeof m.tool?.read !== "function") throw new AgentError("bad-input", `workflow ${id} (${from}) has no tool: export one (defineTool) from its tool.ts and set \`workflow.tool\``);
}

/** Adds a workflow (a folder's module, or one a test builds); the same id twice is refused. */
export function registerWorkflow(m: WorkflowModule, from = "code"): void {
  check(m, from);
  if (builtIn.has(m.def.id)) throw new AgentError("conflict", `workflow ${m.def.id} (${from}) takes the id of a built-in workflow`);
  const prior = byId.get(m.def.id);
  if (prior && prior !== m) throw new AgentError("conflict", `workflow ${m.def.id} is registered twice (${from})`);
  byId.set(m.def.id, m);
  version++;
}

/** Removes a workflow (tests that registered a throwaway one). */
export function unregisterWorkflow(id: string): void {
  if (byId.delete(id)) version++;
}

/** The workflow folders under `dir`, each loaded from its `index.ts` (or `index.js`). */
export async function loadWorkflowFolders(dir: string): Promise<WorkflowModule[]> {
  if (!existsSync(dir)) throw new AgentError("bad-input", `workflow folder ${dir} does not exist`);
  const out: WorkflowModule[] = [];
  for (const name of readdirSync(dir).sort()) {
    const folder = join(dir, name);
    if (!statSync(folder).isDirectory()) continue;
    const entry = ["index.ts", "index.js", "index.mjs"].map((f) => join(folder, f)).find((f) => existsSync(f));
    if (!entry) continue;
    const mod = (await import(pathToFileURL(entry).href)) as { workflow?: WorkflowModule };
    if (!mod.workflow) throw new AgentError("bad-input", `${entry} exports no \`workflow\``);
    out.push(mod.workflow);
  }
  return out;
}

/** Loads and registers the workflows of `dir`'s folders. */
export async function registerWorkflowFolders(dir: string): Promise<WorkflowModule[]> {
  const found = await loadWorkflowFolders(dir);
  for (const m of found) registerWorkflow(m, dir);
  return found;
}

/** Every registered workflow, most specific first (the planner's tie-break order). */
export function workflows(): WorkflowModule[] {
  return [...byId.values()].sort((a, b) => a.priority - b.priority || a.def.id.localeCompare(b.def.id));
}

export const workflowIds = (): string[] => workflows().map((m) => m.def.id);

export function workflowModule(id: string): WorkflowModule | undefined {
  return byId.get(id);
}

export function requireWorkflow(id: string): WorkflowModule {
  const m = byId.get(id);
  if (!m) throw new AgentError("bad-input", `unknown workflow ${id}; known: ${workflowIds().join(", ")}`);
  return m;
}

/**
 * Workflows the engine runs but the planner never plans (a revert is started from a finished run, not from a request):
 * in `workflowDefs()` and `workflowDef()`, not in `workflows()`.
 */
const builtIn = new Map<string, WorkflowDef>([[revertWorkflow.id, revertWorkflow]]);

/** Whether `id` is a workflow no request plans (started only by its own command). */
export const isBuiltInWorkflow = (id: string): boolean => builtIn.has(id);

/** A definition by id: a registered workflow's, or a built-in one's. */
export function workflowDef(id: string): WorkflowDef | undefined {
  return byId.get(id)?.def ?? builtIn.get(id);
}

/** The engine's definitions by id, the built-in ones included. */
export function workflowDefs(): Record<string, WorkflowDef> {
  return { ...Object.fromEntries(workflows().map((m) => [m.def.id, m.def])), ...Object.fromEntries(builtIn) };
}

/** Changes whenever a workflow is added or removed: what derives from the registry rebuilds on a change. */
export const registryVersion = (): number => version;

/** Memoizes `build` until the registry changes. */
export function derived<T>(build: () => T): () => T {
  let at = -1;
  let value: T;
  return () => {
    if (at !== version) {
      value = build();
      at = version;
    }
    return value;
  };
}

await registerWorkflowFolders(HERE);
for (const dir of (process.env.HONUA_AGENT_WORKFLOWS ?? "").split(delimiter).filter(Boolean)) await registerWorkflowFolders(resolve(dir));
