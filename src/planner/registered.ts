/**
 * What the planner knows about workflows, all of it read from the registry: which can be planned, in which order,
 * their titles, and the capability text every refusal ends with. Rebuilt whenever a workflow is added or removed.
 */
import { AgentError } from "../core/errors.js";
import type { WorkflowIntent, WorkflowModule, WorkflowTool } from "../graph/workflows/module.js";
import { derived, workflowModule, workflows } from "../graph/workflows/registry.js";

/** A registered workflow as the planner uses it. */
export interface Plannable {
  id: string;
  /** How the planner says what it does: "add a caching layer". */
  title: string;
  intent: WorkflowIntent;
  tool: WorkflowTool;
}

const plannable = (m: WorkflowModule): Plannable => ({ id: m.def.id, title: m.summary, intent: m.intent, tool: m.tool });

/** Every workflow, most specific first: the order in which ties between request scores are broken. */
export const byPriority = derived((): Plannable[] => workflows().map(plannable));

/** Every workflow in the order it is listed when all are named (capabilities, the model's prompt). */
export const listed = derived((): Plannable[] => [...byPriority()].sort((a, b) => a.intent.listed - b.intent.listed || a.id.localeCompare(b.id)));

export const isWorkflowId = (id: string): boolean => workflowModule(id) !== undefined;

/** The workflow `id` as the planner uses it; an unknown id is bad input naming the known ones. */
export function plannableWorkflow(id: string): Plannable {
  const found = byPriority().find((p) => p.id === id);
  if (!found) throw new AgentError("bad-input", `unknown workflow ${id}; known: ${byPriority().map((p) => p.id).join(", ")}`);
  return found;
}

export const titleOf = (id: string): string => plannableWorkflow(id).title;

/** "I can add a caching layer (...), ..., or change observability (...)." */
export const capabilities = derived((): string => {
  const parts = listed().map((p) => p.intent.capability);
  const last = parts.pop();
  return `I can ${parts.length ? `${parts.join(", ")}, or ${last}` : (last ?? "make no changes")}.`;
});

export const REFUSAL_REASONS = ["out-of-scope", "destructive", "manipulation"] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const REFUSAL_LEADS: Record<RefusalReason, string> = {
  "out-of-scope": "That isn't one of the changes I make.",
  destructive: "I won't do that: deleting or wiping deployments, databases, data or infrastructure is not one of my workflows.",
  manipulation: "Approvals come from the deployment's policy; a request can't skip, disable or grant them.",
};

/** The refusal for `reason`, ending with what the agent can do. */
export const refusalText = (reason: RefusalReason): string => `${REFUSAL_LEADS[reason]} ${capabilities()}`;
