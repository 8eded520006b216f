import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judge, summarize } from "../src/tools/metrics/observe.js";
import { PrometheusMetrics } from "../src/tools/metrics/prometheus.js";
import { startHonuaExporter, type HonuaExporter } from "./fixtures/honua-exporter.js";
import { prometheusUnavailable, startPrometheus, waitForScrapes, type PrometheusServer } from "./fixtures/prometheus-server.js";

const unavailable = prometheusUnavailable();
// Seconds-scale windows against a 1 s scrape interval: ~5 raw samples per rate window.
const FAST = { rateWindow: "5s", minSamples: 3 } as const;
const STEP_MINUTES = 2 / 60;

const lastSeconds = (s: number) => {
  const to = new Date();
  return [new Date(to.getTime() - s * 1000), to] as const;
};

// CI (.ci/run sets HONUA_AGENT_REQUIRE_TOOLS) installs the tool: there a missing one fails instead of skipping.
if (unavailable && process.env.HONUA_AGENT_REQUIRE_TOOLS) throw new Error(`required by CI but not usable here: ${unavailable}`);
describe.skipIf(unavailable !== null)(`PrometheusMetrics against a real Prometheus${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  let prom: PrometheusServer;
  const exporters: Record<string, HonuaExporter> = {};

  beforeAll(async () => {
    // 100 requests/scrape at 40 ms; errors: 2 in-band, 1 in-band 5xx, 3 out-of-band 5xx, 4 (ignored) 404s.
    // Cache: 80 hits and 20 misses per scrape, a hit ratio of 0.8 (the histogram form of honua_cache_hit_ratio says 0.1).
    exporters.busy = await startHonuaExporter({ requests: 100, latencyMs: 40, inBandErrors: 2, inBand5xx: 1, serverErrors: 3, clientErrors: 4, cacheHits: 80, dbQueries: 30, cacheMisses: 20 });
    // Healthy and error-free: the error counter is declared but has no series yet; no cache lookups at all.
    exporters.clean = await startHonuaExporter({ requests: 50, latencyMs: 8, dbQueries: 50 });
    // A server that does not export the error counter at all.
    exporters.undeclared = await startHonuaExporter({ requests: 50, latencyMs: 8, dbQueries: 50 }, { declareErrors: false });
    // Every lookup hits: there is no miss series. And the opposite.
    exporters.allhits = await startHonuaExporter({ requests: 50, latencyMs: 8, dbQueries: 5, cacheHits: 50 });
    exporters.allmisses = await startHonuaExporter({ requests: 50, latencyMs: 8, dbQueries: 50, cacheMisses: 50 });
    // HONUA_OBSERVABILITY unset: /metrics answers 404. And a Honua that has served nothing yet.
    exporters.off = await startHonuaExporter({ requests: 50, latencyMs: 8, dbQueries: 50 }, { observability: false });
    exporters.idle = await startHonuaExporter({});
    prom = await startPrometheus(Object.fromEntries(Object.entries(exporters).map(([job, e]) => [`honua-${job}`, `127.0.0.1:${e.port}`])));
    for (const job of Object.keys(exporters)) await waitForScrapes(prom.url, `honua-${job}`, 7);
  });

  afterAll(async () => {
    await prom?.close();
    for (const e of Object.values(exporters)) await e.close();
  });

  it("reads p95, in-band error rate, hit ratio (from the hit and miss counters), requests/s and origin load from query_range", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-busy" }, ...FAST });
    const samples = await metrics.samples(...lastSeconds(3), STEP_MINUTES);
    expect(samples.length).toBeGreaterThanOrEqual(1);
    for (const s of samples) {
      // Every observation is 40 ms, in the (25, 50] bucket: histogram_quantile interpolates 25 + 25 x 0.95.
      expect(s.p95Ms).toBeCloseTo(48.75, 6);
      // (2 in-band + 1 in-band 5xx + 3 5xx) / 100; the 404s are not errors and the in-band 5xx is counted once.
      expect(s.errorRate).toBeCloseTo(0.06, 6);
      expect(s.hitRatio).toBeCloseTo(0.8, 6);
      expect(s.originRequestsPerSecond / s.requestsPerSecond).toBeCloseTo(0.3, 6);
      // 100 requests per 1 s scrape; loose bounds, the scrape interval jitters.
      expect(s.requestsPerSecond).toBeGreaterThan(50);
      expect(s.requestsPerSecond).toBeLessThan(200);
    }
    const log = metrics.lastQueries();
    expect(log?.noData).toEqual([]);
    const byReading = Object.fromEntries((log?.queries ?? []).map((q) => [q.reading, q]));
    expect(byReading.errorsPerSecond?.query).toBe(
      'sum(rate(honua_request_error_total{job="honua-busy",in_band="true"}[5s]) or rate(honua_request_error_total{job="honua-busy",error_code=~"5.."}[5s]))',
    );
    expect(byReading.p95Ms?.query).toBe('histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket{job="honua-busy"}[5s])))');
    expect(byReading.hitRatio?.query).toBe(
      '(sum(rate(honua_cache_hits_total{job="honua-busy"}[5s])) or vector(0)) / ((sum(rate(honua_cache_hits_total{job="honua-busy"}[5s])) or vector(0)) + (sum(rate(honua_cache_misses_total{job="honua-busy"}[5s])) or vector(0)))',
    );
    // The raw values behind each sample, with the sample count that made them usable.
    for (const q of log?.queries ?? []) {
      expect(q.points.length).toBe(samples.length);
      // Each reading's raw sample count; the liveness query counts live series instead (one target here).
      for (const p of q.points) expect(p.samples).toBeGreaterThanOrEqual(q.reading === "liveSeries" ? 1 : 3);
    }
    expect(byReading.liveSeries?.query).toBe('count(honua_serving_request_duration_ms_count{job="honua-busy"})');
    const all = JSON.stringify(log);
    expect(all).not.toContain("honua_http_requests_total");
    expect(all).not.toContain("honua_request_duration_ms_bucket");
    expect(all).not.toContain("honua_cache_hit_ratio");
  });

  it("reads a hit ratio of 1 when nothing missed and 0 when nothing hit: a counter without series counts as 0", async () => {
    for (const [job, ratio] of [["allhits", 1], ["allmisses", 0]] as const) {
      const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: `honua-${job}` }, ...FAST });
      const samples = await metrics.samples(...lastSeconds(3), STEP_MINUTES);
      expect(samples.length, job).toBeGreaterThanOrEqual(1);
      for (const s of samples) expect(s.hitRatio, job).toBe(ratio);
    }
  });

  it("counts origin load from cache misses when asked to", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-busy" }, origin: "cache-misses", ...FAST });
    const samples = await metrics.samples(...lastSeconds(3), STEP_MINUTES);
    expect(samples.length).toBeGreaterThanOrEqual(1);
    for (const s of samples) expect(s.originRequestsPerSecond / s.requestsPerSecond).toBeCloseTo(0.2, 6);
  });

  it("reads a zero error rate when the error counter is declared but has no series, and a null hit ratio (not 0, not 1) without cache lookups", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-clean" }, ...FAST });
    const samples = await metrics.samples(...lastSeconds(3), STEP_MINUTES);
    expect(samples.length).toBeGreaterThanOrEqual(1);
    for (const s of samples) {
      expect(s.errorRate).toBe(0);
      expect(s.hitRatio).toBeNull();
      expect(s.p95Ms).toBeCloseTo(5 + 5 * 0.95, 6);
    }
  });

  it("is no data when no target exports the error counter", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-undeclared" }, ...FAST });
    expect(await metrics.samples(...lastSeconds(3), STEP_MINUTES)).toEqual([]);
    const log = metrics.lastQueries();
    expect(log?.noData.length).toBeGreaterThanOrEqual(1);
    expect(log?.noData[0]?.reason).toContain("no scraped target declares it");
  });

  it("is no data for a series that does not exist (an empty vector is never healthy)", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-does-not-exist" }, ...FAST });
    expect(await metrics.samples(...lastSeconds(3), STEP_MINUTES)).toEqual([]);
    const log = metrics.lastQueries();
    expect(log?.noData.length).toBeGreaterThanOrEqual(1);
    expect(log?.noData[0]?.reason).toContain("p95Ms: no value");
    // Nothing matches the selector at all: the reason names the series and says how to turn /metrics on.
    expect(log?.noData[0]?.reason).toContain("Prometheus scrapes no target matching the selector");
    expect(log?.noData[0]?.reason).toContain('No Honua metrics from prometheus http://127.0.0.1');
    expect(log?.noData[0]?.reason).toContain('{job="honua-does-not-exist"}');
    expect(log?.noData[0]?.reason).toContain("HONUA_OBSERVABILITY=true");
    expect(log?.queries.every((q) => q.points.every((p) => p.value === null && p.samples === 0))).toBe(true);
  });

  it("is no data with the way to turn /metrics on when the target answers 404 (HONUA_OBSERVABILITY unset)", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-off" }, ...FAST });
    expect(await metrics.samples(...lastSeconds(3), STEP_MINUTES)).toEqual([]);
    const reasons = metrics.lastQueries()?.noData.map((n) => n.reason) ?? [];
    expect(reasons.length).toBeGreaterThanOrEqual(1);
    for (const r of reasons) {
      expect(r).toContain("every scrape of the target failed");
      expect(r).toMatch(/HONUA_OBSERVABILITY=true.*config\.env\.HONUA_OBSERVABILITY="true"/);
    }
    // What monitoring tells the approver names the series it asked for.
    const verdict = judge(summarize([], new Date(), 1, null), summarize([], new Date(), 1, null), { minSamples: 1, errorRateThreshold: 0.02, latencyFactor: 1.5, latencyMinDeltaMs: 20 }, metrics.lastQueries()?.source);
    expect(verdict.reason).toMatch(/No Honua metrics from prometheus http:\/\/127\.0\.0\.1:\d+ \{job="honua-off"\}/);
  });

  it("is no data without that advice when /metrics answers but Honua has served nothing yet", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-idle" }, ...FAST });
    expect(await metrics.samples(...lastSeconds(3), STEP_MINUTES)).toEqual([]);
    const reason = metrics.lastQueries()?.noData[0]?.reason ?? "";
    expect(reason).toContain("the target answers its scrapes: no request served yet");
    expect(reason).not.toContain("HONUA_OBSERVABILITY");
  });

  it("is no data when the rate window holds too few samples", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-busy" }, rateWindow: "5s", minSamples: 50 });
    expect(await metrics.samples(...lastSeconds(3), STEP_MINUTES)).toEqual([]);
    expect(metrics.lastQueries()?.noData[0]?.reason).toMatch(/raw samples in 5s \(need 50\)/);
  });

  it("refuses a range with more points than Prometheus allows, before asking", async () => {
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-busy" }, rateWindow: "5s" });
    // A step so small that the range exceeds Prometheus' 11000-point limit is refused before asking.
    await expect(metrics.samples(new Date(Date.now() - 86_400_000), new Date(), 0.001)).rejects.toThrow(/more than 11000 points/);
  });
});

describe("PrometheusMetrics answers it cannot use (local fake of the HTTP API)", () => {
  const matrix = (values: [number, string][]) => ({ status: "success", data: { resultType: "matrix", result: values.length ? [{ metric: {}, values }] : [] } });

  it("treats NaN and infinite values as no data", async () => {
    const t = 1_800_000_060;
    const fake: typeof fetch = async (input, init) => {
      const url = String(input);
      if (url.includes("targets/metadata")) return Response.json({ status: "success", data: [{ target: {}, type: "counter" }] });
      const query = new URLSearchParams(String(init?.body)).get("query") ?? "";
      if (query.startsWith("max(count_over_time")) return Response.json(matrix([[t, "10"], [t + 60, "10"]]));
      if (query.startsWith("histogram_quantile")) return Response.json(matrix([[t, "NaN"], [t + 60, "42"]]));
      if (query.includes("honua_request_error_total")) return Response.json(matrix([[t, "0.1"], [t + 60, "+Inf"]]));
      return Response.json(matrix([[t, "10"], [t + 60, "10"]]));
    };
    const metrics = new PrometheusMetrics({ url: "http://prometheus.invalid:9090" }, fake);
    const samples = await metrics.samples(new Date((t - 60) * 1000), new Date((t + 60) * 1000), 1);
    expect(samples).toEqual([]);
    expect(metrics.lastQueries()?.noData.map((n) => n.reason)).toEqual([
      "p95Ms: no value (empty, NaN or infinite)",
      "errorsPerSecond: no value (empty, NaN or infinite)",
    ]);
  });

  it("raises the server's error message", async () => {
    const fake: typeof fetch = async () => Response.json({ status: "error", errorType: "bad_data", error: "parse error" }, { status: 400 });
    const metrics = new PrometheusMetrics({ url: "http://prometheus.invalid:9090" }, fake);
    await expect(metrics.samples(new Date(0), new Date(600_000), 1)).rejects.toThrow(/bad_data: parse error/);
  });

  it("refuses invalid options with every problem named", () => {
    expect(() => new PrometheusMetrics({ url: "not a url", rateWindow: "5 minutes" })).toThrow(/url[\s\S]*rateWindow|rateWindow[\s\S]*url/);
  });
});
