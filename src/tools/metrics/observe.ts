import { type Monitoring, slowerReason, slowerThan } from "../../core/monitoring.js";
import type { Verdict } from "../../core/metrics.js";
import type { MetricsSummary } from "../../core/metrics.js";
import type { DeploymentAdapters, MetricSample } from "../types.js";
import { noDataHint } from "./no-data.js";

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const round = (x: number | null, digits = 4): number | null => (x === null ? null : Number(x.toFixed(digits)));

/**
 * The span `samples` really cover, in minutes: each reading stands for the interval up to its time, as wide as the
 * spacing between readings (a probe that measured half a minute for an hour it did not see covers half a minute).
 */
export function observedMinutes(samples: readonly MetricSample[], stepMinutes: number): number {
  if (samples.length === 0) return 0;
  const times = samples.map((s) => Date.parse(s.at)).sort((a, b) => a - b);
  const span = times.at(-1)! - times[0]!;
  const width = samples.length > 1 ? span / (samples.length - 1) : stepMinutes * 60_000;
  return Number(((span + width) / 60_000).toFixed(2));
}

export function summarize(samples: MetricSample[], at: Date, windowMinutes: number, monthlyCostUsd: number | null, stepMinutes = 1): MetricsSummary {
  const hits = samples.map((s) => s.hitRatio).filter((h): h is number => h !== null);
  return {
    at: at.toISOString(),
    windowMinutes,
    observedMinutes: Math.min(windowMinutes, observedMinutes(samples, stepMinutes)),
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
  return summarize(samples, to, minutes, await monthlyTotal(adapters), sampleEvery);
}

export interface WatchOptions {
  /** When the window started: remembered across a crash, so a restart waits only for what is left of it. */
  start: Date;
  /** Judged as samples arrive: a degradation ends the window at once instead of after the full hour. */
  baseline: MetricsSummary;
  monitoring: Pick<Monitoring, "minSamples" | "errorRateThreshold" | "latencyFactor" | "latencyMinDeltaMs">;
  /** Asked between slices: a cancel or rollback request ends the window early. */
  stopRequested?: () => Promise<string | null>;
  /** How often the window is looked at; 1/12 of it by default. */
  sliceMinutes?: number;
  /** Where the queries and raw values behind the verdict go (the metrics source's own log, when it keeps one). */
  attach?: (body: unknown) => Promise<string>;
}

export interface Watched {
  window: MetricsSummary;
  verdict: Verdict;
  reason: string;
  /** Set when the window ended before its time: a degradation, or a stop request. */
  endedEarly: string | null;
  /** Transcript key of the raw data behind the verdict, or null when the source keeps none. */
  evidence: string | null;
}

/**
 * Watches a monitoring window (simulated time in the sandbox) and judges it. The window is looked at in
 * slices: degradation rolls back as soon as there are enough samples to say so, and a cancel or rollback
 * request ends the wait. A window that started before a crash continues from its recorded start.
 */
export async function watch(adapters: DeploymentAdapters, minutes: number, sampleEvery: number, o: WatchOptions): Promise<Watched> {
  const evidence = async (): Promise<string | null> => {
    const log = adapters.metrics.lastQueries?.() ?? null;
    return log && o.attach ? o.attach(log) : null;
  };
  const source = () => adapters.metrics.lastQueries?.()?.source;
  const end = o.start.getTime() + minutes * 60_000;
  const slice = Math.max(sampleEvery, o.sliceMinutes ?? minutes / 12) * 60_000;
  for (;;) {
    const now = adapters.clock.now().getTime();
    if (now >= end) break;
    await adapters.clock.sleep(Math.min(slice, end - now));
    const at = adapters.clock.now();
    if (at.getTime() >= end) break;
    const partial = summarize(await adapters.metrics.samples(o.start, at, sampleEvery), at, minutes, null, sampleEvery);
    const j = judge(partial, o.baseline, o.monitoring, source());
    if (j.verdict === "degraded") {
      const window = { ...partial, monthlyCostUsd: round(await monthlyTotal(adapters), 2) };
      return { window, verdict: "degraded", reason: `${j.reason} (after ${Math.round((at.getTime() - o.start.getTime()) / 60_000)} of ${minutes} min)`, endedEarly: "degraded", evidence: await evidence() };
    }
    const stop = o.stopRequested ? await o.stopRequested() : null;
    if (stop) {
      const window = { ...partial, monthlyCostUsd: round(await monthlyTotal(adapters), 2) };
      return { window, verdict: j.verdict, reason: `window ended early: ${stop}`, endedEarly: stop, evidence: await evidence() };
    }
  }
  const to = new Date(Math.max(end, o.start.getTime()));
  const window = summarize(await adapters.metrics.samples(o.start, to, sampleEvery), to, minutes, await monthlyTotal(adapters), sampleEvery);
  return { window, ...judge(window, o.baseline, o.monitoring, source()), endedEarly: null, evidence: await evidence() };
}

/**
 * Healthy only with enough data and both signals inside bounds. No data is inconclusive, never healthy; with not
 * one sample, the reason says how to turn Honua's /metrics on for `source` (the metrics source's description).
 * Degraded: error ratio over the threshold, or p95 over baseline x factor by more than the minimum delta (DESIGN.md invariant 6).
 */
export function judge(
  window: MetricsSummary,
  baseline: MetricsSummary,
  m: Pick<Monitoring, "minSamples" | "errorRateThreshold" | "latencyFactor" | "latencyMinDeltaMs">,
  source = "the deployment",
): { verdict: Verdict; reason: string } {
  if (window.samples < m.minSamples || window.p95Ms === null || window.errorRate === null) {
    const over = window.samples > 0 && window.observedMinutes !== undefined && window.observedMinutes !== null && window.observedMinutes < window.windowMinutes ? ` (${window.observedMinutes} min observed)` : "";
    const hint = window.samples === 0 ? ` ${noDataHint(source)}` : "";
    return { verdict: "inconclusive", reason: `${window.samples} samples in ${window.windowMinutes} min${over} (need ${m.minSamples}): no data is not healthy.${hint}` };
  }
  if (window.errorRate > m.errorRateThreshold) {
    return { verdict: "degraded", reason: `error rate ${(window.errorRate * 100).toFixed(2)}% > ${(m.errorRateThreshold * 100).toFixed(2)}%` };
  }
  if (baseline.p95Ms !== null && slowerThan(window.p95Ms, baseline.p95Ms, m)) {
    return { verdict: "degraded", reason: slowerReason("p95", window.p95Ms, baseline.p95Ms, m) };
  }
  return { verdict: "healthy", reason: `p95 ${window.p95Ms} ms (baseline ${baseline.p95Ms ?? "n/a"} ms), errors ${(window.errorRate * 100).toFixed(2)}% over ${window.samples} samples` };
}
