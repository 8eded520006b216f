import type { Monitoring } from "../core/monitoring.js";
import type { Verdict } from "../core/metrics.js";
import type { DeploymentAdapters } from "./types.js";

export interface SignalReading {
  verdict: Verdict;
  reason: string;
  /** The figures behind the verdict, for the transcript and the cards. */
  figures: Record<string, number | null>;
}

/**
 * Something a monitoring window watches: serving latency and errors, database query latency and locks, scrape and
 * rule-evaluation health, per-backend storage latency. Each signal has its own no-data rule, and no data is never
 * healthy: a signal that cannot read says `inconclusive`.
 */
export interface Signal {
  name: string;
  read(adapters: DeploymentAdapters, from: Date, to: Date, o: { monitoring: Monitoring; final: boolean }): Promise<SignalReading>;
  /** The raw data behind the last reading, kept beside the checkpoints (returns what to attach, or null). */
  evidence?(adapters: DeploymentAdapters): unknown;
}
