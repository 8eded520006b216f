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
  })
  .strict();
export type Monitoring = z.infer<typeof Monitoring>;
