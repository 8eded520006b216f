import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judge, summarize } from "../src/tools/metrics/observe.js";
import { ProbeMetrics, ProbeMetricsOptions, bucketize } from "../src/tools/metrics/probe.js";
import { freePort } from "./helpers.js";

let server: Server;
let base: string;
let delayMs = 15;
let status = 200;
beforeAll(async () => {
  server = createServer((req, res) => {
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
const monitoring = { minSamples: 3, errorRateThreshold: 0.02, latencyFactor: 1.5 };

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

  it("bucketize: nearest-rank p95 per reading", () => {
    const probes = Array.from({ length: 20 }, (_, i) => ({ at: 1000 + i, ms: i + 1, ok: i !== 0, hit: null, reached: true }));
    const [s] = bucketize(probes, 999, 1020, 100, 5);
    expect(s).toMatchObject({ p95Ms: 19, errorRate: 0.05, requests: 20 });
  });
});
