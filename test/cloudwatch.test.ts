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
    // q0 latency p95, q1 requests, q2/q3 errors (in-band, 5xx), q4 hit ratio, q5 origin.
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
          result("q4_value", [0.5, 0.75]), result("q4_count", [3, 3]),
          result("q5_value", [1200, 600]), result("q5_count", [1200, 600]),
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
      q("q4_value", "honua_cache_hit_ratio", "Average"),
      q("q4_count", "honua_cache_hit_ratio", "SampleCount"),
      q("q5_value", "honua_database_query_duration_ms", "SampleCount"),
      q("q5_count", "honua_database_query_duration_ms", "SampleCount"),
    ]);
    expect(first.ScanBy).toBe("TimestampAscending");

    expect(samples).toEqual([
      { at: ts(1).toISOString(), p95Ms: 120, errorRate: 60 / 6000, hitRatio: 0.5, requestsPerSecond: 100, originRequestsPerSecond: 20 },
      { at: ts(2).toISOString(), p95Ms: 130, errorRate: 60 / 6000, hitRatio: 0.75, requestsPerSecond: 100, originRequestsPerSecond: 10 },
    ]);
    const log = metrics.lastQueries();
    expect(log?.queries.map((r) => r.reading)).toEqual(["latency", "requests", "errors0", "errors1", "hitRatio", "originRequests"]);
    expect(log?.queries[0]?.points[0]).toEqual({ at: ts(1).toISOString(), value: 120, raw: "120", samples: 6000 });
  });

  it("is no data for a metric that does not exist: empty results give no samples (SDK mock)", async () => {
    cw.on(GetMetricDataCommand).resolves({
      MetricDataResults: ["q0", "q1", "q2", "q3", "q4", "q5"].flatMap((q) => [result(`${q}_value`, []), result(`${q}_count`, [])]),
    });
    const metrics = new CloudWatchMetrics({ ...options, metrics: { latency: { metricName: "does_not_exist", stat: "p95" } } });
    expect(await metrics.samples(ts(0), ts(10), 1)).toEqual([]);
    expect(metrics.lastQueries()?.noData[0]?.reason).toMatch(/no datapoints for any reading/);
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
        hitRatio: null,
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
