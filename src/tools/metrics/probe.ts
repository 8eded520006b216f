import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { MetricSample, MetricsQueryLog, MetricsSource } from "../types.js";
import type { Clock } from "../../core/clock.js";
import { noDataHint } from "./no-data.js";

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
    /**
     * Honua's own `/metrics` (e.g. `http://honua:8080/metrics`), read while probing for the cache hit ratio from
     * `honua_cache_hits_total` / `honua_cache_misses_total` when answers carry no `hitHeader` (Redis inside Honua).
     */
    metricsUrl: z.url().optional(),
    /** How often `metricsUrl` is read while probing. */
    metricsEveryMs: z.number().int().positive().default(1000),
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

/** One read of Honua's /metrics: the cache counters summed over every cache, or why there were none. */
type Scrape = { at: number; hits: number; misses: number } | { at: number; problem: string };

/** The sum of every sample of `name` in a Prometheus text exposition, or null when it has none. */
function sumOf(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name && Number.isFinite(Number(m[2]))) sum = (sum ?? 0) + Number(m[2]);
  }
  return sum;
}

/** Hits / (hits + misses) between the reads around `start` and `end`; null without two reads, lookups, or after a reset. */
export function counterRatio(scrapes: readonly Scrape[], start: number, end: number): number | null {
  const counted = scrapes.filter((s): s is Extract<Scrape, { hits: number }> => "hits" in s && s.at <= end);
  const first = [...counted].reverse().find((s) => s.at <= start) ?? counted.find((s) => s.at > start);
  const last = counted.at(-1);
  if (!first || !last || last.at <= first.at) return null;
  const [hits, misses] = [last.hits - first.hits, last.misses - first.misses];
  return hits < 0 || misses < 0 || hits + misses === 0 ? null : hits / (hits + misses);
}

/** Recordings older than this are dropped: the longest window anyone watches is an hour. */
const KEEP_MS = 2 * 3600_000;

/** Nearest-rank percentile. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/**
 * Turns timed requests into readings: one per `bucketMs` from `from`; buckets under `min` requests are dropped (and
 * said why in `dropped`). The hit ratio comes from the cache header, else from `cacheRatio` (Honua's counters).
 */
export function bucketize(
  probes: Probe[],
  from: number,
  to: number,
  bucketMs: number,
  min: number,
  cacheRatio: (start: number, end: number) => number | null = () => null,
  dropped: { at: string; reason: string }[] = [],
): ProbeSample[] {
  const out: ProbeSample[] = [];
  // Whole readings only; the tolerance keeps a float remainder from opening an extra, near-empty one.
  const n = Math.max(1, Math.ceil((to - from) / bucketMs - 1e-6));
  for (let i = 0; i < n; i++) {
    const start = from + i * bucketMs;
    const end = i === n - 1 ? to : start + bucketMs;
    const inside = probes.filter((p) => p.at > start && p.at <= end);
    // A reading needs enough requests, and an answer: a probe that reached nothing measured nothing.
    if (inside.length < min || !inside.some((p) => p.reached)) {
      dropped.push({ at: new Date(end).toISOString(), reason: inside.length < min ? `${inside.length} requests (need ${min})` : `none of ${inside.length} requests reached the server (connection refused or unknown host)` });
      continue;
    }
    const ms = inside.map((p) => p.ms).sort((a, b) => a - b);
    const errors = inside.filter((p) => !p.ok).length;
    const told = inside.filter((p) => p.hit !== null);
    const hitRatio = told.length ? told.filter((p) => p.hit).length / told.length : cacheRatio(start, end);
    const rps = inside.length / ((end - start) / 1000);
    out.push({
      at: new Date(end).toISOString(),
      p95Ms: Number(percentile(ms, 0.95).toFixed(1)),
      errorRate: Number((errors / inside.length).toFixed(5)),
      hitRatio: hitRatio === null ? null : Number(hitRatio.toFixed(4)),
      requestsPerSecond: Number(rps.toFixed(2)),
      // Requests a cache answered, over all requests: with 10% on the cache, a 100% hit ratio there still leaves 90% of
      // requests at the origin (the ratio alone would say none).
      originRequestsPerSecond: Number((rps * (1 - (told.length ? told.filter((p) => p.hit).length / inside.length : (hitRatio ?? 0)))).toFixed(2)),
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
  private scrapes: Scrape[] = [];
  private url = 0;
  private log: MetricsQueryLog | null = null;

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
    const scraper = async () => {
      if (!o.metricsUrl) return;
      for (;;) {
        this.scrapes.push(await this.scrape(o.metricsUrl));
        const left = deadline - Date.now();
        if (left <= 0) return;
        await new Promise((r) => setTimeout(r, Math.min(o.metricsEveryMs, left)));
      }
    };
    await Promise.all([...Array.from({ length: o.concurrency }, worker), scraper()]);
    const cutoff = Date.now() - KEEP_MS;
    if (this.probes.length && this.probes[0]!.at < cutoff) this.probes = this.probes.filter((p) => p.at >= cutoff);
    if (this.scrapes.length && this.scrapes[0]!.at < cutoff) this.scrapes = this.scrapes.filter((p) => p.at >= cutoff);
  }

  /** The cache counters from Honua's /metrics, or why there are none (404 while HONUA_OBSERVABILITY is off, empty, ...). */
  private async scrape(url: string): Promise<Scrape> {
    try {
      const res = await this.fetchImpl(url, { headers: this.options.headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
      const text = await res.text();
      if (!res.ok) return { at: Date.now(), problem: `${url} answered HTTP ${res.status}` };
      if (!/^honua_/m.test(text)) return { at: Date.now(), problem: `${url} answered ${text.trim() === "" ? "nothing" : "without any honua_ metric"}` };
      return { at: Date.now(), hits: sumOf(text, "honua_cache_hits_total") ?? 0, misses: sumOf(text, "honua_cache_misses_total") ?? 0 };
    } catch (e) {
      return { at: Date.now(), problem: `${url} did not answer (${e instanceof Error ? e.message : String(e)})` };
    }
  }

  /** Why readings were dropped, and what Honua's /metrics said, behind the last samples() answer. */
  lastQueries(): MetricsQueryLog | null {
    return this.log;
  }

  /** The probed URLs, for messages. */
  describe(): string {
    const urls = this.options.urls;
    return `probe of ${urls[0]}${urls.length > 1 ? ` and ${urls.length - 1} more` : ""}`;
  }

  private readings(probes: Probe[], from: number, to: number, bucketMs: number): ProbeSample[] {
    const log: MetricsQueryLog = { source: this.describe(), at: new Date().toISOString(), queries: [], noData: [] };
    this.log = log;
    const samples = bucketize(probes, from, to, bucketMs, this.options.minRequestsPerSample, (a, b) => counterRatio(this.scrapes, a, b), log.noData);
    const url = this.options.metricsUrl;
    const read = this.scrapes.filter((s) => s.at > from - bucketMs && s.at <= to);
    const problem = read.findLast((s): s is Extract<Scrape, { problem: string }> => "problem" in s);
    // Readings without a hit header took their hit ratio from Honua's /metrics: say when it had nothing to give.
    if (url && problem && samples.some((s) => s.hitRatio === null)) {
      log.noData.push({ at: new Date(problem.at).toISOString(), reason: `hit ratio: ${problem.problem}; ${noDataHint(url.replace(/\/metrics\/?$/, ""))}` });
    }
    return samples;
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
    if (recorded.length > 0) return this.readings(recorded, a, b, stepMinutes * 60_000);
    // Nothing recorded in a window that ends now: measure it now rather than answer "no data" for a window
    // no one probed. A window that ended in the past stays empty (no data is never healthy).
    if (Date.now() - b > 5_000) {
      this.log = { source: this.describe(), at: new Date().toISOString(), queries: [], noData: [{ at: to.toISOString(), reason: "nothing was probed in this window, and probes cannot look back" }] };
      return [];
    }
    const start = Date.now();
    await this.probeFor(o.lookbackSeconds * 1000);
    const end = Date.now();
    const fresh = this.probes.filter((p) => p.at > start && p.at <= end);
    return this.readings(fresh, start, end, (end - start) / o.lookbackSamples);
  }
}
