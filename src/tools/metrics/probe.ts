import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { Clock, MetricSample, MetricsSource } from "../types.js";

/** `metrics: { source: probe, ... }`: time real requests to tile URLs instead of reading a metrics server. */
export const ProbeMetricsOptions = z
  .object({
    source: z.literal("probe"),
    /** Tile URLs to request, through the traffic splitter (what users get). */
    urls: z.array(z.url()).min(1, "metrics.urls: at least one tile URL to probe"),
    /** Requests in flight at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Pause of each probe worker between two requests, so probing an hour-long window stays light. */
    pauseMs: z.number().int().min(0).default(50),
    timeoutMs: z.number().int().positive().default(5000),
    /** A reading from fewer requests than this is no reading at all. */
    minRequestsPerSample: z.number().int().min(1).default(5),
    /** Response header that says whether the cache answered (`HIT`/`MISS`); no header -> no hit ratio. */
    hitHeader: z.string().min(1).default("x-cache"),
    /** Probes cannot look back: a window that ended before probing began is measured now, for this long... */
    lookbackSeconds: z.number().positive().default(30),
    /** ...and cut into this many readings. */
    lookbackSamples: z.number().int().min(1).default(6),
    headers: z.record(z.string(), z.string()).default({}),
  })
  .strict();
export type ProbeMetricsOptions = z.infer<typeof ProbeMetricsOptions>;

/** One timed request. */
interface Probe {
  /** Completion time, epoch ms. */
  at: number;
  ms: number;
  ok: boolean;
  /** null: the response said nothing about a cache. */
  hit: boolean | null;
  /** False when nothing answered at all (connection refused, unknown host): that says nothing about the server. */
  reached: boolean;
}

/** A reading with the number of requests it is made of. */
export interface ProbeSample extends MetricSample {
  requests: number;
}

/** Recordings older than this are dropped: the longest window anyone watches is an hour. */
const KEEP_MS = 2 * 3600_000;

/** Nearest-rank percentile. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Turns timed requests into readings: one per `bucketMs` from `from`; buckets under `min` requests are dropped. */
export function bucketize(probes: Probe[], from: number, to: number, bucketMs: number, min: number): ProbeSample[] {
  const out: ProbeSample[] = [];
  // Whole readings only; the tolerance keeps a float remainder from opening an extra, near-empty one.
  const n = Math.max(1, Math.ceil((to - from) / bucketMs - 1e-6));
  for (let i = 0; i < n; i++) {
    const start = from + i * bucketMs;
    const end = i === n - 1 ? to : start + bucketMs;
    const inside = probes.filter((p) => p.at > start && p.at <= end);
    // A reading needs enough requests, and an answer: a probe that reached nothing measured nothing.
    if (inside.length < min || !inside.some((p) => p.reached)) continue;
    const ms = inside.map((p) => p.ms).sort((a, b) => a - b);
    const errors = inside.filter((p) => !p.ok).length;
    const told = inside.filter((p) => p.hit !== null);
    const hitRatio = told.length ? told.filter((p) => p.hit).length / told.length : null;
    const rps = inside.length / ((end - start) / 1000);
    out.push({
      at: new Date(end).toISOString(),
      p95Ms: Number(percentile(ms, 0.95).toFixed(1)),
      errorRate: Number((errors / inside.length).toFixed(5)),
      hitRatio: hitRatio === null ? null : Number(hitRatio.toFixed(4)),
      requestsPerSecond: Number(rps.toFixed(2)),
      originRequestsPerSecond: Number((rps * (1 - (hitRatio ?? 0))).toFixed(2)),
      requests: inside.length,
    });
  }
  return out;
}

/**
 * Serving metrics measured by timing real tile requests. The probe's own request rate is what
 * `requestsPerSecond` reports (it is not the server's traffic); errors are 5xx answers, timeouts and broken
 * connections; the hit ratio comes from the cache header when the server sends one. A reading in which no
 * request reached anything (connection refused, unknown host) is no reading: an unreachable probe target is
 * "no data", never a measurement.
 *
 * Time is real: the clock this source hands out probes while a monitoring window is waited out, so the window
 * is measured as it happens. A window in the past that nothing recorded is measured now, briefly.
 */
export class ProbeMetrics implements MetricsSource {
  private probes: Probe[] = [];
  private url = 0;

  constructor(
    readonly options: ProbeMetricsOptions,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** Real time; waiting out a window probes it. */
  readonly clock: Clock = {
    now: () => new Date(),
    sleep: (ms) => this.probeFor(ms),
  };

  /** Probes for `ms` milliseconds with the configured concurrency, recording every request. */
  async probeFor(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    const o = this.options;
    const worker = async () => {
      while (Date.now() < deadline) {
        const target = o.urls[this.url++ % o.urls.length]!;
        this.probes.push(await this.once(target, Math.max(1, Math.min(o.timeoutMs, deadline - Date.now() + o.timeoutMs))));
        const left = deadline - Date.now();
        if (o.pauseMs > 0 && left > 0) await new Promise((r) => setTimeout(r, Math.min(o.pauseMs, left)));
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const cutoff = Date.now() - KEEP_MS;
    if (this.probes.length && this.probes[0]!.at < cutoff) this.probes = this.probes.filter((p) => p.at >= cutoff);
  }

  private async once(url: string, timeoutMs: number): Promise<Probe> {
    const t0 = performance.now();
    try {
      const res = await this.fetchImpl(url, { headers: this.options.headers, signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      const ms = performance.now() - t0;
      const h = res.headers.get(this.options.hitHeader);
      const hit = h === null ? null : /^(hit|true|1)/i.test(h.trim());
      return { at: Date.now(), ms, ok: res.status < 500, hit, reached: true };
    } catch (e) {
      // A timeout or a reset is the server failing; a refused connection or an unknown host is no answer.
      const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError");
      const code = (e as { cause?: { code?: unknown } }).cause?.code;
      const reached = timedOut || (typeof code === "string" && !["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"].includes(code));
      return { at: Date.now(), ms: performance.now() - t0, ok: false, hit: null, reached };
    }
  }

  async samples(from: Date, to: Date, stepMinutes: number): Promise<ProbeSample[]> {
    const o = this.options;
    const a = from.getTime(), b = to.getTime();
    const recorded = this.probes.filter((p) => p.at > a && p.at <= b);
    if (recorded.length > 0) return bucketize(recorded, a, b, stepMinutes * 60_000, o.minRequestsPerSample);
    // Nothing recorded in a window that ends now: measure it now rather than answer "no data" for a window
    // no one probed. A window that ended in the past stays empty (no data is never healthy).
    if (Date.now() - b > 5_000) return [];
    const start = Date.now();
    await this.probeFor(o.lookbackSeconds * 1000);
    const end = Date.now();
    const fresh = this.probes.filter((p) => p.at > start && p.at <= end);
    return bucketize(fresh, start, end, (end - start) / o.lookbackSamples, o.minRequestsPerSample);
  }
}
