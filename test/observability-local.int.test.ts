import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import { testEnv } from "./helpers.js";
import { startHonuaExporter, type HonuaExporter } from "./fixtures/honua-exporter.js";
import { waitForScrapes } from "./fixtures/prometheus-server.js";
import { stackUnavailable, startAlertmanager, startGrafanaFake, startPrometheusWithRules, startWebhooks } from "./fixtures/observability-stack.js";

/**
 * modify-observability on a `local` deployment: a real Prometheus (lifecycle API on, scraping a Honua stand-in with
 * Honua's real series) and a real Alertmanager delivering to a local webhook receiver, real promtool and amtool;
 * Grafana through a local fake of its HTTP API (no Grafana server is available here).
 */
const missing = stackUnavailable();
const TOKEN = "glsa_test_token";

const RULES = `# Honua alerts (kept in git)
groups:
  - name: honua
    rules:
      - alert: TileLatencyHigh
        expr: histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket{honua_protocol="ogc-tiles"}[5m]))) > 500
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: Tile p95 latency above 500 ms
`;
const amConfig = (hooks: string) => `# Alertmanager (kept in git)
route:
  receiver: honua-alerts
  group_by: [alertname, honua_agent_test]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: honua-db
      matchers: ['team="database"']
receivers:
  - name: honua-alerts
    webhook_configs:
      - url: ${hooks}/alerts
  - name: honua-oncall
    webhook_configs:
      - url: ${hooks}/oncall
  - name: honua-db
    webhook_configs:
      - url: ${hooks}/db
`;
const OVERVIEW = {
  uid: "honua-overview", title: "Honua Overview", version: 3, schemaVersion: 39,
  panels: [{ id: 1, type: "timeseries", title: "p95 latency", gridPos: { x: 0, y: 0, w: 12, h: 8 }, targets: [{ refId: "A", expr: "histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket[5m])))" }] }],
};

interface World {
  dir: string;
  engine: Engine;
  events: RunEvent[];
  on: { event?: (e: RunEvent) => void };
  exporter: HonuaExporter;
  prom: Awaited<ReturnType<typeof startPrometheusWithRules>>;
  am: Awaited<ReturnType<typeof startAlertmanager>>;
  hooks: Awaited<ReturnType<typeof startWebhooks>>;
  grafana: Awaited<ReturnType<typeof startGrafanaFake>>;
  close(): Promise<void>;
}

async function setUp(o: { lifecycle?: boolean } = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "honua-obs-local-"));
  const hooks = await startWebhooks();
  const exporter = await startHonuaExporter({ requests: 40, latencyMs: 12, cacheHits: 8, cacheMisses: 2, dbQueries: 10 });
  const am = await startAlertmanager(dir, amConfig(hooks.url));
  writeFileSync(join(dir, "placeholder"), "");
  const prom = await startPrometheusWithRules(dir, { targets: { honua: `127.0.0.1:${exporter.port}` }, alertmanager: am.url, lifecycle: o.lifecycle ?? true });
  writeFileSync(join(prom.rulesDir, "honua.rules.yml"), RULES);
  // The seeded rule file loads on start only with the lifecycle API (the no-lifecycle Prometheus starts with it already there).
  if (o.lifecycle !== false) await fetch(`${prom.url}/-/reload`, { method: "POST" });
  const grafana = await startGrafanaFake(TOKEN, [OVERVIEW]);
  await waitForScrapes(prom.url, "honua", 4);
  const raw = {
    deployments: {
      local: {
        provider: "local",
        approvers: ["oncall"],
        monitoring: { windowMinutes: 0.05, stageMinutes: 0.04, sampleEveryMinutes: 0.01, minSamples: 2, latencyFactor: 4 },
        metrics: { source: "prometheus", url: prom.url, selector: { job: "honua" }, rateWindow: "5s", minSamples: 2 },
        observability: {
          prometheus: { url: prom.url, rulesDir: prom.rulesDir },
          alertmanager: { url: am.url, configFile: am.configFile },
          grafana: { url: grafana.url, token: "env:GRAFANA_TOKEN" },
          confirmSeconds: 20,
        },
      },
    },
    groups: { oncall: ["alice", "bob"] },
  };
  const env = testEnv(join(dir, "home"), { GRAFANA_TOKEN: TOKEN });
  const events: RunEvent[] = [];
  const on: World["on"] = {};
  const engine = await Engine.open({ env, cwd: dir, config: parseConfig(raw, "test", env), onEvent: (e) => { events.push(e); on.event?.(e); } });
  return {
    dir, engine, events, on, exporter, prom, am, hooks, grafana,
    async close() {
      await engine.close();
      await prom.close();
      await am.close();
      await exporter.close().catch(() => undefined);
      await hooks.close();
      await grafana.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every file of the deployment's observability, byte for byte (the history folder aside). */
const snapshot = (w: World) => ({
  rules: Object.fromEntries(readdirSync(w.prom.rulesDir).filter((n) => !n.startsWith(".")).map((n) => [n, readFileSync(join(w.prom.rulesDir, n), "utf8")])),
  alertmanager: readFileSync(w.am.configFile, "utf8"),
});
const loadedRules = async (w: World) =>
  ((await (await fetch(`${w.prom.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string }[] }[] } }).data.groups.flatMap((g) => g.rules.map((r) => r.name)).sort();

async function approveGates(engine: Engine, first: RunSummary): Promise<RunSummary> {
  let s = first;
  while (s.pending) {
    if (s.pending.kind === "inconclusive") throw new Error(`inconclusive: ${s.pending.gate.why}`);
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
  }
  return s;
}
const failure = async (w: World, s: RunSummary) => JSON.stringify((await w.engine.transcript(s.run)).steps.filter((x) => x.status !== "done"));

describe.skipIf(missing !== null)(`modify-observability on a local Prometheus and Alertmanager (real binaries; Grafana through a local fake of its HTTP API)${missing ? ` — skipped: ${missing}` : ""}`, () => {
  let w: World | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it("a rule on a series the target Prometheus does not have is refused as no data; nothing is written", async () => {
    w = await setUp();
    const before = snapshot(w);
    const s = await w.engine.start({ workflow: "modify-observability", deployment: "local", params: { changes: [{ kind: "alert-rule", action: "add", name: "RequestsHigh", spec: { expr: "histogram_quantile(0.95, sum by (le) (rate(honua_request_duration_ms_bucket[5m]))) > 500" } }] } }, "carol", "alert on requests");
    expect(s.status, JSON.stringify(s.pending?.gate ?? null).slice(0, 1500) + (await failure(w, s))).toBe("failed");
    expect(await failure(w, s)).toMatch(/refused as no data: honua_request_duration_ms_bucket has no series in Prometheus at http:\/\/127\.0\.0\.1:\d+/);
    expect(snapshot(w)).toEqual(before);
  }, 60_000);

  it("a broken rule file (an annotation template promtool rejects) is caught before the gate; nothing is written", async () => {
    w = await setUp();
    const before = snapshot(w);
    const s = await w.engine.start({ workflow: "modify-observability", deployment: "local", params: { changes: [{ kind: "alert-rule", action: "add", spec: { metric: "error_rate", threshold: 0.05, summary: "errors at {{ $value | nosuchfunction }}" } }] } }, "carol", "errors");
    expect(s.status).toBe("failed");
    expect(s.pending).toBeNull();
    const why = await failure(w, s);
    expect(why).toMatch(/do not pass promtool check rules/);
    expect(why).toMatch(/nosuchfunction/);
    expect(snapshot(w)).toEqual(before);
  }, 60_000);

  it("a reload Prometheus refuses (no lifecycle API) puts the rule file back byte for byte and fails the run", async () => {
    w = await setUp({ lifecycle: false });
    writeFileSync(join(w.prom.rulesDir, "honua.rules.yml"), RULES);
    const before = snapshot(w);
    let s = await w.engine.start({ workflow: "modify-observability", deployment: "local", params: { changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }] } }, "carol", "raise it");
    expect(s.pending).toMatchObject({ step: "ApplyPrometheusChanges", kind: "provision" });
    s = await approveGates(w.engine, s);
    expect(s.status).toBe("failed");
    expect(await failure(w, s)).toMatch(/Prometheus refused the reload \(403[\s\S]*--web\.enable-lifecycle[\s\S]*restored byte for byte/);
    expect(snapshot(w)).toEqual(before);
    // The previous version is kept beside it.
    expect(readdirSync(join(w.prom.rulesDir, ".honua-agent-history")).length).toBeGreaterThan(0);
  }, 60_000);

  it("routes critical alerts to #honua-oncall: amtool proves it, the test alert is delivered to the honua-oncall webhook and to no other receiver", async () => {
    w = await setUp();
    let s = await w.engine.start({ workflow: "modify-observability", deployment: "local", params: { changes: [{ kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#honua-oncall" } }] } }, "carol", "route critical");
    const checks = s.pending!.gate.change.sections!.find((x) => x.kind === "table");
    expect(JSON.stringify(checks)).toMatch(/amtool config routes test/);
    s = await approveGates(w.engine, s);
    expect(s.status, await failure(w, s)).toBe("done");
    const ours = w.hooks.deliveries.filter((d) => d.alerts.some((a) => a.labels.honua_agent_test?.startsWith(s.run)));
    expect(ours.length).toBeGreaterThan(0);
    expect([...new Set(ours.map((d) => d.receiver))]).toEqual(["honua-oncall"]);
    expect([...new Set(ours.map((d) => d.path))]).toEqual(["/oncall"]);
    expect(readFileSync(w.am.configFile, "utf8")).toMatch(/# Alertmanager \(kept in git\)[\s\S]*- receiver: honua-oncall\n\s+matchers:\n\s+- severity="critical"\n\s+- receiver: honua-db/);
    const status = (await (await fetch(`${w.am.url}/api/v2/status`)).json()) as { config: { original: string } };
    expect(status.config.original).toMatch(/severity="critical"/);
  }, 90_000);

  it("adds an alert, a route and a panel, then a scrape target going down in the window rolls everything back: files exactly as found, reloaded, the dashboard back to version 3's content", async () => {
    w = await setUp();
    const before = snapshot(w);
    const world = w;
    world.on.event = (e) => {
      if (e.type === "step-start" && e.step === "MonitorObservabilityHealth") void world.exporter.close();
    };
    let s = await w.engine.start({ workflow: "modify-observability", deployment: "local", params: { changes: [
      { kind: "alert-rule", action: "add", spec: { metric: "error_rate", op: ">", threshold: 0.05, for: "5m", severity: "critical" } },
      { kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#honua-oncall" } },
      { kind: "dashboard", action: "modify", name: "Honua Overview", spec: { panels: ["cache hit rate"] } },
    ] } }, "carol", "errors page on-call, and a panel");
    expect(s.pending, `${s.status}: ${await failure(w, s)}`).not.toBeNull();
    expect(s.pending!.gate.change.sections!.map((x) => x.title)).toEqual(["Prometheus rules", "Alertmanager config", 'Grafana dashboard "Honua Overview" (version 3 kept for rollback)', "Checks run before anything is applied"]);
    s = await approveGates(w.engine, s);
    expect(s.status, await failure(w, s)).toBe("rolled-back");
    expect(snapshot(w)).toEqual(before);
    expect(await loadedRules(w)).toEqual(["TileLatencyHigh"]);
    const status = (await (await fetch(`${w.am.url}/api/v2/status`)).json()) as { config: { original: string } };
    expect(status.config.original).not.toMatch(/severity="critical"/);
    const versions = w.grafana.versions.get("honua-overview")!;
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5]);
    expect(versions[4]!.message).toBe("Restored from version 3");
    expect({ ...versions[4]!.data, version: 3 }).toEqual({ ...versions[2]!.data });
    // Saved against the version it was designed on, with the run's key as the version message.
    const save = w.grafana.requests.find((r) => r.method === "POST" && r.path === "/api/dashboards/db")!.body as { dashboard: { version: number }; message: string };
    expect(save.dashboard.version).toBe(3);
    expect(save.message).toContain(s.run);
    const tr = await w.engine.transcript(s.run);
    expect(JSON.stringify(tr.steps.find((x) => x.name === "MonitorObservabilityHealth"))).toMatch(/target down: honua/);
  }, 120_000);
});
