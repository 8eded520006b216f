import { z } from "zod";

/** The five workflow ids; part of the contract (DESIGN.md). */
export const WORKFLOW_IDS = [
  "add-caching-layer",
  "modify-metadata-storage",
  "add-storage-backend",
  "upgrade-database-schema",
  "modify-observability",
] as const;
export const WorkflowId = z.enum(WORKFLOW_IDS);
export type WorkflowId = z.infer<typeof WorkflowId>;

export { CachingParams } from "../graph/workflows/add-caching-layer/params.js";
export { MetadataParams, MetadataStoreKind } from "../graph/workflows/modify-metadata-storage/params.js";
export { StorageParams } from "../graph/workflows/add-storage-backend/params.js";
export { SchemaParams } from "../graph/workflows/upgrade-database-schema/params.js";
export { ObservabilityChange, ObservabilityParams } from "../graph/workflows/modify-observability/params.js";
import { CachingParams } from "../graph/workflows/add-caching-layer/params.js";
import { MetadataParams } from "../graph/workflows/modify-metadata-storage/params.js";
import { StorageParams } from "../graph/workflows/add-storage-backend/params.js";
import { SchemaParams } from "../graph/workflows/upgrade-database-schema/params.js";
import { ObservabilityParams } from "../graph/workflows/modify-observability/params.js";

const planOf = <W extends WorkflowId, P extends z.ZodType>(workflow: W, params: P) =>
  z.object({ workflow: z.literal(workflow), deployment: z.string().min(1), params }).strict();

/** A typed plan: which workflow, on which deployment, with which params. */
export const Plan = z.discriminatedUnion("workflow", [
  planOf("add-caching-layer", CachingParams),
  planOf("modify-metadata-storage", MetadataParams),
  planOf("add-storage-backend", StorageParams),
  planOf("upgrade-database-schema", SchemaParams),
  planOf("modify-observability", ObservabilityParams),
]);
export type Plan = z.infer<typeof Plan>;

/** The planner asks: what is missing, and (when a deployment was named but is unknown) which name. */
export const Clarify = z
  .object({
    clarify: z.string().min(1),
    missing: z.array(z.string()).min(1),
    unknownDeployment: z.string().optional(),
  })
  .strict();
export const Refuse = z.object({ refuse: z.string().min(1) }).strict();

export const PlanResult = z.union([Plan, Clarify, Refuse]);
export type PlanResult = z.infer<typeof PlanResult>;
export type Clarify = z.infer<typeof Clarify>;
export type Refuse = z.infer<typeof Refuse>;

export const isPlan = (r: PlanResult): r is Plan => "workflow" in r;
export const isClarify = (r: PlanResult): r is Clarify => "clarify" in r;
