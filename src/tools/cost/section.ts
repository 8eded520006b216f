import { z } from "zod";

/** Monthly cost of the parts the agent cannot price from its table (compute, database, ...), in USD. */
export const CostSection = z.object({ monthlyUsd: z.record(z.string().min(1), z.number().nonnegative()).default({}) }).strict();
export type CostSection = z.infer<typeof CostSection>;

export const COST_EXAMPLE = "cost: { monthlyUsd: { compute: 612, database: 418 } }";
