import { z } from "zod";
import { CloudWatchMetricsOptions } from "./cloudwatch.js";
import { ProbeMetricsOptions } from "./probe.js";
import { PrometheusMetricsOptions } from "./prometheus.js";

/** `metrics: { source: prometheus|cloudwatch|probe, ... }`. */
export const MetricsSection = z.discriminatedUnion("source", [
  ProbeMetricsOptions,
  PrometheusMetricsOptions.extend({ source: z.literal("prometheus") }),
  CloudWatchMetricsOptions.extend({ source: z.literal("cloudwatch") }),
]);
export type MetricsSection = z.infer<typeof MetricsSection>;

export const METRICS_EXAMPLE = "metrics: { source: prometheus, url: ... }, or cloudwatch, or probe with tile urls";
