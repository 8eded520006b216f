import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judge, summarize } from "../src/tools/metrics/observe.js";
import { ProbeMetrics, ProbeMetricsOptions, bucketize, counterRatio } from "../src/tools/metrics/probe.js";
import { freePort } from "./helpers.js";

let server: Server;
let base: string;
let delayMs = 15;
let status = 200;
/** Honua's /metrics: its cache counters (each /redis tile request is 3 hits and 1 miss), or a status without them. */
let metrics: "counters" | 404 | "empty" = "counters";
const counters = { hits: 0, misses: 0 };
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/metrics") {
      if (metrics === 404) return void res.writeHead(404).end();
      if (metrics === "empty") return void res.writeHead(200).end("");
      return void res.writeHead(200, { "content-type": "text/plain" }).end(
        "# TYPE honua_cache_hits_total counter\n" +
          `honua_cache_hits_total{cache_name="tiles"} ${counters.hits * 2 / 3}\nhonua_cache_hits_total{cache_name="layers"} ${counters.hits / 3}\n` +
          `# TYPE honua_cache_misses_total counter\nhonua_cache_misses_total{cache_name="tiles"} ${counters.misses}\n` +
          "honua_cache_hit_ratio_count 5\n",
      );
    }
    if (req.url?.startsWith("/redis/")) {
      counters.hits += 3;
      counters.misses += 1;
    }
    setTimeout(() => {
      const headers: Record<string, string> = {};
      if (req.url?.includes("cached")) headers["x-cache"] = req.url.includes("hit") ? "HIT" : "MISS";
      res.writeHead(status, headers).end(status === 204 ? undefined : "tile");
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const options = (extra: Partial<ProbeMetricsOptions> = {}) =>
  ProbeMetricsOptions.parse({ source: "probe", urls: [`${base}/ogc/tiles/collections/a/tiles/WebMercatorQuad/3/1/2`], concurrency: 3, pauseMs: 0, minRequestsPerSample: 3, lookbackSeconds: 0.6, lookbackSamples: 3, ...extra });
const monitoring = { minSamples: 3, errorRateThreshold: 0.02, latencyFactor: 1.5, latencyMinDeltaMs: 20 };

describe("HTTP probe metrics (real requests to a local server)", () => {
  it("measures a window while the clock waits it out: p95 above the server's delay, sample counts on every reading", async () => {
    delayMs = 15;
    status = 200;
    const probe = new ProbeMetrics(options());
    const from = probe.clock.now();
    await probe.clock.sleep(900);
    const samples = await probe.samples(from, probe.clock.now(), 0.005); // 300 ms readings
    expect(samples.length).toBeGreaterThanOrEqual(2);
    for (const s of samples) {
      expect(s.requests).toBeGreaterThanOrEqual(3);
      expect(s.p95Ms).toBeGreaterThanOrEqual(15);
      expect(s.errorRate).toBe(0);
      expect(s.hitRatio).toBeNull(); // the server says nothing about a cache
    }
  });

  it("a window in the past that nothing probed is no data, and no data judges inconclusive, never healthy", async () => {
    const probe = new ProbeMetrics(options());
    const to = new Date(Date.now() - 60_000);
    const samples = await probe.samples(new Date(to.getTime() - 600_000), to, 1);
    expect(samples).toEqual([]);
    const window = summarize(samples, to, 10, null);
    const baseline = summarize([{ at: to.toISOString(), p95Ms: 20, errorRate: 0, hitRatio: null, requestsPerSecond: 10, originRequestsPerSecond: 10 }], to, 10, null);
    expect(judge(window, baseline, monitoring).verdict).toBe("inconclusive");
  });

  it("readings with too few requests are dropped: a slow server in short readings is no data", async () => {
    delayMs = 250;
    const probe = new ProbeMetrics(options({ concurrency: 1, minRequestsPerSample: 5 }));
    const from = probe.clock.now();
    await probe.clock.sleep(600);
    expect(await probe.samples(from, probe.clock.now(), 0.005)).toEqual([]);
    delayMs = 15;
  });

  it("a window ending now with nothing recorded is measured now (lookback), in the configured number of readings", async () => {
    delayMs = 10;
    const probe = new ProbeMetrics(options());
    const now = new Date();
    const samples = await probe.samples(new Date(now.getTime() - 3_600_000), now, 1);
    expect(samples.length).toBeGreaterThanOrEqual(2);
    expect(samples.length).toBeLessThanOrEqual(3);
    expect(samples.every((s) => s.requests >= 3)).toBe(true);
  });

  it("5xx answers and timeouts are errors (degraded), while a target nothing answers on is no data", async () => {
    status = 503;
    const probe = new ProbeMetrics(options());
    const from = probe.clock.now();
    await probe.clock.sleep(500);
    const s5 = await probe.samples(from, probe.clock.now(), 0.005);
    expect(s5.length).toBeGreaterThan(0);
    expect(s5.every((s) => s.errorRate === 1)).toBe(true);
    status = 200;
    delayMs = 400;
    const hung = new ProbeMetrics(options({ timeoutMs: 50, minRequestsPerSample: 2 }));
    const t1 = hung.clock.now();
    await hung.clock.sleep(400);
    const sh = await hung.samples(t1, hung.clock.now(), 0.005);
    expect(sh.length).toBeGreaterThan(0);
    expect(sh.every((s) => s.errorRate === 1)).toBe(true);
    delayMs = 15;
    const closed = await freePort(); // nothing listens there
    const dead = new ProbeMetrics(options({ urls: [`http://127.0.0.1:${closed}/tiles/a/1/1/1.mvt`], timeoutMs: 200 }));
    const t0 = dead.clock.now();
    await dead.clock.sleep(400);
    expect(await dead.samples(t0, dead.clock.now(), 0.004)).toEqual([]);
  });

  it("reads the cache header into a hit ratio and origin load", async () => {
    delayMs = 5;
    const probe = new ProbeMetrics(options({ urls: [`${base}/cached/hit`, `${base}/cached/hit`, `${base}/cached/miss`, `${base}/cached/hit`] }));
    const from = probe.clock.now();
    await probe.clock.sleep(500);
    const samples = await probe.samples(from, probe.clock.now(), 1);
    expect(samples).toHaveLength(1);
    expect(samples[0]!.hitRatio).toBeCloseTo(0.75, 1);
    expect(samples[0]!.originRequestsPerSecond).toBeLessThan(samples[0]!.requestsPerSecond);
  });

  it("reads the hit ratio from Honua's /metrics counters when answers carry no cache header", async () => {
    delayMs = 5;
    metrics = "counters";
    const probe = new ProbeMetrics(options({ urls: [`${base}/redis/a/1/0/0.mvt`], metricsUrl: `${base}/metrics`, metricsEveryMs: 50 }));
    const from = probe.clock.now();
    // 450 ms readings; on a loaded host a reading may hold no scrape yet, so wait (bounded) until two readings have one.
    let samples = await probe.samples(from, probe.clock.now(), 0.0075);
    for (let waited = 0; waited < 6000 && !(samples.length >= 2 && samples.every((s) => s.hitRatio !== null)); waited += 450) {
      await probe.clock.sleep(450);
      samples = await probe.samples(from, probe.clock.now(), 0.0075);
    }
    expect(samples.length).toBeGreaterThanOrEqual(2);
    for (const s of samples) expect(s.hitRatio).toBeCloseTo(0.75, 6);
    expect(probe.lastQueries()?.noData.filter((n) => n.reason.startsWith("hit ratio"))).toEqual([]);
  });

  it("says how to turn /metrics on when Honua's /metrics answers 404 or nothing, and reads no hit ratio (not 0)", async () => {
    delayMs = 5;
    for (const answer of [404, "empty"] as const) {
      metrics = answer;
      const probe = new ProbeMetrics(options({ urls: [`${base}/redis/a/1/0/0.mvt`], metricsUrl: `${base}/metrics`, metricsEveryMs: 100 }));
      const from = probe.clock.now();
      await probe.clock.sleep(400);
      const samples = await probe.samples(from, probe.clock.now(), 0.005);
      expect(samples.length, String(answer)).toBeGreaterThan(0);
      expect(samples.every((s) => s.hitRatio === null), String(answer)).toBe(true);
      const reason = probe.lastQueries()?.noData.find((n) => n.reason.startsWith("hit ratio"))?.reason ?? "";
      expect(reason, String(answer)).toContain(answer === 404 ? `${base}/metrics answered HTTP 404` : `${base}/metrics answered nothing`);
      expect(reason, String(answer)).toContain(`No Honua metrics from ${base}. Honua's /metrics is off unless HONUA_OBSERVABILITY=true`);
    }
    metrics = "counters";
  });

  it("says why readings were dropped", async () => {
    const probe = new ProbeMetrics(options());
    const to = new Date(Date.now() - 60_000);
    await probe.samples(new Date(to.getTime() - 600_000), to, 1);
    expect(probe.lastQueries()?.noData).toEqual([{ at: to.toISOString(), reason: "nothing was probed in this window, and probes cannot look back" }]);
    const dropped: { at: string; reason: string }[] = [];
    bucketize([{ at: 1001, ms: 1, ok: true, hit: null, reached: true }], 1000, 1100, 100, 5, () => null, dropped);
    expect(dropped).toEqual([{ at: new Date(1100).toISOString(), reason: "1 requests (need 5)" }]);
  });

  it("counterRatio: deltas between the reads around a reading; a reset or no lookups is no cache data", () => {
    const reads = [{ at: 0, hits: 10, misses: 10 }, { at: 100, hits: 40, misses: 20 }, { at: 200, hits: 40, misses: 20 }, { at: 300, hits: 1, misses: 0 }];
    expect(counterRatio(reads, 0, 100)).toBe(0.75);
    expect(counterRatio(reads, 100, 200)).toBeNull();
    expect(counterRatio(reads, 200, 300)).toBeNull();
    expect(counterRatio(reads, 50, 60)).toBeNull();
    expect(counterRatio([{ at: 0, problem: "404" }, { at: 100, hits: 5, misses: 5 }], 0, 100)).toBeNull();
  });

  it("bucketize: nearest-rank p95 per reading", () => {
    const probes = Array.from({ length: 20 }, (_, i) => ({ at: 1000 + i, ms: i + 1, ok: i !== 0, hit: null, reached: true }));
    const [s] = bucketize(probes, 999, 1020, 100, 5);
    expect(s).toMatchObject({ p95Ms: 19, errorRate: 0.05, requests: 20 });
  });

  it("bucketize: at 10% on the cache a 100% hit ratio there leaves 90% of requests at the origin", () => {
    // 100 requests in one second; the 10 that went through the cache say HIT, the 90 others say nothing.
    const probes = Array.from({ length: 100 }, (_, i) => ({ at: 1001 + i * 9, ms: 5, ok: true, hit: i % 10 === 0 ? true : null, reached: true }));
    const [s] = bucketize(probes, 1000, 2000, 1000, 5);
    expect(s).toMatchObject({ hitRatio: 1, requestsPerSecond: 100, originRequestsPerSecond: 90 });
  });
});
