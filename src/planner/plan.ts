import { z } from "zod";
import { derived, workflows } from "../graph/workflows/registry.js";
import { isWorkflowId } from "./registered.js";

/** A registered workflow's id (DESIGN.md lists the built-in five); any other string is refused. */
export const WorkflowId = z.string().refine(isWorkflowId, { message: "not a registered workflow" });
export type WorkflowId = string;

/** A typed plan: which workflow, on which deployment, with which params (the workflow's own params schema). */
export interface Plan {
  workflow: WorkflowId;
  deployment: string;
  params: Record<string, unknown>;
}

/** The plan schema: a union over every registered workflow's params, rebuilt when a workflow is added or removed. */
export const Plan = derived((): z.ZodType<Plan> => {
  const [first, ...rest] = workflows().map((m) => z.object({ workflow: z.literal(m.def.id), deployment: z.string().min(1), params: m.def.params }).strict());
  // With no workflow registered nothing can be planned, and every request is refused.
  return first ? z.discriminatedUnion("workflow", [first, ...rest]) : z.never();
});

/** The planner asks: what is missing, and (when a deployment was named but is unknown) which name. */
export const Clarify = z
  .object({
    clarify: z.string().min(1),
    missing: z.array(z.string()).min(1),
    unknownDeployment: z.string().optional(),
  })
  .strict();
export const Refuse = z.object({ refuse: z.string().min(1) }).strict();
export type Clarify = z.infer<typeof Clarify>;
export type Refuse = z.infer<typeof Refuse>;

export type PlanResult = Plan | Clarify | Refuse;
export const PlanResult = derived((): z.ZodType<PlanResult> => z.union([Plan(), Clarify, Refuse]));

export const isPlan = (r: PlanResult): r is Plan => "workflow" in r;
export const isClarify = (r: PlanResult): r is Clarify => "clarify" in r;
