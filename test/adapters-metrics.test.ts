import { CloudWatchClient, GetMetricDataCommand, type MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { judge, summarize } from "../src/tools/metrics/observe.js";
import { CloudWatchMetrics } from "../src/tools/metrics/cloudwatch.js";
import { ProbeMetrics, ProbeMetricsOptions } from "../src/tools/metrics/probe.js";
import { PrometheusMetrics } from "../src/tools/metrics/prometheus.js";
import { freePort } from "./helpers.js";

const MON = { minSamples: 1, errorRateThreshold: 0.02, latencyFactor: 1.5, latencyMinDeltaMs: 20 };
const BASE = summarize([{ at: "x", p95Ms: 50, errorRate: 0, hitRatio: null, requestsPerSecond: 10, originRequestsPerSecond: 10 }], new Date(), 10, null);

describe("no data is never healthy, whatever the metrics source", () => {
  it("a window without one sample says how to turn Honua's /metrics on, naming the source; a thin one does not", () => {
    const empty = judge(summarize([], new Date(), 10, null), BASE, { ...MON, minSamples: 3 }, "prod");
    expect(empty.verdict).toBe("inconclusive");
    expect(empty.reason).toMatch(/^0 samples in 10 min \(need 3\): no data is not healthy\. No Honua metrics from prod\. Honua's \/metrics is off unless HONUA_OBSERVABILITY=true/);
    expect(empty.reason).toContain('config.env.HONUA_OBSERVABILITY="true"');
    expect(judge(summarize([], new Date(), 10, null), BASE, MON).reason).toContain("No Honua metrics from the deployment.");
    const thin = judge(summarize([{ at: "x", p95Ms: 50, errorRate: 0, hitRatio: null, requestsPerSecond: 10, originRequestsPerSecond: 10 }], new Date(), 10, null), BASE, { ...MON, minSamples: 3 }, "prod");
    expect(thin).toEqual({ verdict: "inconclusive", reason: "1 samples in 10 min (need 3): no data is not healthy." });
  });

  it("Prometheus that does not answer in time is an error, not an empty (healthy-looking) window (local fake)", async () => {
    const hang: typeof fetch = (_input, init) => new Promise((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    const m = new PrometheusMetrics({ url: "http://user:hunter2@prometheus.invalid:9090", timeoutMs: 50 }, hang);
    const err = (await m.samples(new Date(0), new Date(600_000), 1).catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ code: "unavailable" });
    expect(err.message).not.toContain("hunter2");
    expect(m.lastQueries()?.source).not.toContain("hunter2");
  });

  it("Prometheus answering something other than a matrix is an error (local fake)", async () => {
    const vector: typeof fetch = async () => Response.json({ status: "success", data: { resultType: "vector", result: [] } });
    await expect(new PrometheusMetrics({ url: "http://prometheus.invalid:9090" }, vector).samples(new Date(0), new Date(600_000), 1)).rejects.toMatchObject({ code: "unavailable" });
  });

  it("CloudWatch NaN values and too few data points are no data, and judge inconclusive (SDK mock)", async () => {
    const cw = mockClient(CloudWatchClient);
    try {
      const T0 = Date.parse("2026-11-26T10:00:00Z");
      const r = (Id: string, Values: number[]): MetricDataResult => ({ Id, StatusCode: "Complete", Timestamps: Values.map((_, i) => new Date(T0 + i * 60_000)), Values });
      cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [
        r("q0_value", [NaN, 40]), r("q0_count", [10, 1]), // latency: NaN, then one data point (minSamples 3)
        r("q1_value", [600, 600]), r("q1_count", [600, 600]),
        r("q2_value", [0, 0]), r("q2_count", [5, 5]),
        r("q3_value", [0, 0]), r("q3_count", [5, 5]),
        r("q4_value", [50, 50]), r("q4_count", [5, 5]), // cache hits
        r("q5_value", [50, 50]), r("q5_count", [5, 5]), // cache misses
        r("q6_value", [100, 100]), r("q6_count", [100, 100]),
      ] });
      const m = new CloudWatchMetrics({ region: "eu-west-1", namespace: "Honua", minSamples: 3 }, new CloudWatchClient({ region: "eu-west-1" }));
      const samples = await m.samples(new Date(T0), new Date(T0 + 120_000), 1);
      expect(samples).toEqual([]);
      expect(m.lastQueries()?.noData.map((n) => n.reason)).toEqual(["latency: no datapoint", "latency: 1 data points (need 3)"]);
      expect(judge(summarize(samples, new Date(), 2, null), BASE, MON).verdict).toBe("inconclusive");
    } finally {
      cw.restore();
    }
  });

  it("probes of a target that is down are no data, and judge inconclusive", async () => {
    const port = await freePort();
    const probe = new ProbeMetrics(ProbeMetricsOptions.parse({ source: "probe", urls: [`http://127.0.0.1:${port}/tiles/a/1/0/0.mvt`], concurrency: 2, pauseMs: 0, minRequestsPerSample: 1, lookbackSeconds: 0.3, lookbackSamples: 2 }));
    const now = new Date();
    const samples = await probe.samples(new Date(now.getTime() - 60_000), now, 0.5);
    expect(samples).toEqual([]);
    expect(judge(summarize(samples, new Date(), 1, null), BASE, MON).verdict).toBe("inconclusive");
  });
});

describe("one latency rule: over baseline x factor and by more than the minimum delta", () => {
  const one = (p95Ms: number) => summarize([{ at: "x", p95Ms, errorRate: 0, hitRatio: null, requestsPerSecond: 10, originRequestsPerSecond: 10 }], new Date(), 10, null);
  it("a millisecond baseline that jitters past the factor is healthy; a real regression is degraded and says both halves", () => {
    const m = { ...MON, latencyFactor: 4 };
    expect(judge(one(8.3), one(1), m).verdict).toBe("healthy");
    expect(judge(one(21.5), one(1), m).verdict).toBe("degraded");
    expect(judge(one(21.5), one(1), m).reason).toBe("p95 21.5 ms > baseline 1 ms x 4 (and > +20 ms)");
    expect(judge(one(80), one(50), MON).verdict).toBe("degraded");
    expect(judge(one(74), one(50), MON).verdict).toBe("healthy");
    expect(judge(one(21.5), one(1), { ...m, latencyMinDeltaMs: 0 }).verdict).toBe("degraded");
  });
});
