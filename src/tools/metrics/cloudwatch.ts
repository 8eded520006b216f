import type {
  CloudWatchClient,
  GetMetricDataCommandInput,
  MetricDataQuery,
} from "@aws-sdk/client-cloudwatch";
import { z } from "zod";
import { AgentError, parseOptions } from "../../core/errors.js";
import type { MetricSample, MetricsQueryLog, MetricsQueryRecord, MetricsSource } from "../types.js";
import { noDataHint } from "./no-data.js";
import { lazyModule } from "../../core/lazy.js";

/** The SDK, imported when this adapter first calls AWS (see core/lazy.ts). */
const sdk = lazyModule(() => import("@aws-sdk/client-cloudwatch"));

const Dimensions = z.record(z.string().min(1), z.string().min(1));
/** Standard statistics, or a percentile such as `p95` (an extended statistic). */
const Stat = z.string().regex(/^(SampleCount|Average|Sum|Minimum|Maximum|p\d{1,2}(\.\d+)?|tm\d+|tc\d+|ts\d+|wm\d+|IQM)$/, "a CloudWatch statistic (Sum, Average, SampleCount, ...) or a percentile like p95");

const MetricRef = z
  .object({
    metricName: z.string().min(1),
    /** Defaults to the adapter's namespace. */
    namespace: z.string().min(1).optional(),
    /** Merged over the adapter's dimensions (these win). */
    dimensions: Dimensions.default({}),
    stat: Stat,
    /** Multiplier to the unit the agent uses: ms for latency (1000 for ALB's TargetResponseTime in seconds). */
    scale: z.number().positive().default(1),
  })
  .strict();
type MetricRef = z.output<typeof MetricRef>;

const COUNT_STATS = new Set(["Sum", "SampleCount"]);
const isCount = (m: MetricRef) => COUNT_STATS.has(m.stat);

export const CloudWatchMetricsOptions = z
  .object({
    region: z.string().min(1),
    /** Where Honua's metrics are published, e.g. `Honua` (CloudWatch agent / ADOT) or `AWS/ApplicationELB`. */
    namespace: z.string().min(1),
    /** Picks the deployment, e.g. `{ ServiceName: "honua-prod" }` or `{ LoadBalancer: "app/honua/..." }`. */
    dimensions: Dimensions.default({}),
    /** Which metric and statistic answers each reading. Defaults: Honua's Prometheus names as published by the CloudWatch agent. */
    metrics: z
      .object({
        /**
         * A value statistic, normally the extended statistic `p95`, in ms after `scale`. Percentiles need the
         * metric published as a distribution (EMF values/counts); bucket series scraped one by one cannot give one.
         */
        latency: MetricRef.refine((m) => !isCount(m), "latency needs a value statistic such as p95").default({ metricName: "honua_serving_request_duration_ms", stat: "p95", dimensions: {}, scale: 1 }),
        /** A count statistic (Sum or SampleCount) per period: divided by the period for requests/s. */
        requests: MetricRef.refine(isCount, "requests needs Sum or SampleCount").default({ metricName: "honua_serving_request_duration_ms", stat: "SampleCount", dimensions: {}, scale: 1 }),
        /**
         * Count statistics summed into the error count. For Honua include in-band errors (GeoServices answers
         * errors with HTTP 200): a load balancer's 5xx count alone misses them. Keep the metrics disjoint.
         */
        errors: z.array(MetricRef.refine(isCount, "errors need Sum or SampleCount")).min(1).default([
          { metricName: "honua_request_error_total", stat: "Sum", dimensions: { in_band: "true" }, scale: 1 },
          // Dimensions match exactly (no error_code=~"5.."), so 5xx come from the served-request distribution's
          // status_class; in-band errors are answered with HTTP 200, so the two never overlap.
          { metricName: "honua_serving_request_duration_ms", stat: "SampleCount", dimensions: { status_class: "5xx" }, scale: 1 },
        ]),
        /**
         * The cache's lookup counters as count statistics (published as deltas per period, as the CloudWatch agent
         * and ADOT do for Prometheus counters): the hit ratio is hits / (hits + misses). Not `honua_cache_hit_ratio`:
         * the server declares it twice (a gauge and a histogram), so it may not be there. null: no cache metrics.
         */
        cache: z
          .object({
            hits: MetricRef.refine(isCount, "cache hits need Sum or SampleCount"),
            misses: MetricRef.refine(isCount, "cache misses need Sum or SampleCount"),
          })
          .strict()
          .nullable()
          .default({
            hits: { metricName: "honua_cache_hits_total", stat: "Sum", dimensions: {}, scale: 1 },
            misses: { metricName: "honua_cache_misses_total", stat: "Sum", dimensions: {}, scale: 1 },
          }),
        /** A published hit-ratio value (e.g. Average of a gauge) read instead of `cache`; null (default): from `cache`. */
        hitRatio: MetricRef.refine((m) => !isCount(m), "hitRatio needs a value statistic such as Average").nullable().default(null),
        /** A count statistic of work reaching the origin (see docs/cloud.md for the choice). */
        originRequests: MetricRef.refine(isCount, "originRequests needs Sum or SampleCount").default({ metricName: "honua_database_query_duration_ms", stat: "SampleCount", dimensions: {}, scale: 1 }),
      })
      .strict()
      .prefault({}),
    /** Fewer data points than this behind a reading (its SampleCount) makes the point "no data". */
    minSamples: z.number().int().min(1).default(1),
    /**
     * Publishers that omit zero counts (ALB's HTTPCode_Target_5XX_Count is only published when non-zero)
     * leave error-free periods empty. Only then set this: a period with requests but no error datapoint
     * reads as 0 errors. Off by default, because an empty answer is otherwise "no data".
     */
    absentErrorsAreZero: z.boolean().default(false),
  })
  .strict();
export type CloudWatchMetricsOptions = z.input<typeof CloudWatchMetricsOptions>;

interface Query {
  reading: string;
  ref: MetricRef;
  valueId: string;
  countId: string;
}

export class CloudWatchMetrics implements MetricsSource {
  readonly options: z.output<typeof CloudWatchMetricsOptions>;
  private readonly client: CloudWatchClient | Promise<CloudWatchClient>;
  private log: MetricsQueryLog | null = null;

  constructor(options: CloudWatchMetricsOptions, client?: CloudWatchClient) {
    this.options = parseOptions(CloudWatchMetricsOptions, options, "cloudwatch metrics options");
    this.client = client ?? sdk().then((m) => new m.CloudWatchClient({ region: this.options.region }));
  }

  /** The metric queries and raw datapoints behind the last `samples()` answer. */
  lastQueries(): MetricsQueryLog | null {
    return this.log;
  }

  async samples(from: Date, to: Date, stepMinutes: number): Promise<MetricSample[]> {
    if (!(stepMinutes > 0)) throw new AgentError("bad-input", `stepMinutes must be positive, got ${stepMinutes}`);
    // Standard-resolution metrics aggregate in whole minutes.
    const period = Math.max(60, Math.ceil((stepMinutes * 60) / 60) * 60);
    const log: MetricsQueryLog = { source: this.describe(), at: new Date().toISOString(), queries: [], noData: [] };
    this.log = log;
    if (from.getTime() >= to.getTime()) return [];

    const m = this.options.metrics;
    const refs: [string, MetricRef][] = [
      ["latency", m.latency],
      ["requests", m.requests],
      ...m.errors.map((e, i) => [`errors${i}`, e] as [string, MetricRef]),
      ...(m.hitRatio ? [["hitRatio", m.hitRatio] as [string, MetricRef]] : m.cache ? [["cacheHits", m.cache.hits], ["cacheMisses", m.cache.misses]] as [string, MetricRef][] : []),
      ["originRequests", m.originRequests],
    ];
    const queries: Query[] = refs.map(([reading, ref], i) => ({ reading, ref, valueId: `q${i}_value`, countId: `q${i}_count` }));
    const stat = (ref: MetricRef, s: string): MetricDataQuery["MetricStat"] => ({
      Metric: {
        Namespace: ref.namespace ?? this.options.namespace,
        MetricName: ref.metricName,
        Dimensions: Object.entries({ ...this.options.dimensions, ...ref.dimensions }).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: period,
      Stat: s,
    });
    const input: GetMetricDataCommandInput = {
      StartTime: from,
      EndTime: to,
      ScanBy: "TimestampAscending",
      // Each reading's SampleCount rides along so every value carries the number of data points behind it.
      MetricDataQueries: queries.flatMap((q) => [
        { Id: q.valueId, MetricStat: stat(q.ref, q.ref.stat), ReturnData: true },
        { Id: q.countId, MetricStat: stat(q.ref, "SampleCount"), ReturnData: true },
      ]),
    };
    const series = await this.fetchAll(input);

    const at = (t: number) => new Date(t + period * 1000).toISOString();
    const grid = [...new Set([...series.values()].flatMap((s) => [...s.keys()]))].sort((a, b) => a - b);
    const read = (q: Query, t: number) => {
      const v = series.get(q.valueId)?.get(t);
      const n = series.get(q.countId)?.get(t) ?? 0;
      return { value: v !== undefined && Number.isFinite(v) ? v * q.ref.scale : null, samples: n };
    };
    for (const q of queries) {
      const rec: MetricsQueryRecord = {
        reading: q.reading,
        query: JSON.stringify(stat(q.ref, q.ref.stat)),
        sampleCountQuery: JSON.stringify(stat(q.ref, "SampleCount")),
        start: from.toISOString(),
        end: to.toISOString(),
        stepSeconds: period,
        points: grid.map((t) => {
          const r = read(q, t);
          return { at: at(t), value: r.value, raw: series.get(q.valueId)?.has(t) ? String(series.get(q.valueId)?.get(t)) : null, samples: r.samples };
        }),
      };
      log.queries.push(rec);
    }
    if (!grid.length) {
      // Honua's own metrics missing altogether most often means /metrics was never turned on.
      const hint = m.latency.metricName.startsWith("honua_") ? `; ${noDataHint(this.describe())}` : "";
      log.noData.push({ at: to.toISOString(), reason: `no datapoints for any reading in ${this.options.namespace} between ${from.toISOString()} and ${to.toISOString()}${hint}` });
      return [];
    }

    const byName = (name: string) => queries.find((q) => q.reading === name)!;
    const errorQueries = queries.filter((q) => q.reading.startsWith("errors"));
    const ok = (r: { value: number | null; samples: number }): r is { value: number; samples: number } => r.value !== null && r.samples >= this.options.minSamples;
    const out: MetricSample[] = [];
    for (const t of grid) {
      const latency = read(byName("latency"), t);
      const requests = read(byName("requests"), t);
      const origin = read(byName("originRequests"), t);
      const missing: string[] = [];
      for (const [name, r] of [["latency", latency], ["requests", requests], ["originRequests", origin]] as const) {
        if (!ok(r)) missing.push(r.value === null ? `${name}: no datapoint` : `${name}: ${r.samples} data points (need ${this.options.minSamples})`);
      }
      let errors = 0;
      for (const q of errorQueries) {
        const r = read(q, t);
        if (ok(r)) errors += r.value;
        else if (!(r.value === null && this.options.absentErrorsAreZero)) missing.push(`${q.reading} (${q.ref.metricName}): no datapoint`);
      }
      if (ok(requests) && requests.value === 0) missing.push("requests: 0, an error ratio needs traffic");
      if (missing.length || !ok(latency) || !ok(requests) || !ok(origin)) {
        log.noData.push({ at: at(t), reason: missing.join("; ") });
        continue;
      }
      out.push({
        at: at(t),
        p95Ms: latency.value,
        errorRate: errors / requests.value,
        hitRatio: this.hitRatio(queries, read, t),
        requestsPerSecond: requests.value / period,
        originRequestsPerSecond: origin.value / period,
      });
    }
    return out;
  }

  /** The deployment's metrics as this source asks for them, for messages. */
  describe(): string {
    const dims = Object.entries(this.options.dimensions).map(([k, v]) => `${k}=${v}`);
    return `cloudwatch ${this.options.region} ${this.options.namespace}${dims.length ? ` {${dims.join(", ")}}` : ""}`;
  }

  /**
   * The published ratio, or hits / (hits + misses). A counter without a datapoint (no miss yet) is 0 when the other
   * has one; neither, or no lookups in the period, is no cache data (null), never 0 or 1.
   */
  private hitRatio(queries: Query[], read: (q: Query, t: number) => { value: number | null; samples: number }, t: number): number | null {
    const ok = (r: { value: number | null; samples: number }): r is { value: number; samples: number } => r.value !== null && r.samples >= this.options.minSamples;
    const published = queries.find((q) => q.reading === "hitRatio");
    if (published) {
      const r = read(published, t);
      return ok(r) ? r.value : null;
    }
    const hitsQ = queries.find((q) => q.reading === "cacheHits");
    const missesQ = queries.find((q) => q.reading === "cacheMisses");
    if (!hitsQ || !missesQ) return null;
    const [hits, misses] = [read(hitsQ, t), read(missesQ, t)];
    if (!ok(hits) && !ok(misses)) return null;
    const h = ok(hits) ? hits.value : 0;
    const total = h + (ok(misses) ? misses.value : 0);
    return total > 0 ? h / total : null;
  }

  /** GetMetricData pages by NextToken; datapoints of one Id can arrive over several pages. */
  private async fetchAll(input: GetMetricDataCommandInput): Promise<Map<string, Map<number, number>>> {
    const series = new Map<string, Map<number, number>>();
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await (await this.client).send(new (await sdk()).GetMetricDataCommand({ ...input, ...(token ? { NextToken: token } : {}) }));
      for (const r of page.MetricDataResults ?? []) {
        if (r.StatusCode === "Forbidden" || r.StatusCode === "InternalError") {
          throw new AgentError("unavailable", `cloudwatch GetMetricData ${r.Id}: ${r.StatusCode}${r.Messages?.length ? `: ${r.Messages.map((x) => x.Value).join("; ")}` : ""}`);
        }
        if (!r.Id) continue;
        const s = series.get(r.Id) ?? new Map<number, number>();
        (r.Timestamps ?? []).forEach((ts, i) => {
          const v = r.Values?.[i];
          if (v !== undefined) s.set(ts.getTime(), v);
        });
        series.set(r.Id, s);
      }
      token = page.NextToken;
      if (++pages > 100) throw new AgentError("failed", "cloudwatch GetMetricData: more than 100 pages; narrow the window or raise the step");
    } while (token);
    return series;
  }
}
