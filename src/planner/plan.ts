import { z } from "zod";
import { HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE } from "../tools/cache/honua-options.js";

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

const percent = z.number().int().min(1).max(100);

/** A param the user did not give is absent; the Design step fills it and says why. */
export const CachingParams = z
  .object({
    cacheType: z.enum(["redis", "varnish", "cloudfront"]).optional(),
    /** The cache TTL in seconds, for every cache type: Honua refuses to start with a cache TTL outside 1..86400. */
    ttlSeconds: z
      .number()
      .int(`ttlSeconds must be a whole number of seconds: ${HONUA_TTL_RULE}`)
      .min(1, HONUA_TTL_RULE)
      .max(HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE)
      .optional(),
    rolloutSteps: z
      .array(percent)
      .min(1)
      .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), "rollout steps must increase")
      .refine((s) => s[s.length - 1] === 100, "the last rollout step must be 100")
      .optional(),
  })
  .strict();
export type CachingParams = z.infer<typeof CachingParams>;

export const MetadataStoreKind = z.enum(["postgres", "sqlite", "files", "elasticsearch", "opensearch"]);
export const MetadataParams = z
  .object({
    fromStore: MetadataStoreKind.optional(),
    toStore: MetadataStoreKind.optional(),
    batchSize: z.number().int().positive().max(100_000).optional(),
  })
  .strict();

export const StorageParams = z
  .object({
    backend: z.enum(["s3", "azure-blob", "gcs", "filesystem"]).optional(),
    region: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    path: z.string().min(1).optional(),
    placement: z.string().min(1).optional(),
  })
  .strict();

export const SchemaParams = z
  .object({
    /** DDL statements, or a plain description the Design step turns into DDL. */
    changes: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
  })
  .strict();

export const ObservabilityChange = z
  .object({
    kind: z.enum(["alert-rule", "recording-rule", "dashboard", "alert-route", "retention"]),
    action: z.enum(["add", "modify", "remove"]),
    name: z.string().min(1).optional(),
    spec: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export const ObservabilityParams = z
  .object({ changes: z.array(ObservabilityChange).min(1).optional() })
  .strict();

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
