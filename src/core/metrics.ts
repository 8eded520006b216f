import { z } from "zod";

/** Summary of a metrics window; the raw series stays with the metrics source. */
export const MetricsSummary = z.object({
  at: z.string(),
  /** The window asked for. */
  windowMinutes: z.number(),
  /** The span the samples actually cover (a probe measures half a minute now for an hour it did not see). */
  observedMinutes: z.number().nullable().optional(),
  samples: z.number().int(),
  /** The share of traffic (percent) on the change's path while this was measured; null when none was moved. */
  trafficShare: z.number().nullable().optional(),
  p95Ms: z.number().nullable(),
  errorRate: z.number().nullable(),
  hitRatio: z.number().nullable(),
  requestsPerSecond: z.number().nullable(),
  originRequestsPerSecond: z.number().nullable(),
  monthlyCostUsd: z.number().nullable(),
});
export type MetricsSummary = z.infer<typeof MetricsSummary>;

/** What a watched window says: degraded rolls back, inconclusive pauses for a human; no data is never healthy. */
export const Verdict = z.enum(["healthy", "degraded", "inconclusive"]);
export type Verdict = z.infer<typeof Verdict>;
