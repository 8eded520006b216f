import { z } from "zod";
import { RedisCacheOptions } from "../tools/cache/redis.js";
import { K8sTarget } from "../tools/config/k8s.js";
import { RolloutOptions } from "../tools/rollout/k8s.js";
import { ProbeMetricsOptions } from "../tools/metrics/probe.js";
import { TilesOptions } from "../tools/tiles/local.js";
import { IngressTrafficOptions } from "../tools/traffic/ingress.js";
import { NginxTrafficOptions } from "../tools/traffic/nginx.js";
import { CloudCacheSections, CloudMetricsSections, CloudTrafficSections } from "./cloud.js";

/**
 * The sections of a `local`/`aws` deployment in honua-agent.yaml: which real thing answers each capability.
 * Every section is strict: a misspelt key is an error at config load, not a silently ignored setting.
 */

/** `cache: { redis: {...} } | { elasticache: {...} } | { cloudfront: {...} } | { varnish: {...} }`: exactly one. */
export const CacheSection = z.union([z.object({ redis: RedisCacheOptions }).strict(), ...CloudCacheSections], {
  error: "exactly one of { redis: {...} }, { elasticache: {...} }, { cloudfront: {...} }, { varnish: {...} }",
});
export type CacheSection = z.infer<typeof CacheSection>;

/** `metrics: { source: prometheus|cloudwatch|probe, ... }`. */
export const MetricsSection = z.discriminatedUnion("source", [ProbeMetricsOptions, ...CloudMetricsSections]);
export type MetricsSection = z.infer<typeof MetricsSection>;

/** The Honua configuration the agent edits. Relative paths are read from the agent's working directory. */
export const ConfigSection = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("envfile"), path: z.string().min(1) }).strict(),
  z
    .object({
      kind: z.literal("k8s"),
      /** A manifest file or a folder of them (the Deployment, and the ConfigMaps/Secrets it loads). */
      path: z.string().min(1),
      resource: K8sTarget,
      /** How a change becomes live: restart the Deployment and wait for it; `false` when something else restarts the pods. */
      rollout: z
        .union([z.literal(false), RolloutOptions], {
          error: (iss) => (iss.code === "invalid_union" ? "false (something else restarts the pods), or { deployment: <name>, namespace?, apply?, timeoutSeconds?, pollSeconds?, kubeconfig?, context? }" : undefined),
        })
        .optional(),
    })
    .strict()
    .superRefine((c, ctx) => {
      const wl = c.resource.kind === "Deployment" || c.resource.kind === "StatefulSet";
      if (c.rollout && wl && (c.resource.kind !== "Deployment" || c.rollout.deployment !== c.resource.name)) {
        ctx.addIssue({ code: "custom", path: ["rollout", "deployment"], message: `the rollout waits for the ${c.resource.kind} whose env it edits: ${c.resource.kind === "Deployment" ? `deployment: ${c.resource.name}` : "StatefulSets are not rolled out by honua-agent (rollout: false)"}` });
      }
    }),
  z.object({ kind: z.literal("appsettings"), path: z.string().min(1) }).strict(),
]);
export type ConfigSection = z.infer<typeof ConfigSection>;

/** The traffic splitter between the current Honua and the one with the change. */
export const TrafficSection = z.discriminatedUnion("kind", [NginxTrafficOptions, IngressTrafficOptions, ...CloudTrafficSections]);
export type TrafficSection = z.infer<typeof TrafficSection>;

export const TilesSection = TilesOptions;
export type TilesSection = z.infer<typeof TilesSection>;

/** Monthly cost of the parts the agent cannot price from its table (compute, database, ...), in USD. */
export const CostSection = z.object({ monthlyUsd: z.record(z.string().min(1), z.number().nonnegative()).default({}) }).strict();
export type CostSection = z.infer<typeof CostSection>;

/** What a `local`/`aws` deployment must name for the caching workflow to run against it. */
export const REQUIRED_SECTIONS = ["cache", "metrics", "config", "traffic"] as const;

interface SectionsView {
  provider: "sandbox" | "local" | "aws";
  cache?: unknown;
  metrics?: unknown;
  config?: unknown;
  appsettings?: string | undefined;
  traffic?: unknown;
  tiles?: unknown;
}

/** Cross-section rules, reported at config load with the path of the offending key. */
export function checkSections(d: SectionsView, issue: (path: (string | number)[], message: string) => void): void {
  if (d.config !== undefined && d.appsettings !== undefined) issue(["appsettings"], "give either config or appsettings (the shorthand for config: { kind: appsettings, path }), not both");
  if (d.provider === "sandbox") return;
  for (const s of REQUIRED_SECTIONS) {
    const present = s === "config" ? d.config !== undefined || d.appsettings !== undefined : d[s] !== undefined;
    if (!present) issue([s], `provider ${d.provider} needs a ${s} section (${HINTS[s]})`);
  }
}

const HINTS: Record<(typeof REQUIRED_SECTIONS)[number], string> = {
  cache: "cache: { redis: { url: redis://127.0.0.1:6379 } }, or elasticache / cloudfront / varnish",
  metrics: "metrics: { source: prometheus, url: ... }, or cloudwatch, or probe with tile urls",
  config: "config: { kind: envfile|k8s|appsettings, path: ... }: the Honua configuration the agent edits",
  traffic: "traffic: { kind: nginx|ingress|cloudfront, ... }: how traffic moves onto the change",
};
