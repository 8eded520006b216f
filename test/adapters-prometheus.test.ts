import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { judge, summarize } from "../src/tools/metrics/observe.js";
import { PrometheusMetrics } from "../src/tools/metrics/prometheus.js";
import { startHonuaExporter, type HonuaExporter } from "./fixtures/honua-exporter.js";
import { prometheusUnavailable, startPrometheus, waitForScrapes, type PrometheusServer } from "./fixtures/prometheus-server.js";

const unavailable = prometheusUnavailable();
if (unavailable && process.env.HONUA_AGENT_REQUIRE_TOOLS) throw new Error(`required by CI but not usable here: ${unavailable}`);

describe.skipIf(unavailable !== null)(`a Honua target that went down (a real Prometheus)${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  let prom: PrometheusServer;
  let exporter: HonuaExporter;
  beforeAll(async () => {
    exporter = await startHonuaExporter({ requests: 50, latencyMs: 10, dbQueries: 20 });
    prom = await startPrometheus({ "honua-down": `127.0.0.1:${exporter.port}` });
    await waitForScrapes(prom.url, "honua-down", 8);
  });
  afterAll(async () => {
    await prom?.close();
  });

  it("is no data once its scrapes fail, although the rate window still holds samples from before", async () => {
    // A rate window much longer than the outage: rate() and count_over_time() still see the old samples.
    const metrics = new PrometheusMetrics({ url: prom.url, selector: { job: "honua-down" }, rateWindow: "30s", minSamples: 3 });
    const healthy = await metrics.samples(new Date(Date.now() - 4000), new Date(), 1 / 60);
    expect(healthy.length).toBeGreaterThan(0);
    await exporter.close();
    await new Promise((r) => setTimeout(r, 4000)); // a few failed scrapes: the series are marked stale
    const to = new Date();
    const samples = await metrics.samples(new Date(to.getTime() - 2000), to, 1 / 60);
    expect(samples).toEqual([]);
    expect(metrics.lastQueries()?.noData.at(-1)?.reason).toMatch(/no live series/);
    const base = summarize(healthy, new Date(), 1, null);
    expect(judge(summarize(samples, to, 1, null), base, { minSamples: 1, errorRateThreshold: 0.02, latencyFactor: 1.5, latencyMinDeltaMs: 20 }).verdict).toBe("inconclusive");
  });
});
