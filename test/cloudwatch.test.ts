import { CloudWatchClient, GetMetricDataCommand, type MetricDataResult } from "@aws-sdk/client-cloudwatch";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { CloudWatchMetrics } from "../src/tools/metrics/cloudwatch.js";

const cw = mockClient(CloudWatchClient);
beforeEach(() => cw.reset());

const T0 = Date.parse("2026-11-26T10:00:00Z");
const ts = (i: number) => new Date(T0 + i * 60_000);
const result = (Id: string, values: number[], first = 0): MetricDataResult => ({
  Id,
  StatusCode: "Complete",
  Timestamps: values.map((_, i) => ts(first + i)),
  Values: values,
});

const options = { region: "eu-west-1", namespace: "Honua", dimensions: { ServiceName: "honua-prod" } };

describe("CloudWatchMetrics (SDK mock)", () => {
  it("sends GetMetricData with p95, counts and their SampleCounts, follows NextToken, computes the readings (SDK mock)", async () => {
    // q0 latency p95, q1 requests, q2/q3 errors (in-band, 5xx), q4/q5 cache hits and misses, q6 origin.
    cw.on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [
          result("q0_value", [120, 130]), result("q0_count", [6000, 6000]),
          result("q1_value", [6000, 6000]), result("q1_count", [6000, 6000]),
          result("q2_value", [30]), result("q2_count", [3]),
        ],
        NextToken: "page-2",
      })
      .resolvesOnce({
        MetricDataResults: [
          result("q2_value", [60], 1), result("q2_count", [3], 1),
          result("q3_value", [30, 0]), result("q3_count", [3, 3]),
          result("q4_value", [300, 900]), result("q4_count", [3, 3]),
          result("q5_value", [300, 300]), result("q5_count", [3, 3]),
          result("q6_value", [1200, 600]), result("q6_count", [1200, 600]),
        ],
      });
    const metrics = new CloudWatchMetrics(options, new CloudWatchClient({ region: "eu-west-1" }));
    const samples = await metrics.samples(ts(0), ts(2), 1);

    const calls = cw.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(2);
    const first = calls[0]!.args[0].input;
    expect(first.StartTime).toEqual(ts(0));
    expect(first.EndTime).toEqual(ts(2));
    expect(first.NextToken).toBeUndefined();
    expect(calls[1]!.args[0].input.NextToken).toBe("page-2");
    const dims = (extra: Record<string, string> = {}) =>
      Object.entries({ ServiceName: "honua-prod", ...extra }).map(([Name, Value]) => ({ Name, Value }));
    const q = (Id: string, MetricName: string, Stat: string, extra?: Record<string, string>) => ({
      Id, ReturnData: true, MetricStat: { Metric: { Namespace: "Honua", MetricName, Dimensions: dims(extra) }, Period: 60, Stat },
    });
    expect(first.MetricDataQueries).toEqual([
      q("q0_value", "honua_serving_request_duration_ms", "p95"),
      q("q0_count", "honua_serving_request_duration_ms", "SampleCount"),
      q("q1_value", "honua_serving_request_duration_ms", "SampleCount"),
      q("q1_count", "honua_serving_request_duration_ms", "SampleCount"),
      q("q2_value", "honua_request_error_total", "Sum", { in_band: "true" }),
      q("q2_count", "honua_request_error_total", "SampleCount", { in_band: "true" }),
      q("q3_value", "honua_serving_request_duration_ms", "SampleCount", { status_class: "5xx" }),
      q("q3_count", "honua_serving_request_duration_ms", "SampleCount", { status_class: "5xx" }),
      q("q4_value", "honua_cache_hits_total", "Sum"),
      q("q4_count", "honua_cache_hits_total", "SampleCount"),
      q("q5_value", "honua_cache_misses_total", "Sum"),
      q("q5_count", "honua_cache_misses_total", "SampleCount"),
      q("q6_value", "honua_database_query_duration_ms", "SampleCount"),
      q("q6_count", "honua_database_query_duration_ms", "SampleCount"),
    ]);
    expect(first.ScanBy).toBe("TimestampAscending");

    expect(samples).toEqual([
      { at: ts(1).toISOString(), p95Ms: 120, errorRate: 60 / 6000, hitRatio: 0.5, requestsPerSecond: 100, originRequestsPerSecond: 20 },
      { at: ts(2).toISOString(), p95Ms: 130, errorRate: 60 / 6000, hitRatio: 0.75, requestsPerSecond: 100, originRequestsPerSecond: 10 },
    ]);
    const log = metrics.lastQueries();
    expect(log?.queries.map((r) => r.reading)).toEqual(["latency", "requests", "errors0", "errors1", "cacheHits", "cacheMisses", "originRequests"]);
    expect(JSON.stringify(log)).not.toContain("honua_cache_hit_ratio");
    expect(log?.queries[0]?.points[0]).toEqual({ at: ts(1).toISOString(), value: 120, raw: "120", samples: 6000 });
  });

  it("is no data for a metric that does not exist: empty results give no samples (SDK mock)", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: ["q0", "q1", "q2", "q3", "q4", "q5", "q6"].flatMap((q) => [result(`${q}_value`, []), result(`${q}_count`, [])]),
    });
    const metrics = new CloudWatchMetrics({ ...options, metrics: { latency: { metricName: "does_not_exist", stat: "p95" } } });
    expect(await metrics.samples(ts(0), ts(10), 1)).toEqual([]);
    expect(metrics.lastQueries()?.noData[0]?.reason).toMatch(/no datapoints for any reading/);
    // Not Honua's metric: nothing to say about Honua's /metrics.
    expect(metrics.lastQueries()?.noData[0]?.reason).not.toContain("HONUA_OBSERVABILITY");
  });

  it("says how to turn Honua's /metrics on when none of Honua's metrics has a datapoint (SDK mock)", async () => {
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    const metrics = new CloudWatchMetrics(options);
    expect(await metrics.samples(ts(0), ts(10), 1)).toEqual([]);
    const reason = metrics.lastQueries()?.noData[0]?.reason ?? "";
    expect(reason).toContain("No Honua metrics from cloudwatch eu-west-1 Honua {ServiceName=honua-prod}");
    expect(reason).toContain("HONUA_OBSERVABILITY=true");
  });

  it("reads the hit ratio from the hit and miss counters: a missing counter is 0 beside the other, no lookups is no cache data (SDK mock)", async () => {
    // Four periods: hits without a miss datapoint, misses without a hit datapoint, 0 and 0, neither published.
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        result("q0_value", [100, 100, 100, 100]), result("q0_count", [60, 60, 60, 60]),
        result("q1_value", [60, 60, 60, 60]), result("q1_count", [60, 60, 60, 60]),
        result("q2_value", [0, 0, 0, 0]), result("q2_count", [1, 1, 1, 1]),
        result("q3_value", [0, 0, 0, 0]), result("q3_count", [60, 60, 60, 60]),
        result("q4_value", [40]), result("q4_count", [2]), result("q4_value", [0], 2), result("q4_count", [2], 2),
        result("q5_value", [25, 0], 1), result("q5_count", [2, 2], 1),
        result("q6_value", [60, 60, 60, 60]), result("q6_count", [60, 60, 60, 60]),
      ],
    });
    const metrics = new CloudWatchMetrics(options);
    expect((await metrics.samples(ts(0), ts(4), 1)).map((s) => s.hitRatio)).toEqual([1, 0, null, null]);
    // A published ratio can still be read instead, and `cache: null` means no cache metrics at all.
    const gauge = new CloudWatchMetrics({ ...options, metrics: { hitRatio: { metricName: "my_ratio", stat: "Average" } } });
    await gauge.samples(ts(0), ts(3), 1);
    expect(gauge.lastQueries()?.queries.map((r) => r.reading)).toEqual(["latency", "requests", "errors0", "errors1", "hitRatio", "originRequests"]);
    const none = new CloudWatchMetrics({ ...options, metrics: { cache: null } });
    await none.samples(ts(0), ts(3), 1);
    expect(none.lastQueries()?.queries.map((r) => r.reading)).toEqual(["latency", "requests", "errors0", "errors1", "originRequests"]);
  });

  it("drops a period whose error datapoint is missing unless absentErrorsAreZero (SDK mock)", async () => {
    const page = {
      MetricDataResults: [
        result("q0_value", [0.2]), result("q0_count", [100]),
        result("q1_value", [600]), result("q1_count", [1]),
        result("q2_value", []), result("q2_count", []),
        result("q3_value", [600]), result("q3_count", [1]),
      ],
    };
    cw.on(GetMetricDataCommand).resolves(page);
    // An ALB: TargetResponseTime in seconds, HTTPCode_Target_5XX_Count only published when non-zero.
    const alb = {
      region: "eu-west-1",
      namespace: "AWS/ApplicationELB",
      dimensions: { LoadBalancer: "app/honua/123" },
      metrics: {
        latency: { metricName: "TargetResponseTime", stat: "p95", scale: 1000 },
        requests: { metricName: "RequestCount", stat: "Sum" },
        errors: [{ metricName: "HTTPCode_Target_5XX_Count", stat: "Sum" }],
        cache: null,
        originRequests: { metricName: "RequestCount", stat: "Sum", dimensions: { TargetGroup: "targetgroup/honua/456" } },
      },
    };
    const strict = new CloudWatchMetrics(alb);
    expect(await strict.samples(ts(0), ts(1), 1)).toEqual([]);
    expect(strict.lastQueries()?.noData[0]?.reason).toContain("errors0 (HTTPCode_Target_5XX_Count): no datapoint");

    const lenient = new CloudWatchMetrics({ ...alb, absentErrorsAreZero: true });
    expect(await lenient.samples(ts(0), ts(1), 1)).toEqual([
      { at: ts(1).toISOString(), p95Ms: 200, errorRate: 0, hitRatio: null, requestsPerSecond: 10, originRequestsPerSecond: 10 },
    ]);
  });

  it("reports Forbidden instead of reading it as no data (SDK mock)", async () => {
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: "q0_value", StatusCode: "Forbidden", Messages: [{ Code: "AccessDenied", Value: "not authorized" }] }] });
    const metrics = new CloudWatchMetrics(options);
    await expect(metrics.samples(ts(0), ts(5), 1)).rejects.toThrow(/Forbidden: not authorized/);
  });

  it("refuses a count statistic for latency (no call is made)", () => {
    expect(() => new CloudWatchMetrics({ ...options, metrics: { latency: { metricName: "x", stat: "Sum" } } })).toThrow(/latency needs a value statistic/);
  });
});
