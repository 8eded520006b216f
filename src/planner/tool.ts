/**
 * The typed tool the model answers through. Strict-compatible: every field required, absent values are
 * `null` (`.nullable()`, never `.optional()`/`.default()`), every object closed. Its output is then mapped onto
 * the same zod Plan schemas the offline planner produces, so both planners are held to one contract.
 */
import { z } from "zod";
import { HONUA_MAX_TTL_SECONDS } from "../tools/cache/honua-options.js";
import { MetadataStoreKind, ObservabilityChange, type WorkflowId } from "./plan.js";

const intOrNull = z.number().int().nullable();
const strOrNull = z.string().nullable();

const CachingArgs = z.strictObject({
  cacheType: z.enum(["redis", "varnish", "cloudfront"]).nullable().describe("redis (also ElastiCache), varnish, or cloudfront (any CDN)"),
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(HONUA_MAX_TTL_SECONDS)
    .nullable()
    .describe(`cache TTL in seconds, 1..${HONUA_MAX_TTL_SECONDS}: Honua refuses to start with a longer one, so ask (clarify, missing ttlSeconds) when the user wants longer`),
  rolloutSteps: z.array(z.number().int()).nullable().describe("traffic percentages, increasing, ending at 100"),
});
const MetadataArgs = z.strictObject({
  fromStore: MetadataStoreKind.nullable(),
  toStore: MetadataStoreKind.nullable(),
  batchSize: intOrNull,
});
const StorageArgs = z.strictObject({
  backend: z.enum(["s3", "azure-blob", "gcs", "filesystem"]).nullable(),
  region: strOrNull,
  bucket: strOrNull,
  path: strOrNull,
  placement: strOrNull.describe("which data goes there, in the user's words (e.g. cold rasters)"),
});
const SchemaArgs = z.strictObject({
  ddl: z.array(z.string()).nullable().describe("SQL statements, when the user gave SQL"),
  description: strOrNull.describe("the change in the user's words, when no SQL was given"),
});
const ObservabilityArgs = z.strictObject({
  changes: z
    .array(
      z.strictObject({
        kind: ObservabilityChange.shape.kind,
        action: ObservabilityChange.shape.action,
        name: strOrNull,
        specJson: strOrNull.describe("a JSON object as a string, or null"),
      }),
    )
    .nullable(),
});

const deployment = strOrNull.describe("the deployment name or alias exactly as the user wrote it; null when none was named");
const planOf = <W extends WorkflowId, P extends z.ZodType>(workflow: W, params: P) =>
  z.strictObject({ kind: z.literal("plan"), workflow: z.literal(workflow), deploymentAsWritten: deployment, params });

export const REFUSAL_REASONS = ["out-of-scope", "destructive", "manipulation"] as const;

export const PlanToolArgs = z.strictObject({
  result: z.union([
    planOf("add-caching-layer", CachingArgs),
    planOf("modify-metadata-storage", MetadataArgs),
    planOf("add-storage-backend", StorageArgs),
    planOf("upgrade-database-schema", SchemaArgs),
    planOf("modify-observability", ObservabilityArgs),
    z.strictObject({
      kind: z.literal("clarify"),
      workflow: z.enum(["add-caching-layer", "modify-metadata-storage", "add-storage-backend", "upgrade-database-schema", "modify-observability"]).nullable(),
      deploymentAsWritten: deployment,
      missing: z.array(z.string()).describe("param names, or deployment / workflow"),
      question: z.string().describe("one short question for the user"),
    }),
    z.strictObject({ kind: z.literal("refuse"), reason: z.enum(REFUSAL_REASONS) }),
  ]),
});
export type PlanToolArgs = z.infer<typeof PlanToolArgs>;

export const PLAN_TOOL = {
  name: "submit_plan",
  description: "Submit the typed plan for the request, a clarifying question, or a refusal. Call exactly once.",
  schema: PlanToolArgs,
};
