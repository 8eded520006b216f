import { z } from "zod";
import { AgentError, parseOptions } from "../../core/errors.js";
import { maskUrl } from "../../core/secrets.js";
import type { MetricSample, MetricsQueryLog, MetricsSource } from "../types.js";
import { noDataHint } from "./no-data.js";

const LabelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, "a Prometheus label name");
/** Prometheus duration, e.g. `30s`, `5m`, `1h`. */
const Duration = z.string().regex(/^([0-9]+(ms|s|m|h|d|w|y))+$/, "a Prometheus duration such as 30s, 5m or 1h");

export const PrometheusMetricsOptions = z
  .object({
    /** Base URL of the Prometheus server (the HTTP API lives under `/api/v1`). */
    url: z.url(),
    /**
     * Exact-match labels that pick the deployment's series, e.g. `{ job: "honua-prod" }`. They should be
     * target labels (job, instance, namespace): they also select the targets whose metadata is consulted.
     */
    selector: z.record(LabelName, z.string()).default({}),
    /** Range of every `rate()`; HONUA.md's rules use 5m. Must hold at least `minSamples` scrapes. */
    rateWindow: Duration.default("5m"),
    /** Fewer raw samples than this in a rate window makes that point "no data". `rate()` needs 2. */
    minSamples: z.number().int().min(2).default(2),
    /**
     * What counts as an origin request. `database-queries` (default): the rate of
     * `honua_database_query_duration_ms_count`, PostGIS work actually done, which exists before a cache
     * is added and after, so before/after compare like with like. `cache-misses`: the rate of
     * `honua_cache_misses_total`; only meaningful once a cache exists (no cache, no misses: the baseline
     * would read as no data), and one request can miss several cache entries.
     */
    origin: z.enum(["database-queries", "cache-misses"]).default("database-queries"),
    timeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type PrometheusMetricsOptions = z.input<typeof PrometheusMetricsOptions>;

/** One query behind a reading, with the raw values it returned: what the transcript shows. */
const VectorValue = z.tuple([z.number(), z.string()]);
const ApiResponse = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("success"),
    data: z.unknown(),
    warnings: z.array(z.string()).optional(),
  }),
  z.object({ status: z.literal("error"), errorType: z.string(), error: z.string() }),
]);
const Matrix = z.object({
  resultType: z.literal("matrix"),
  result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(VectorValue) })),
});
const TargetMetadata = z.array(z.object({ target: z.record(z.string(), z.string()), type: z.string() }));

type Series = Map<number, string>;

interface Reading {
  name: string;
  query: string;
  countQuery: string;
}

const ERRORS = "honua_request_error_total";
const LIVE_METRIC = "honua_serving_request_duration_ms_count";
const CACHE_HITS = "honua_cache_hits_total";
const CACHE_MISSES = "honua_cache_misses_total";
/** Prometheus refuses range queries with more points than this per series. */
const MAX_POINTS = 11_000;

export class PrometheusMetrics implements MetricsSource {
  readonly options: z.output<typeof PrometheusMetricsOptions>;
  private log: MetricsQueryLog | null = null;

  constructor(
    options: PrometheusMetricsOptions,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.options = parseOptions(PrometheusMetricsOptions, options, "prometheus metrics options");
  }

  /** The queries and raw values behind the last `samples()` answer (null before the first call). */
  lastQueries(): MetricsQueryLog | null {
    return this.log;
  }

  /** The PromQL of each reading, for approval cards and docs. */
  queries(): Record<"p95Ms" | "requestsPerSecond" | "errorsPerSecond" | "hitRatio" | "originRequestsPerSecond", Reading> {
    const w = this.options.rateWindow;
    const sel = (extra: string[] = []) => {
      const ms = [...Object.entries(this.options.selector).map(([k, v]) => `${k}=${quote(v)}`), ...extra];
      return ms.length ? `{${ms.join(",")}}` : "";
    };
    const count = (metric: string) => `max(count_over_time(${metric}${sel()}[${w}]))`;
    const rate = (metric: string) => `(sum(rate(${metric}${sel()}[${w}])) or vector(0))`;
    const origin = this.options.origin === "database-queries" ? "honua_database_query_duration_ms_count" : "honua_cache_misses_total";
    return {
      p95Ms: {
        name: "p95Ms",
        query: `histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket${sel()}[${w}])))`,
        countQuery: count("honua_serving_request_duration_ms_count"),
      },
      requestsPerSecond: {
        name: "requestsPerSecond",
        query: `sum(rate(honua_serving_request_duration_ms_count${sel()}[${w}]))`,
        countQuery: count("honua_serving_request_duration_ms_count"),
      },
      // GeoServices answers errors with HTTP 200 and an error body: count in-band errors and 5xx, and
      // `or` (not `+`) so a series that is both in-band and 5xx is counted once.
      errorsPerSecond: {
        name: "errorsPerSecond",
        query: `sum(rate(${ERRORS}${sel(['in_band="true"'])}[${w}]) or rate(${ERRORS}${sel(['error_code=~"5.."'])}[${w}]))`,
        countQuery: count(ERRORS),
      },
      // From the counters: `honua_cache_hit_ratio` is declared twice in the server (a gauge and a histogram), so
      // the bare name may be absent. A counter missing on one side (no miss yet) counts as 0 there; with neither,
      // or no lookups in the window, the division is NaN: no cache data, never 0 or 1.
      hitRatio: {
        name: "hitRatio",
        query: `${rate(CACHE_HITS)} / (${rate(CACHE_HITS)} + ${rate(CACHE_MISSES)})`,
        countQuery: `max(count_over_time(${CACHE_HITS}${sel()}[${w}]) or count_over_time(${CACHE_MISSES}${sel()}[${w}]))`,
      },
      originRequestsPerSecond: {
        name: "originRequestsPerSecond",
        query: `sum(rate(${origin}${sel()}[${w}]))`,
        countQuery: count(origin),
      },
    };
  }

  async samples(from: Date, to: Date, stepMinutes: number): Promise<MetricSample[]> {
    if (!(stepMinutes > 0)) throw new AgentError("bad-input", `stepMinutes must be positive, got ${stepMinutes}`);
    const stepSeconds = stepMinutes * 60;
    // Same grid as every metrics source: one point at the end of each step after `from`, up to `to`.
    const start = from.getTime() / 1000 + stepSeconds;
    const end = to.getTime() / 1000;
    const log: MetricsQueryLog = { source: this.describe(), at: new Date().toISOString(), queries: [], noData: [] };
    this.log = log;
    if (start > end) return [];
    if ((end - start) / stepSeconds + 1 > MAX_POINTS) {
      throw new AgentError("bad-input", `${from.toISOString()}..${to.toISOString()} at ${stepMinutes} min is more than ${MAX_POINTS} points; use a larger step`);
    }
    const q = this.queries();
    const range = { start, end, step: stepSeconds };
    const readings = [q.p95Ms, q.requestsPerSecond, q.errorsPerSecond, q.hitRatio, q.originRequestsPerSecond];
    // rate() and count_over_time() still read a target's samples for a whole rate window after its scrapes
    // start failing; an instant selector does not (a failed scrape marks its series stale at once).
    const liveQuery = this.liveQuery();
    const [answers, live] = await Promise.all([
      Promise.all(readings.map(async (r) => {
        const [values, counts] = await Promise.all([this.queryRange(r.query, range), this.queryRange(r.countQuery, range)]);
        return { r, values, counts };
      })),
      this.queryRange(liveQuery, range),
    ]);

    const grid: number[] = [];
    for (let t = start; t <= end + 1e-9; t += stepSeconds) grid.push(Math.round(t * 1000) / 1000);
    const read = new Map<string, (t: number) => { value: number | null; samples: number }>();
    for (const { r, values, counts } of answers) {
      const points = grid.map((t) => {
        const raw = values.get(t) ?? null;
        const n = Number(counts.get(t) ?? "0");
        const v = raw === null ? null : Number(raw);
        return { at: iso(t), value: v !== null && Number.isFinite(v) ? v : null, raw, samples: Number.isFinite(n) ? n : 0 };
      });
      log.queries.push({ reading: r.name, query: r.query, sampleCountQuery: r.countQuery, start: iso(start), end: iso(end), stepSeconds, points });
      const byT = new Map(grid.map((t, i) => [t, points[i]!]));
      read.set(r.name, (t) => byT.get(t) ?? { value: null, samples: 0 });
    }
    const livePoints = grid.map((t) => {
      const raw = live.get(t) ?? null;
      const n = raw === null ? NaN : Number(raw);
      // `samples` here is the number of live series (the query counts series, not raw samples).
      return { at: iso(t), value: Number.isFinite(n) ? n : null, raw, samples: Number.isFinite(n) ? n : 0 };
    });
    log.queries.push({ reading: "liveSeries", query: liveQuery, sampleCountQuery: null, start: iso(start), end: iso(end), stepSeconds, points: livePoints });
    const liveAt = new Map(grid.map((t, i) => [t, livePoints[i]!.samples]));
    const get = (name: string, t: number) => read.get(name)!(t);
    const usable = (p: { value: number | null; samples: number }): p is { value: number; samples: number } =>
      p.value !== null && p.samples >= this.options.minSamples;

    let errorsDeclared: boolean | undefined;
    const out: MetricSample[] = [];
    for (const t of grid) {
      const at = iso(t);
      const why = (reading: string, p: { value: number | null; samples: number }) =>
        p.value === null ? `${reading}: no value (empty, NaN or infinite)` : `${reading}: ${p.samples} raw samples in ${this.options.rateWindow} (need ${this.options.minSamples})`;
      const p95 = get("p95Ms", t);
      const rps = get("requestsPerSecond", t);
      const errors = get("errorsPerSecond", t);
      const hit = get("hitRatio", t);
      const origin = get("originRequestsPerSecond", t);
      const missing = [
        !usable(p95) && why("p95Ms", p95),
        !usable(rps) && why("requestsPerSecond", rps),
        !usable(origin) && why("originRequestsPerSecond", origin),
      ].filter((x): x is string => typeof x === "string");
      if (rps.value === 0) missing.push("requestsPerSecond: 0, an error ratio needs traffic");
      if (!(liveAt.get(t)! > 0)) missing.push(`no live series of ${LIVE_METRIC} (target down or not scraped): rates would be read from samples before it went away`);
      let errorsPerSecond: number | null = null;
      if (usable(errors)) errorsPerSecond = errors.value;
      else if (errors.value === null && errors.samples === 0) {
        // A labelled counter has no series until its first increment, so a healthy server exports none.
        // Zero is only claimed when a scraped target declares the metric; a name that no target exports
        // (a typo, another version) stays "no data".
        errorsDeclared ??= await this.declared(ERRORS);
        if (errorsDeclared) errorsPerSecond = 0;
        else missing.push(`errorsPerSecond: no ${ERRORS} series and no scraped target declares it`);
      } else missing.push(why("errorsPerSecond", errors));
      if (missing.length || errorsPerSecond === null || !usable(p95) || !usable(rps) || !usable(origin)) {
        log.noData.push({ at, reason: missing.join("; ") });
        continue;
      }
      out.push({
        at,
        p95Ms: p95.value,
        errorRate: errorsPerSecond / rps.value,
        // No hit-ratio series means no cache is configured (null), which the interface distinguishes from 0.
        hitRatio: usable(hit) ? hit.value : null,
        requestsPerSecond: rps.value,
        originRequestsPerSecond: origin.value,
      });
    }
    // No served-request series in the whole range: say why, and how to turn Honua's /metrics on when that is the cause.
    const absent = grid.every((t) => get("requestsPerSecond", t).samples === 0 && get("p95Ms", t).samples === 0 && !(liveAt.get(t)! > 0));
    if (absent && log.noData.length) {
      const why = await this.whyAbsent(range);
      for (const n of log.noData) n.reason = `${n.reason}; ${why}`;
    }
    return out;
  }

  /** The deployment's series as this source picks them, for messages. */
  describe(): string {
    const sel = Object.entries(this.options.selector).map(([k, v]) => `${k}=${quote(v)}`);
    return `prometheus ${maskUrl(this.options.url)} ${sel.length ? `{${sel.join(",")}}` : "(every target)"}`;
  }

  /** Why no target has served-request series: not scraped, scrapes failing (e.g. /metrics off), or nothing served yet. */
  private async whyAbsent(range: { start: number; end: number; step: number }): Promise<string> {
    const ms = Object.entries(this.options.selector).map(([k, v]) => `${k}=${quote(v)}`);
    const up = [...(await this.queryRange(`max(up${ms.length ? `{${ms.join(",")}}` : ""})`, range)).values()].map(Number);
    const series = `no ${LIVE_METRIC.replace(/_count$/, "_*")} series in the whole range`;
    if (up.length === 0) return `${series}, and Prometheus scrapes no target matching the selector. ${noDataHint(this.describe())}`;
    if (up.every((v) => v === 0)) return `${series}: every scrape of the target failed (Honua down, or /metrics not served). ${noDataHint(this.describe())}`;
    return `${series}, although the target answers its scrapes: no request served yet, or the target is not Honua`;
  }

  /** Series of the served-request counter present at each step (instant selector: stale once a scrape fails). */
  liveQuery(): string {
    const ms = Object.entries(this.options.selector).map(([k, v]) => `${k}=${quote(v)}`);
    return `count(${LIVE_METRIC}${ms.length ? `{${ms.join(",")}}` : ""})`;
  }

  private async api(path: string, params: Record<string, string>): Promise<unknown> {
    const url = new URL(path, this.options.url.endsWith("/") ? this.options.url : `${this.options.url}/`);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (err) {
      throw new AgentError("unavailable", `prometheus ${url.origin}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AgentError("unavailable", `prometheus ${url.pathname}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
    }
    const parsed = ApiResponse.safeParse(body);
    if (!parsed.success) throw new AgentError("unavailable", `prometheus ${url.pathname}: unexpected answer (HTTP ${res.status}): ${text.slice(0, 200)}`);
    if (parsed.data.status === "error") {
      throw new AgentError("failed", `prometheus ${url.pathname}: ${parsed.data.errorType}: ${parsed.data.error} (query ${params.query ?? params.metric ?? ""})`);
    }
    return parsed.data.data;
  }

  /** One value series by timestamp (seconds); the queries aggregate, so more than one series is a bug. */
  private async queryRange(query: string, r: { start: number; end: number; step: number }): Promise<Series> {
    const data = Matrix.safeParse(await this.api("api/v1/query_range", { query, start: String(r.start), end: String(r.end), step: String(r.step) }));
    if (!data.success) throw new AgentError("unavailable", `prometheus query_range: not a matrix for ${query}`);
    const [first, ...rest] = data.data.result;
    if (rest.length) throw new AgentError("failed", `prometheus: ${query} returned ${data.data.result.length} series, expected one`);
    return new Map((first?.values ?? []).map(([t, v]) => [Math.round(t * 1000) / 1000, v]));
  }

  private async declared(metric: string): Promise<boolean> {
    const params: Record<string, string> = { metric };
    const sel = Object.entries(this.options.selector);
    if (sel.length) params.match_target = `{${sel.map(([k, v]) => `${k}=${quote(v)}`).join(",")}}`;
    const url = `api/v1/targets/metadata?${new URLSearchParams(params).toString()}`;
    // The metadata endpoint is GET-only.
    const full = new URL(url, this.options.url.endsWith("/") ? this.options.url : `${this.options.url}/`);
    let res: Response;
    try {
      res = await this.fetchImpl(full, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (err) {
      throw new AgentError("unavailable", `prometheus ${full.origin}: ${(err as Error).message}`);
    }
    const body = ApiResponse.safeParse(await res.json().catch(() => null));
    // Prometheus answers "not found" when no target has metadata for the metric.
    if (!body.success || body.data.status === "error") return false;
    const meta = TargetMetadata.safeParse(body.data.data);
    return meta.success && meta.data.some((m) => m.type === "counter");
  }
}

const iso = (t: number) => new Date(t * 1000).toISOString();
const quote = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
