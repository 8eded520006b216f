import type { z } from "zod";
import type { CapabilityId } from "../../core/capabilities.js";
import type { StepRecord } from "../state.js";
import type { WorkflowDef } from "../step.js";


/** A cost estimate as every front shows it: what is added, what it saves, the net. */
export interface CostEstimate {
  addedMonthlyUsd: number;
  savingsMonthlyUsd: number;
  netMonthlyUsd: number;
  /** What the savings are ("origin requests", "storage tier"), for "-$x/month <what>". */
  savingsOf: string;
  /** One line on how it was estimated (assumptions, price source). */
  basis: string;
}

/**
 * What a workflow's runs look like to the fronts (plan card, progress, conversation, report), read from the recorded
 * steps so nothing outside the workflow's folder needs to know its step names or output shapes.
 */
export interface WorkflowFacets {
  /** The cost estimate once the workflow has made one. */
  cost?(steps: readonly StepRecord[]): CostEstimate | null;
  /** The design the run settled on, in one line, once it has one. */
  design?(steps: readonly StepRecord[]): string | null;
  /** The finished run's report, as Markdown. */
  report?(steps: readonly StepRecord[]): string | null;
}

/** The latest successful output of `step` among `steps`, parsed with the step's own schema, or null. */
export function latestOutput<O>(steps: readonly StepRecord[], step: { name: string; output: z.ZodType<O> }): O | null {
  const rec = steps.findLast((s) => s.name === step.name && s.status === "done");
  if (!rec) return null;
  const parsed = step.output.safeParse(rec.output);
  return parsed.success ? parsed.data : null;
}

/**
 * One workflow, as its folder declares it: the engine's definition and everything the planner, the model, the fronts
 * and the config check derive from it. A workflow is its folder; nothing elsewhere names it.
 */
export interface WorkflowModule {
  def: WorkflowDef;
  /** How the planner says what it does: "add a caching layer". */
  summary: string;
  /** What a `local`/`aws` deployment must configure for it (checked when it is planned there). */
  capabilities: readonly CapabilityId[];
  /** Order among workflows when a request's words score a tie: lower goes first. */
  priority: number;
  facets?: WorkflowFacets;
}
