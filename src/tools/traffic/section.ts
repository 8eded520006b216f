import { z } from "zod";
import { CloudFrontTrafficOptions } from "./cloudfront.js";
import { IngressTrafficOptions } from "./ingress.js";
import { NginxTrafficOptions } from "./nginx.js";

/** One traffic splitter between the current Honua and the one with the change; it moves one feature. */
export const TrafficRouterSection = z.discriminatedUnion("kind", [
  NginxTrafficOptions,
  IngressTrafficOptions,
  CloudFrontTrafficOptions.extend({ kind: z.literal("cloudfront") }),
]);
export type TrafficRouterSection = z.infer<typeof TrafficRouterSection>;

/** The feature a router section moves (`cache` unless it says otherwise). */
export const featureOf = (r: TrafficRouterSection): string => ("feature" in r && typeof r.feature === "string" ? r.feature : "cache");

/**
 * `traffic:` one router, or a list of them keyed by the feature each moves (the cache path, the read share of a new
 * metadata store, a new storage backend's routing share); two routers for one feature are refused.
 */
export const TrafficSection = z
  .union([TrafficRouterSection, z.array(TrafficRouterSection).min(1)])
  .superRefine((t, ctx) => {
    const seen = new Set<string>();
    for (const [i, r] of (Array.isArray(t) ? t : [t]).entries()) {
      const f = featureOf(r);
      if (seen.has(f)) ctx.addIssue({ code: "custom", path: Array.isArray(t) ? [i, "feature"] : ["feature"], message: `two routers move "${f}"; give each router its own feature` });
      seen.add(f);
    }
  });
export type TrafficSection = z.infer<typeof TrafficSection>;

export const TRAFFIC_EXAMPLE = "traffic: { kind: nginx|ingress|cloudfront, ... }, or a list of them with a feature each: how traffic moves onto the change";
