import type { Monitoring } from "../../config.js";
import type { Verdict } from "../../graph/step.js";
import type { MetricsSummary } from "../../graph/state.js";
import type { DeploymentAdapters, MetricSample } from "../types.js";

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const round = (x: number | null, digits = 4): number | null => (x === null ? null : Number(x.toFixed(digits)));

export function summarize(samples: MetricSample[], at: Date, windowMinutes: number, monthlyCostUsd: number | null): MetricsSummary {
  const hits = samples.map((s) => s.hitRatio).filter((h): h is number => h !== null);
  return {
    at: at.toISOString(),
    windowMinutes,
    samples: samples.length,
    // The window's p95 is the worst 5-minute p95 in it: a regression must not average away.
    p95Ms: samples.length ? round(Math.max(...samples.map((s) => s.p95Ms)), 1) : null,
    errorRate: round(mean(samples.map((s) => s.errorRate)), 5),
    hitRatio: round(mean(hits)),
    requestsPerSecond: round(mean(samples.map((s) => s.requestsPerSecond)), 2),
    originRequestsPerSecond: round(mean(samples.map((s) => s.originRequestsPerSecond)), 2),
    monthlyCostUsd: monthlyCostUsd === null ? null : round(monthlyCostUsd, 2),
  };
}

async function monthlyTotal(adapters: DeploymentAdapters): Promise<number | null> {
  try {
    const parts = await adapters.cost.monthly();
    return Object.values(parts).reduce((a, b) => a + b, 0);
  } catch {
    return null;
  }
}

/** The last `minutes` up to now, without waiting: what an approval card shows. */
export async function snapshot(adapters: DeploymentAdapters, minutes: number, sampleEvery: number): Promise<MetricsSummary> {
  const to = adapters.clock.now();
  const from = new Date(to.getTime() - minutes * 60_000);
  const samples = await adapters.metrics.samples(from, to, sampleEvery);
  return summarize(samples, to, minutes, await monthlyTotal(adapters));
}

/** Waits out a monitoring window (simulated time in the sandbox), then summarises it. */
export async function observe(adapters: DeploymentAdapters, minutes: number, sampleEvery: number): Promise<MetricsSummary> {
  const from = adapters.clock.now();
  await adapters.clock.sleep(minutes * 60_000);
  const to = adapters.clock.now();
  const samples = await adapters.metrics.samples(from, to, sampleEvery);
  return summarize(samples, to, minutes, await monthlyTotal(adapters));
}

/**
 * Healthy only with enough data and both signals inside bounds. No data is inconclusive, never healthy.
 * Degraded: error ratio over the threshold, or p95 over baseline x factor (DESIGN.md invariant 6).
 */
export function judge(
  window: MetricsSummary,
  baseline: MetricsSummary,
  m: Pick<Monitoring, "minSamples" | "errorRateThreshold" | "latencyFactor">,
): { verdict: Verdict; reason: string } {
  if (window.samples < m.minSamples || window.p95Ms === null || window.errorRate === null) {
    return { verdict: "inconclusive", reason: `${window.samples} samples in ${window.windowMinutes} min (need ${m.minSamples}): no data is not healthy` };
  }
  if (window.errorRate > m.errorRateThreshold) {
    return { verdict: "degraded", reason: `error rate ${(window.errorRate * 100).toFixed(2)}% > ${(m.errorRateThreshold * 100).toFixed(2)}%` };
  }
  if (baseline.p95Ms !== null && window.p95Ms > baseline.p95Ms * m.latencyFactor) {
    return { verdict: "degraded", reason: `p95 ${window.p95Ms} ms > baseline ${baseline.p95Ms} ms x ${m.latencyFactor}` };
  }
  return { verdict: "healthy", reason: `p95 ${window.p95Ms} ms (baseline ${baseline.p95Ms ?? "n/a"} ms), errors ${(window.errorRate * 100).toFixed(2)}% over ${window.samples} samples` };
}
