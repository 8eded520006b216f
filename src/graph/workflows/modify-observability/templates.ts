/**
 * What a request's words mean in Honua's real series (HONUA.md): the PromQL of each measure, its unit, the usual
 * direction of trouble and a sane default threshold. An expression given verbatim is used as it is.
 */
export interface Measure {
  id: string;
  /** Words that name it ("p95 latency", "error rate"). */
  words: RegExp;
  expr: string;
  unit: "ms" | "ratio" | "rps" | "bytes";
  /** The comparison that means trouble. */
  op: ">" | "<";
  threshold: number;
  alert: string;
  summary: (t: number) => string;
  /** How synthetic series are made for the unit test. */
  synthetic: "latency" | "errors" | "cache" | null;
}

const ERRORS = 'sum(rate(honua_request_error_total{in_band="true"}[5m]) or rate(honua_request_error_total{error_code=~"5.."}[5m])) / sum(rate(honua_serving_request_duration_ms_count[5m]))';
const HITS = "sum(rate(honua_cache_hits_total[5m])) / (sum(rate(honua_cache_hits_total[5m])) + sum(rate(honua_cache_misses_total[5m])))";
const pct = (t: number) => `${Number((t * 100).toFixed(2))}%`;

export const MEASURES: readonly Measure[] = [
  { id: "p99_latency_ms", words: /\bp99\b/, expr: "histogram_quantile(0.99, sum by (le) (rate(honua_serving_request_duration_ms_bucket[5m])))", unit: "ms", op: ">", threshold: 1000, alert: "HonuaP99LatencyHigh", summary: (t) => `Honua p99 latency above ${t} ms`, synthetic: "latency" },
  { id: "tile_latency_ms", words: /\btiles?\b.*\b(?:latency|slow|duration)\b|\b(?:latency|slow)\b.*\btiles?\b/, expr: 'histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket{honua_protocol="ogc-tiles"}[5m])))', unit: "ms", op: ">", threshold: 500, alert: "TileLatencyHigh", summary: (t) => `Tile p95 latency above ${t} ms`, synthetic: "latency" },
  { id: "p95_latency_ms", words: /\b(?:p95|latency|slow|response time|duration)\b/, expr: "histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket[5m])))", unit: "ms", op: ">", threshold: 500, alert: "HonuaLatencyHigh", summary: (t) => `Honua p95 latency above ${t} ms`, synthetic: "latency" },
  { id: "error_rate", words: /\berrors?\b|\bfailures?\b|\b5xx\b/, expr: ERRORS, unit: "ratio", op: ">", threshold: 0.05, alert: "HonuaErrorRateHigh", summary: (t) => `Honua error rate above ${pct(t)}`, synthetic: "errors" },
  { id: "cache_hit_ratio", words: /\b(?:cache|hit)\b/, expr: HITS, unit: "ratio", op: "<", threshold: 0.8, alert: "HonuaCacheHitRatioLow", summary: (t) => `Honua cache hit ratio below ${pct(t)}`, synthetic: "cache" },
  { id: "db_pool_utilization", words: /\b(?:pool|connections?)\b/, expr: "max(honua_db_pool_utilization_ratio)", unit: "ratio", op: ">", threshold: 0.9, alert: "HonuaDbPoolSaturated", summary: (t) => `Honua database pool above ${pct(t)} used`, synthetic: null },
  { id: "db_latency_ms", words: /\b(?:database|db|query|queries|postgis)\b/, expr: "histogram_quantile(0.95, sum by (le) (rate(honua_database_query_duration_ms_bucket[5m])))", unit: "ms", op: ">", threshold: 200, alert: "HonuaDatabaseSlow", summary: (t) => `Honua database p95 above ${t} ms`, synthetic: "latency" },
  { id: "requests_per_second", words: /\b(?:requests?|traffic|throughput|rps)\b/, expr: "sum(rate(honua_serving_request_duration_ms_count[5m]))", unit: "rps", op: "<", threshold: 0.1, alert: "HonuaTrafficLow", summary: (t) => `Honua serving fewer than ${t} requests/s`, synthetic: null },
];

/** The measure a phrase ("p95_latency_ms", "high error rate", "cache hit rate") names, or null. */
export function measureOf(phrase: string): Measure | null {
  const p = phrase.toLowerCase().replace(/_/g, " ");
  return MEASURES.find((m) => m.id === phrase || m.words.test(p)) ?? null;
}
