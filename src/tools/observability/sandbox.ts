import type { Database } from "better-sqlite3";
import { parse } from "yaml";
import { z } from "zod";
import { parser } from "@prometheus-io/lezer-promql";
import { AgentError } from "../../core/errors.js";
import type { TwinContext } from "../twins.js";
import { SANDBOX_TWINS } from "../twins.js";
import { ObservabilityBase } from "./base.js";
import { routeReceivers } from "./routes.js";
import { DEFAULT_TOOLS, ObservabilityTools, toolMissing } from "./tools.js";
import { DashboardModel, FileTarget, type AlertSeen, type DashboardState, type Deliveries, type LoadedRule, type ObsFile, type ReloadResult, type ScrapeTarget, type ToolRun } from "./types.js";

/** The series Honua really exports (HONUA.md) and the node exporter beside it: what the simulated Prometheus holds. */
export const SANDBOX_SERIES: Record<string, number> = {
  honua_serving_request_duration_ms_bucket: 120, honua_serving_request_duration_ms_count: 12, honua_serving_request_duration_ms_sum: 12,
  honua_request_error_total: 18, honua_cache_hits_total: 4, honua_cache_misses_total: 4, honua_cache_evictions_total: 4,
  honua_tile_cache_hits_total: 2, honua_tile_cache_misses_total: 2, honua_database_query_duration_ms_bucket: 40, honua_database_query_duration_ms_count: 4,
  honua_db_pool_utilization_ratio: 1, honua_db_connection_timeouts_total: 1, up: 3, node_filesystem_avail_bytes: 6, node_filesystem_size_bytes: 6,
};

export const SEED_RULES = `# Honua alerts (managed in git; honua-agent edits through reviewed changes)
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
      - alert: DiskAlmostFull
        expr: node_filesystem_avail_bytes{mountpoint="/data"} / node_filesystem_size_bytes{mountpoint="/data"} < 0.1
        for: 15m
        labels:
          severity: critical
        annotations:
          summary: Less than 10% disk left on /data
`;

export const SEED_ALERTMANAGER = `route:
  receiver: honua-alerts
  group_by: [alertname]
  group_wait: 30s
  routes:
    - receiver: honua-db
      matchers: ['team="database"']
receivers:
  - name: honua-alerts
    slack_configs:
      - channel: '#honua-alerts'
        api_url_file: /etc/alertmanager/slack-url
  - name: honua-oncall
    slack_configs:
      - channel: '#honua-oncall'
        api_url_file: /etc/alertmanager/slack-url
  - name: honua-db
    slack_configs:
      - channel: '#honua-db'
        api_url_file: /etc/alertmanager/slack-url
`;

export const SEED_RETENTION = `# prometheus service (compose)
services:
  prometheus:
    image: prom/prometheus:v2.42.0
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --storage.tsdb.retention.time=15d
      - --web.enable-lifecycle
`;

const SEED_DASHBOARD = {
  uid: "honua-overview",
  title: "Honua Overview",
  panels: [
    { id: 1, type: "timeseries", title: "p95 latency", gridPos: { x: 0, y: 0, w: 12, h: 8 }, targets: [{ refId: "A", expr: "histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket[5m])))" }] },
    { id: 2, type: "timeseries", title: "Error rate", gridPos: { x: 12, y: 0, w: 12, h: 8 }, targets: [{ refId: "A", expr: 'sum(rate(honua_request_error_total{in_band="true"}[5m]) or rate(honua_request_error_total{error_code=~"5.."}[5m]))' }] },
  ],
};

const PATHS: Record<string, string> = { alertmanager: "/etc/alertmanager/alertmanager.yml", retention: "/srv/prometheus/compose.yml" };
const pathOf = (t: FileTarget) => (t.startsWith("rules:") ? `/etc/prometheus/rules/${t.slice(6)}` : PATHS[t] ?? t);

function tables(db: Database, dep: string): void {
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS obs_files (deployment TEXT NOT NULL, target TEXT NOT NULL, content TEXT, PRIMARY KEY (deployment, target));
      CREATE TABLE IF NOT EXISTS obs_file_history (deployment TEXT NOT NULL, target TEXT NOT NULL, seq INTEGER NOT NULL, content TEXT, PRIMARY KEY (deployment, target, seq));
      CREATE TABLE IF NOT EXISTS obs_dashboards (deployment TEXT NOT NULL, uid TEXT NOT NULL, version INTEGER NOT NULL, model TEXT, message TEXT, PRIMARY KEY (deployment, uid, version));
      CREATE TABLE IF NOT EXISTS obs_alerts (deployment TEXT NOT NULL, labels TEXT NOT NULL, receivers TEXT NOT NULL, ends_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS obs_state (deployment TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (deployment, key));
    `);
    const seeded = db.prepare(`SELECT 1 FROM obs_state WHERE deployment = ? AND key = 'seeded'`).get(dep);
    if (seeded) return;
    const put = db.prepare(`INSERT INTO obs_files (deployment, target, content) VALUES (?, ?, ?)`);
    put.run(dep, "rules:honua.rules.yml", SEED_RULES);
    put.run(dep, "alertmanager", SEED_ALERTMANAGER);
    put.run(dep, "retention", SEED_RETENTION);
    db.prepare(`INSERT INTO obs_dashboards (deployment, uid, version, model, message) VALUES (?, ?, 3, ?, 'seed')`).run(dep, SEED_DASHBOARD.uid, JSON.stringify({ ...SEED_DASHBOARD, version: 3 }));
    db.prepare(`INSERT INTO obs_state (deployment, key, value) VALUES (?, 'seeded', '1'), (?, 'loaded', ?)`).run(dep, dep, SEED_RULES);
  }).immediate();
}

/** Without promtool: YAML parsed and every expression parsed with the PromQL grammar (said in the output). */
function syntaxOnly(files: Record<string, string>): ToolRun {
  const problems: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    let doc: unknown;
    try {
      doc = parse(content);
    } catch (e) {
      problems.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      continue;
    }
    const groups = z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(z.looseObject({ expr: z.union([z.string(), z.number()]) })) })) }).safeParse(doc);
    if (!groups.success) {
      problems.push(`${name}: not a rule file (${groups.error.issues[0]?.message ?? "bad shape"})`);
      continue;
    }
    for (const g of groups.data.groups) for (const r of g.rules) {
      const expr = String(r.expr);
      let bad = false;
      parser.parse(expr).iterate({ enter: (n) => void (n.type.isError && (bad = true)) });
      if (bad) problems.push(`${name}: group ${g.name}: cannot parse ${expr}`);
    }
  }
  return { command: "YAML and PromQL grammar check (promtool is not installed here)", ok: problems.length === 0, output: problems.join("\n") || "SUCCESS" };
}

/**
 * The sandbox's Prometheus, Alertmanager and Grafana: files and dashboards in the sandbox's database, Honua's real
 * series names, reloads that fail under `provision-failure`, no series under `no-data`. promtool and amtool run for
 * real when installed.
 */
class SandboxObservability extends ObservabilityBase {
  private readonly tools = new ObservabilityTools();
  private readonly hasPromtool = toolMissing(DEFAULT_TOOLS.promtool, "prometheus") === null;
  private readonly hasAmtool = toolMissing(DEFAULT_TOOLS.amtool, "prometheus-alertmanager") === null;
  constructor(private readonly ctx: TwinContext) {
    super();
  }
  private get db(): Database {
    tables(this.ctx.world.db, this.ctx.deployment);
    return this.ctx.world.db;
  }
  private get dep(): string {
    return this.ctx.deployment;
  }
  private state(key: string): string | null {
    return (this.db.prepare(`SELECT value FROM obs_state WHERE deployment = ? AND key = ?`).get(this.dep, key) as { value: string } | undefined)?.value ?? null;
  }
  private setState(key: string, value: string): void {
    this.db.prepare(`INSERT INTO obs_state (deployment, key, value) VALUES (?, ?, ?) ON CONFLICT (deployment, key) DO UPDATE SET value = excluded.value`).run(this.dep, key, value);
  }
  readonly confirmSeconds = 30;
  layout() {
    return { agentRulesPath: pathOf("rules:honua-agent.rules.yml"), manifests: false };
  }
  describe(): string {
    return `the sandbox's Prometheus, Alertmanager and Grafana (${this.dep})`;
  }
  async file(target: FileTarget): Promise<ObsFile> {
    const row = this.db.prepare(`SELECT content FROM obs_files WHERE deployment = ? AND target = ?`).get(this.dep, target) as { content: string | null } | undefined;
    return { target, path: pathOf(target), content: row?.content ?? null };
  }
  async files(): Promise<ObsFile[]> {
    const rows = this.db.prepare(`SELECT target FROM obs_files WHERE deployment = ? AND content IS NOT NULL ORDER BY target`).all(this.dep) as { target: string }[];
    const targets = new Set(rows.map((r) => r.target).concat(["alertmanager", "retention"]));
    return Promise.all([...targets].map((t) => this.file(FileTarget.parse(t))));
  }
  async write(target: FileTarget, content: string | null): Promise<boolean> {
    const found = (await this.file(target)).content;
    if (found === content) return false;
    this.db.transaction(() => {
      const seq = (this.db.prepare(`SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM obs_file_history WHERE deployment = ? AND target = ?`).get(this.dep, target) as { n: number }).n;
      this.db.prepare(`INSERT INTO obs_file_history (deployment, target, seq, content) VALUES (?, ?, ?, ?)`).run(this.dep, target, seq, found);
      this.db.prepare(`INSERT INTO obs_files (deployment, target, content) VALUES (?, ?, ?) ON CONFLICT (deployment, target) DO UPDATE SET content = excluded.content`).run(this.dep, target, content);
    }).immediate();
    return true;
  }
  checkRules(files: Record<string, string>): Promise<ToolRun> {
    return this.hasPromtool ? this.tools.checkRules(files) : Promise.resolve(syntaxOnly(files));
  }
  async testRules(files: Record<string, string>, tests: string): Promise<ToolRun> {
    if (this.hasPromtool) return this.tools.testRules(files, tests);
    return { command: "promtool test rules (not run: promtool is not installed here)", ok: true, output: "skipped" };
  }
  async checkAlertmanager(content: string): Promise<ToolRun> {
    if (this.hasAmtool) return this.tools.checkAlertmanager(content);
    try {
      routeReceivers(content, {});
      return { command: "YAML and route tree check (amtool is not installed here)", ok: true, output: "SUCCESS" };
    } catch (e) {
      return { command: "YAML and route tree check (amtool is not installed here)", ok: false, output: e instanceof Error ? e.message : String(e) };
    }
  }
  async routeReceivers(content: string, labels: Record<string, string>) {
    if (this.hasAmtool) return this.tools.routeReceivers(content, labels);
    const receivers = routeReceivers(content, labels);
    return { receivers, run: { command: "route tree walk (amtool is not installed here)", ok: true, output: receivers.join(",") } };
  }
  async series(metrics: readonly string[]): Promise<Record<string, number>> {
    const none = this.ctx.faults.has("no-data");
    return Object.fromEntries(metrics.map((m) => [m, none ? 0 : SANDBOX_SERIES[m] ?? 0]));
  }
  async declared(metrics: readonly string[]): Promise<string[]> {
    return this.ctx.faults.has("no-data") ? [] : metrics.filter((m) => m in SANDBOX_SERIES);
  }
  private rulesNow(): string {
    const rows = this.db.prepare(`SELECT content FROM obs_files WHERE deployment = ? AND target LIKE 'rules:%' AND content IS NOT NULL ORDER BY target`).all(this.dep) as { content: string }[];
    return rows.map((r) => r.content).join("\n---\n");
  }
  async reloadPrometheus(): Promise<ReloadResult> {
    const now = this.rulesNow();
    // provision-failure: the first reload of a changed rule set fails, as a Prometheus that cannot read it would.
    if (this.ctx.faults.has("provision-failure") && this.state("reload-failed") === null && now !== this.state("loaded")) {
      this.setState("reload-failed", "1");
      return { ok: false, detail: "Prometheus reload failed (500): error loading rules (simulated fault); prometheus_config_last_reload_successful 0" };
    }
    this.setState("loaded", now);
    return { ok: true, detail: "prometheus_config_last_reload_successful 1" };
  }
  async reloadAlertmanager(): Promise<ReloadResult> {
    this.setState("am-loaded", (await this.file("alertmanager")).content ?? "");
    return { ok: true, detail: "alertmanager_config_last_reload_successful 1" };
  }
  async loadedRules(): Promise<LoadedRule[]> {
    const out: LoadedRule[] = [];
    for (const doc of (this.state("loaded") ?? "").split("\n---\n")) {
      const g = z.object({ groups: z.array(z.object({ name: z.string(), rules: z.array(z.looseObject({ alert: z.string().optional(), record: z.string().optional(), expr: z.union([z.string(), z.number()]) })) })) }).safeParse(parse(doc));
      if (!g.success) continue;
      for (const grp of g.data.groups) for (const r of grp.rules) out.push({ group: grp.name, name: r.alert ?? r.record ?? "", type: r.alert ? "alerting" : "recording", health: "ok", lastError: null, expr: String(r.expr) });
    }
    return out;
  }
  async targets(): Promise<ScrapeTarget[]> {
    const down = this.ctx.faults.has("no-data");
    return [
      { job: "honua", instance: "honua:8080", health: down ? "down" : "up", lastError: down ? "server returned HTTP status 404 Not Found (HONUA_OBSERVABILITY is off)" : null },
      { job: "node", instance: "node-exporter:9100", health: "up", lastError: null },
    ];
  }
  async ruleEvaluationFailures(): Promise<number> {
    return this.ctx.faults.has("error-spike") ? Math.floor(this.ctx.clock.now().getTime() / 60_000) % 1000 : 0;
  }
  private latest(uid: string): { version: number; model: string | null; message: string | null } | null {
    return (this.db.prepare(`SELECT version, model, message FROM obs_dashboards WHERE deployment = ? AND uid = ? ORDER BY version DESC LIMIT 1`).get(this.dep, uid) as { version: number; model: string | null; message: string | null } | undefined) ?? null;
  }
  async dashboards() {
    const rows = this.db.prepare(`SELECT DISTINCT uid FROM obs_dashboards WHERE deployment = ?`).all(this.dep) as { uid: string }[];
    return rows.flatMap((r) => {
      const l = this.latest(r.uid);
      return l?.model ? [{ uid: r.uid, title: DashboardModel.parse(JSON.parse(l.model)).title, version: l.version }] : [];
    });
  }
  async dashboard(uid: string) {
    const l = this.latest(uid);
    return l?.model ? { model: DashboardModel.parse(JSON.parse(l.model)), version: l.version } : null;
  }
  async saveDashboard(model: DashboardModel, key: string) {
    if (!model.uid) throw new AgentError("bad-input", `dashboard ${model.title} has no uid`);
    const mine = this.db.prepare(`SELECT version FROM obs_dashboards WHERE deployment = ? AND uid = ? AND message = ?`).get(this.dep, model.uid, key) as { version: number } | undefined;
    if (mine) return { uid: model.uid, version: mine.version };
    const latest = this.latest(model.uid);
    const found = latest?.model ? latest.version : null;
    if (found !== null && model.version !== found) throw new AgentError("conflict", `dashboard ${model.title} is at version ${found} in Grafana, not ${String(model.version ?? "(new)")} as designed; nothing was overwritten`);
    const version = (latest?.version ?? 0) + 1;
    this.db.prepare(`INSERT INTO obs_dashboards (deployment, uid, version, model, message) VALUES (?, ?, ?, ?, ?)`).run(this.dep, model.uid, version, JSON.stringify({ ...model, version }), key);
    return { uid: model.uid, version };
  }
  async restoreDashboard(uid: string, state: DashboardState, key: string) {
    const l = this.latest(uid);
    if ("recreate" in state) {
      if (l?.model) return;
      const { version: _v, ...model } = state.recreate;
      await this.saveDashboard(DashboardModel.parse(model), key);
      return;
    }
    if ("absent" in state) {
      if (l?.model) this.db.prepare(`INSERT INTO obs_dashboards (deployment, uid, version, model, message) VALUES (?, ?, ?, NULL, ?)`).run(this.dep, uid, l.version + 1, key);
      return;
    }
    const v = this.db.prepare(`SELECT model FROM obs_dashboards WHERE deployment = ? AND uid = ? AND version = ?`).get(this.dep, uid, state.version) as { model: string } | undefined;
    if (!v) throw new AgentError("failed", `dashboard ${uid} has no version ${state.version}`);
    const strip = (m: string) => JSON.stringify({ ...JSON.parse(m), version: 0 });
    if (l?.model && strip(l.model) === strip(v.model)) return;
    const version = (l?.version ?? 0) + 1;
    this.db.prepare(`INSERT INTO obs_dashboards (deployment, uid, version, model, message) VALUES (?, ?, ?, ?, ?)`).run(this.dep, uid, version, JSON.stringify({ ...JSON.parse(v.model), version }), `Restored from version ${state.version}`);
  }
  async postAlert(alert: { labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }) {
    const config = this.state("am-loaded") ?? (await this.file("alertmanager")).content ?? "";
    const receivers = routeReceivers(config, alert.labels);
    this.db.prepare(`INSERT INTO obs_alerts (deployment, labels, receivers, ends_at) VALUES (?, ?, ?, ?)`).run(this.dep, JSON.stringify(alert.labels), JSON.stringify(receivers), alert.endsAt);
    for (const r of receivers) this.setState(`sent:${r}`, String(Number(this.state(`sent:${r}`) ?? 0) + 1));
  }
  async alerts(labels: Record<string, string>): Promise<AlertSeen[]> {
    const rows = this.db.prepare(`SELECT labels, receivers, ends_at FROM obs_alerts WHERE deployment = ?`).all(this.dep) as { labels: string; receivers: string; ends_at: string }[];
    return rows
      .map((r) => ({ labels: z.record(z.string(), z.string()).parse(JSON.parse(r.labels)), receivers: z.array(z.string()).parse(JSON.parse(r.receivers)), state: new Date(r.ends_at) > this.ctx.clock.now() ? "active" : "resolved" }))
      .filter((a) => Object.entries(labels).every(([k, v]) => a.labels[k] === v));
  }
  async deliveries(): Promise<Deliveries> {
    const rows = this.db.prepare(`SELECT key, value FROM obs_state WHERE deployment = ? AND key LIKE 'sent:%'`).all(this.dep) as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key.slice(5), { sent: Number(r.value), failed: 0 }]));
  }
}

SANDBOX_TWINS.push((ctx) => ({ observability: new SandboxObservability(ctx) }));
