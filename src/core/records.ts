import { z } from "zod";
import { DecisionKind } from "./gates.js";

/** Where a run stands; `interrupted`: no live process drives it (continue it with `resume`). */
export const RunStatus = z.enum(["running", "waiting", "paused", "interrupted", "done", "failed", "rolled-back", "rejected", "cancelled"]);
export type RunStatus = z.infer<typeof RunStatus>;
export const TERMINAL: readonly RunStatus[] = ["done", "failed", "rolled-back", "rejected", "cancelled"];

/** A gate decision as the transcript and the store keep it: human or policy, bound to the plan hash shown. */
export const DecisionRecord = z.object({
  step: z.string(),
  stage: z.number().int().nullable(),
  kind: DecisionKind,
  decision: z.enum(["approve", "reject", "auto"]),
  by: z.string(),
  /** On the run's clock (see StepRecord); `wallAt` beside it when the two differ. */
  at: z.string(),
  wallAt: z.string().optional(),
  planHash: z.string(),
  interrupt: z.string(),
  comment: z.string().nullable(),
});
export type DecisionRecord = z.infer<typeof DecisionRecord>;
