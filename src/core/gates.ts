import { z } from "zod";

/** What a gated step does: each kind is asked before it, by structure (DESIGN.md invariant 1). */
export const GateKind = z.enum(["provision", "traffic", "delete"]);
export type GateKind = z.infer<typeof GateKind>;

/**
 * A gate as shown to an approver. `inconclusive`: the pause after a monitoring window without enough data;
 * `paused`: a run someone paused (continue or cancel); `rollback`: a rollback asked for by someone who may
 * not decide it alone, which an approver confirms or declines.
 */
export const DecisionKind = z.enum([...GateKind.options, "inconclusive", "paused", "rollback"]);
export type DecisionKind = z.infer<typeof DecisionKind>;
