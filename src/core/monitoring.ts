import { z } from "zod";

/** When a watched window is healthy, degraded or inconclusive: a deployment's `monitoring:` settings. */
export const Monitoring = z
  .object({
    /** Length of the post-rollout observation window, in (simulated, for the sandbox) minutes. */
    windowMinutes: z.number().positive().default(60),
    /** Observation between two rollout stages. */
    stageMinutes: z.number().positive().default(10),
    sampleEveryMinutes: z.number().positive().default(1),
    /** Fewer samples than this in a window is inconclusive, never healthy. */
    minSamples: z.number().int().positive().default(3),
    /** Roll back when the error ratio exceeds this... */
    errorRateThreshold: z.number().positive().max(1).default(0.02),
    /** ...or when p95 exceeds baseline times this. */
    latencyFactor: z.number().gt(1).default(1.5),
    /**
     * ...and only when it is also this many milliseconds slower. A 1 ms query at 8 ms on a busy host is over any
     * factor and is not a regression anyone would roll back for; a ratio alone on a small baseline is noise.
     */
    latencyMinDeltaMs: z.number().nonnegative().default(20),
  })
  .strict();
export type Monitoring = z.infer<typeof Monitoring>;

/** The one latency rule every watched signal uses: over baseline x factor and by more than the minimum delta. */
export function slowerThan(afterMs: number, baselineMs: number | null, m: Pick<Monitoring, "latencyFactor" | "latencyMinDeltaMs">): boolean {
  return baselineMs !== null && afterMs > baselineMs * m.latencyFactor && afterMs - baselineMs > m.latencyMinDeltaMs;
}

/** How a latency verdict is worded, so a reason always shows both halves of the rule. */
export function slowerReason(what: string, afterMs: number, baselineMs: number, m: Pick<Monitoring, "latencyFactor" | "latencyMinDeltaMs">): string {
  return `${what} ${afterMs} ms > baseline ${baselineMs} ms x ${m.latencyFactor} (and > +${m.latencyMinDeltaMs} ms)`;
}
