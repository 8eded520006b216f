import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { MemoryJournal, undoOf } from "../src/core/journal.js";
import { AgentError } from "../src/core/errors.js";
import type { StepContext } from "../src/graph/step.js";
import { writeFiles } from "../src/graph/workflows/modify-observability/apply.js";
import { designChanges, type Found } from "../src/graph/workflows/modify-observability/design.js";
import { unitTests } from "../src/graph/workflows/modify-observability/unit-tests.js";
import { writeAtomic } from "../src/tools/observability/files.js";
import { GrafanaClient } from "../src/tools/observability/grafana.js";
import { RealObservability } from "../src/tools/observability/real.js";
import { integrationsOf, routeReceivers } from "../src/tools/observability/routes.js";
import { SEED_ALERTMANAGER, SEED_RETENTION, SEED_RULES } from "../src/tools/observability/sandbox.js";
import { ObservabilitySection } from "../src/tools/observability/section.js";
import { ObservabilityTools, toolMissing, DEFAULT_TOOLS } from "../src/tools/observability/tools.js";
import { startGrafanaFake } from "./fixtures/observability-stack.js";

let dir = "";
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-obs-unit-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const found = (over: Partial<Found> = {}): Found => ({
  files: [
    { target: "rules:honua.rules.yml", path: "/etc/prometheus/rules/honua.rules.yml", content: SEED_RULES },
    { target: "alertmanager", path: "/etc/alertmanager/alertmanager.yml", content: SEED_ALERTMANAGER },
    { target: "retention", path: "/srv/prometheus/compose.yml", content: SEED_RETENTION },
  ],
  dashboards: [],
  agentRulesPath: "/etc/prometheus/rules/honua-agent.rules.yml",
  manifests: false,
  ...over,
});

describe("rule files are written atomically with the previous version kept", () => {
  it("keeps what was there, writes nothing for the same content, deletes on null, leaves no temp file", async () => {
    const path = join(dir, "a.yml");
    expect(await writeAtomic(path, "one\n")).toEqual({ changed: true, kept: null });
    const second = await writeAtomic(path, "two\n");
    expect(second.changed).toBe(true);
    expect(readFileSync(second.kept!, "utf8")).toBe("one\n");
    expect(await writeAtomic(path, "two\n")).toEqual({ changed: false, kept: null });
    await writeAtomic(path, null);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect(readdirSync(join(dir, ".honua-agent-history")).length).toBe(2);
  });

  it("a replay of the apply writes nothing twice; a file changed since the design is refused and not journalled", async () => {
    const section = ObservabilitySection.parse({ prometheus: { url: "http://127.0.0.1:1", rulesDir: dir } });
    const obs = new RealObservability(section, "t", {});
    writeFileSync(join(dir, "honua.rules.yml"), SEED_RULES);
    const design = designChanges([{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }], { ...found(), files: await obs.files(), agentRulesPath: join(dir, "honua-agent.rules.yml") });
    const journal = new MemoryJournal("run", "ApplyPrometheusChanges");
    const ctx = { journal, idempotencyKey: (s?: string) => `run:x:0${s ? `:${s}` : ""}` } as unknown as StepContext;
    expect(await writeFiles(ctx, obs, design.files)).toEqual([join(dir, "honua.rules.yml")]);
    expect(await writeFiles(ctx, obs, design.files)).toEqual([]);
    expect(readdirSync(join(dir, ".honua-agent-history"))).toHaveLength(1);
    const undo = undoOf(await journal.entries());
    expect(undo.steps).toHaveLength(1);

    writeFileSync(join(dir, "honua.rules.yml"), `${SEED_RULES}# edited by hand\n`);
    const other = new MemoryJournal("run2", "ApplyPrometheusChanges");
    await expect(writeFiles({ ...ctx, journal: other } as StepContext, obs, design.files)).rejects.toThrow(/changed since the change was designed and approved; nothing of it was overwritten/);
    expect(await other.entries()).toEqual([]);
    expect(readFileSync(join(dir, "honua.rules.yml"), "utf8")).toMatch(/# edited by hand/);
  });
});

describe("design: bad input is refused with a clear message", () => {
  const cases: [string, Parameters<typeof designChanges>[0], RegExp][] = [
    ["unknown measure", [{ kind: "alert-rule", action: "add", spec: { metric: "vibes" } }], /which measure should the alert watch\?.*vibes is not one of them/],
    ["bad severity", [{ kind: "alert-rule", action: "add", spec: { metric: "error_rate", severity: "apocalyptic" } }], /severity apocalyptic is not one of critical, warning, info/],
    ["bad duration", [{ kind: "alert-rule", action: "add", spec: { metric: "error_rate", for: "five minutes" } }], /for: five minutes is not a Prometheus duration/],
    ["not PromQL", [{ kind: "alert-rule", action: "add", name: "X", spec: { expr: "sum(rate(honua_cache_hits_total[5m]) >" } }], /not PromQL/],
    ["missing rule", [{ kind: "alert-rule", action: "remove", name: "NoSuchAlert" }], /no rule named NoSuchAlert in the rule files \(honua\.rules\.yml\): nothing to remove/],
    ["existing name", [{ kind: "alert-rule", action: "add", name: "DiskAlmostFull", spec: { metric: "error_rate" } }], /an alert named DiskAlmostFull already exists/],
    ["unknown receiver", [{ kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#nowhere" } }], /no receiver in the Alertmanager config delivers to #nowhere \(receivers: honua-alerts, honua-oncall, honua-db\)/],
    ["route without matchers", [{ kind: "alert-route", action: "add", spec: { receiver: "#honua-oncall" } }], /which alerts should go there\?/],
    ["bad retention", [{ kind: "retention", action: "modify", spec: { retention: "forever" } }], /retention forever is not a duration/],
    ["unknown panel", [{ kind: "dashboard", action: "add", name: "New", spec: { panels: ["mood"] } }], /no known series for a "mood" panel/],
  ];
  for (const [what, changes, message] of cases) {
    it(what, () => {
      expect(() => designChanges(changes, found())).toThrow(message);
      try {
        designChanges(changes, found());
      } catch (e) {
        expect(e).toBeInstanceOf(AgentError);
      }
    });
  }

  it("a dashboard change on a deployment without Grafana names the section it needs", () => {
    expect(() => designChanges([{ kind: "dashboard", action: "modify", spec: { panels: ["error rate"] } }], found({ grafana: false }))).toThrow(/no Grafana configured \(observability\.grafana/);
  });

  it("retention is changed where the compose file holds it and flagged as needing a restart", () => {
    const d = designChanges([{ kind: "retention", action: "modify", spec: { retention: "30d" } }], found());
    expect(d.files).toHaveLength(1);
    expect(d.files[0]!.after).toBe(SEED_RETENTION.replace("--storage.tsdb.retention.time=15d", "--storage.tsdb.retention.time=30d"));
    expect(d.restart[0]).toMatch(/only at start: restart it/);
    const size = designChanges([{ kind: "retention", action: "modify", spec: { size: "50GB" } }], found());
    expect(size.files[0]!.after).toMatch(/- --storage\.tsdb\.retention\.time=15d\n\s+- --storage\.tsdb\.retention\.size=50GB|--config\.file=\/etc\/prometheus\/prometheus\.yml\n\s+- --storage\.tsdb\.retention\.size=50GB/);
  });

  it("with a manifests folder, each changed rule file also gets a PrometheusRule manifest holding the same groups", () => {
    const d = designChanges([{ kind: "alert-rule", action: "add", spec: { metric: "error_rate", severity: "critical" } }], found({ manifests: true }));
    expect(d.files.map((f) => f.target)).toEqual(["rules:honua-agent.rules.yml", "manifest:honua-agent.rules.yml"]);
    const m = parseYaml(d.files[1]!.after!) as { apiVersion: string; kind: string; metadata: { name: string }; spec: { groups: { name: string; rules: { alert: string }[] }[] } };
    expect(m).toMatchObject({ apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: "honua-agent-rules" } });
    expect(m.spec.groups).toEqual((parseYaml(d.files[0]!.after!) as { groups: unknown }).groups);
    expect(m.spec.groups[0]!.rules[0]!.alert).toBe("HonuaErrorRateHigh");
  });

  it("removing a rule edits only its lines: comments and the other rule stay byte for byte", () => {
    const d = designChanges([{ kind: "alert-rule", action: "remove", name: "DiskAlmostFull" }], found());
    expect(d.removal).toBe(true);
    const after = d.files[0]!.after!;
    expect(after.startsWith("# Honua alerts (managed in git")).toBe(true);
    expect(after).toBe(SEED_RULES.slice(0, SEED_RULES.indexOf("      - alert: DiskAlmostFull")));
  });
});

describe("the route tree walk the sandbox uses agrees with amtool", () => {
  it("names the integrations a receiver notifies through (Alertmanager 0.25 counts notifications per integration)", () => {
    expect(integrationsOf(SEED_ALERTMANAGER, ["honua-oncall"])).toEqual(["slack"]);
    expect(integrationsOf("receivers:\n  - name: a\n    webhook_configs: [{url: 'http://x'}]\n    email_configs: [{to: a@b}]\n  - name: b\n    pagerduty_configs: [{}]\n", ["a"])).toEqual(["email", "webhook"]);
  });

  const noAmtool = toolMissing(DEFAULT_TOOLS.amtool, "prometheus-alertmanager");
  it.skipIf(noAmtool !== null)("for every label set tried", async () => {
    const routed = designChanges([{ kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#honua-oncall" } }], found()).files[0]!.after!;
    const tools = new ObservabilityTools();
    for (const config of [SEED_ALERTMANAGER, routed]) {
      const sets: Record<string, string>[] = [{ severity: "critical" }, { severity: "warning" }, { team: "database" }, { team: "database", severity: "critical" }, {}];
      for (const labels of sets) {
        const am = await tools.routeReceivers(config, labels);
        expect(routeReceivers(config, labels), JSON.stringify(labels)).toEqual(am.receivers);
      }
    }
    expect(routeReceivers(routed, { severity: "critical" })).toEqual(["honua-oncall"]);
  });
});

describe("generated promtool unit tests (real promtool)", () => {
  const noPromtool = toolMissing(DEFAULT_TOOLS.promtool, "prometheus");
  it.skipIf(noPromtool !== null)("fire on the bad series and stay quiet on the good one for every measure; a rule that does not do what the test says fails them", async () => {
    const d = designChanges([
      { kind: "alert-rule", action: "add", spec: { metric: "error_rate", threshold: 0.05, severity: "critical" } },
      { kind: "alert-rule", action: "add", spec: { metric: "p95 latency", threshold: 400 } },
      { kind: "alert-rule", action: "add", spec: { metric: "cache hit ratio", threshold: 0.8 } },
      { kind: "alert-rule", action: "add", spec: { metric: "database pool", threshold: 0.9 } },
      { kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } },
    ], found());
    const files = Object.fromEntries(d.files.filter((f) => f.target.startsWith("rules:")).map((f) => [f.target.slice(6), f.after!]));
    const t = unitTests(Object.keys(files), d.rules.map((r) => ({ name: r.name, expr: r.expr!, for: r.for, labels: r.labels, annotations: r.annotations })));
    expect(t.tested.sort()).toEqual(["HonuaCacheHitRatioLow", "HonuaDbPoolSaturated", "HonuaErrorRateHigh", "HonuaLatencyHigh", "TileLatencyHigh"]);
    const tools = new ObservabilityTools();
    expect(await tools.checkRules(files)).toMatchObject({ ok: true });
    const ok = await tools.testRules(files, t.yaml!);
    expect(ok.output).toMatch(/SUCCESS/);
    expect(ok.ok).toBe(true);
    // The same tests against rules that alert the other way round: promtool fails them.
    const flipped = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.replace(/\) > 0\.05/, ") < 0.05").replace(/> 800/, "< 800")]));
    const bad = await tools.testRules(flipped, t.yaml!);
    expect(bad.ok).toBe(false);
    expect(bad.output).toMatch(/HonuaErrorRateHigh fires on a bad series[\s\S]*TileLatencyHigh/);
  });

  it.skipIf(noPromtool !== null || toolMissing(DEFAULT_TOOLS.amtool, "prometheus-alertmanager") !== null)("promtool and amtool refuse broken files, saying why", async () => {
    const tools = new ObservabilityTools();
    const rules = await tools.checkRules({ "bad.yml": "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(honua_cache_hits_total) > 1\n" });
    expect(rules.ok).toBe(false);
    expect(rules.output).toMatch(/range vector/);
    const am = await tools.checkAlertmanager("route:\n  receiver: nobody\nreceivers:\n  - name: somebody\n");
    expect(am.ok).toBe(false);
    expect(am.output).toMatch(/undefined receiver "nobody"/);
  });

  it("says which rules cannot get synthetic series, and why", () => {
    const t = unitTests(["a.yml"], [{ name: "Odd", expr: 'sum by (job) (rate(honua_cache_hits_total{cache_name=~"t.*"}[5m])) > 1', for: null, labels: {}, annotations: {} }, { name: "Tmpl", expr: "max(honua_db_pool_utilization_ratio) > 0.9", for: null, labels: {}, annotations: { summary: "{{ $value }}" } }]);
    expect(t.yaml).toBeNull();
    expect(t.untested).toEqual([
      { rule: "Odd", why: "a selector uses !=, =~ or !~ matchers" },
      { rule: "Tmpl", why: "its annotations are templates, whose rendered text a unit test would have to guess" },
    ]);
  });
});

describe("Grafana HTTP API client (against a local fake of Grafana's API; no Grafana server is available here)", () => {
  const TOKEN = "glsa_unit";
  const seed = { uid: "ov", title: "Overview", version: 2, panels: [{ id: 1, title: "p95" }] };

  it("saves once per key (a replay finds its version), refuses a dashboard saved in between, restores and re-creates", async () => {
    const g = await startGrafanaFake(TOKEN, [seed]);
    try {
      const c = new GrafanaClient(g.url, TOKEN, null);
      const cur = (await c.get("ov"))!;
      expect(cur.version).toBe(2);
      const model = { ...cur.model, panels: [...cur.model.panels, { id: 2, title: "hits" }] };
      expect(await c.save(model, "run-1:UpdateGrafanaDashboards:0:grafana:ov")).toEqual(expect.objectContaining({ uid: "ov", version: 3 }));
      expect(await c.save(model, "run-1:UpdateGrafanaDashboards:0:grafana:ov")).toEqual({ uid: "ov", version: 3 });
      expect(g.versions.get("ov")!.length).toBe(3);
      // Designed against version 2; Grafana now holds 3: refused, not overwritten.
      await expect(c.save({ ...cur.model, title: "Renamed" }, "run-2:k")).rejects.toThrow(/changed in Grafana since it was read/);
      await c.restore("ov", { version: 2 }, "run-1:rollback");
      expect((await c.get("ov"))!.model.panels.map((p) => p.title)).toEqual(["p95"]);
      const again = g.versions.get("ov")!.length;
      await c.restore("ov", { version: 2 }, "run-1:rollback");
      expect(g.versions.get("ov")!.length).toBe(again);
      await c.restore("ov", { absent: true }, "x");
      expect(await c.get("ov")).toBeNull();
      await c.restore("ov", { recreate: { ...seed } }, "run-1:recreate");
      expect((await c.get("ov"))!.model.title).toBe("Overview");
      expect(g.requests.every((r) => r.path.startsWith("/api/"))).toBe(true);
    } finally {
      await g.close();
    }
  });

  it("a wrong token is an error naming Grafana's answer", async () => {
    const g = await startGrafanaFake(TOKEN, [seed]);
    try {
      await expect(new GrafanaClient(g.url, "wrong", null).list()).rejects.toThrow(/Grafana answered 401/);
    } finally {
      await g.close();
    }
  });
});

describe("the observability section", () => {
  it("refuses a literal token and an unknown key, with the path named", () => {
    expect(() => ObservabilitySection.parse({ prometheus: { url: "http://p:9090", rulesDir: "/r" }, grafana: { url: "http://g", token: "glsa_literal" } })).toThrow(/by reference only: env:VARIABLE/);
    expect(() => ObservabilitySection.parse({ prometheus: { url: "http://p:9090", rulesDir: "/r", rulez: 1 } })).toThrow(/rulez/);
  });
  it("a token reference whose variable is unset is named when Grafana is first called", async () => {
    const s = ObservabilitySection.parse({ prometheus: { url: "http://p:9090", rulesDir: "/r" }, grafana: { url: "http://g", token: "env:NO_SUCH_GRAFANA_TOKEN" } });
    const obs = new RealObservability(s, "prod", {});
    await expect(obs.dashboards()).rejects.toThrow(/names env:NO_SUCH_GRAFANA_TOKEN, which is not set/);
  });
});
