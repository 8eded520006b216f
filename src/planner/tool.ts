/**
 * The typed tool the model answers through. Strict-compatible: every field required, absent values are
 * `null` (`.nullable()`, never `.optional()`/`.default()`), every object closed. Each registered workflow adds its
 * arm (its folder's tool.ts); the answer is then mapped onto the same zod Plan schemas the offline planner produces,
 * so both planners are held to one contract.
 */
import { z } from "zod";
import { derived } from "../graph/workflows/registry.js";
import { REFUSAL_REASONS, listed } from "./registered.js";

const deployment = z.string().nullable().describe("the deployment name or alias exactly as the user wrote it; null when none was named");

export { REFUSAL_REASONS };

/** A plan answer: the workflow's own arguments, mapped to params by its tool. */
export interface PlanArm {
  kind: "plan";
  workflow: string;
  deploymentAsWritten: string | null;
  params: Record<string, unknown>;
}
export interface ClarifyArm {
  kind: "clarify";
  workflow: string | null;
  deploymentAsWritten: string | null;
  missing: string[];
  question: string;
}
export interface RefuseArm {
  kind: "refuse";
  reason: (typeof REFUSAL_REASONS)[number];
}
export interface PlanToolArgs {
  result: PlanArm | ClarifyArm | RefuseArm;
}

/** The `submit_plan` arguments over every registered workflow (listed in the order the prompt names them). */
export const PlanToolArgs = derived((): z.ZodType<PlanToolArgs> => {
  const plans = listed().map(({ id, tool }): z.ZodType<PlanArm> => z.strictObject({ kind: z.literal("plan"), workflow: z.literal(id), deploymentAsWritten: deployment, params: tool.args }));
  const clarify: z.ZodType<ClarifyArm> = z.strictObject({
    kind: z.literal("clarify"),
    workflow: listed().length ? z.enum(listed().map((p) => p.id)).nullable() : z.null(),
    deploymentAsWritten: deployment,
    missing: z.array(z.string()).describe("param names, or deployment / workflow"),
    question: z.string().describe("one short question for the user"),
  });
  const refuse: z.ZodType<RefuseArm> = z.strictObject({ kind: z.literal("refuse"), reason: z.enum(REFUSAL_REASONS) });
  return z.strictObject({ result: z.union([...plans, clarify, refuse]) });
});

export const PLAN_TOOL_NAME = "submit_plan";

/** The tool as bound to the model; its schema is the registry's current one. */
export const planTool = () => ({
  name: PLAN_TOOL_NAME,
  description: "Submit the typed plan for the request, a clarifying question, or a refusal. Call exactly once.",
  schema: PlanToolArgs(),
});
