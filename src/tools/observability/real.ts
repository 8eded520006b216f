import { readdir } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import { ObservabilityBase } from "./base.js";
import { readOrNull, writeAtomic } from "./files.js";
import { GrafanaClient } from "./grafana.js";
import { call, callJson, exposition } from "./http.js";
import type { ObservabilitySection } from "./section.js";
import { DEFAULT_TOOLS, ObservabilityTools } from "./tools.js";
import { AlertSeen, FileTarget, type DashboardModel, type DashboardState, type Deliveries, type LoadedRule, type ObsFile, type ReloadResult, type ScrapeTarget, type ToolRun } from "./types.js";

const Query = z.object({ status: z.literal("success"), data: z.object({ result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) })) }) });
const Rules = z.object({
  data: z.object({
    groups: z.array(z.object({ name: z.string(), rules: z.array(z.looseObject({ name: z.string(), type: z.enum(["alerting", "recording"]), health: z.string().default("unknown"), lastError: z.string().optional(), query: z.string() })) })),
  }),
});
const Targets = z.object({ data: z.object({ activeTargets: z.array(z.looseObject({ labels: z.record(z.string(), z.string()), health: z.string(), lastError: z.string().optional() })) }) });
const AmAlerts = z.array(z.looseObject({ labels: z.record(z.string(), z.string()), receivers: z.array(z.object({ name: z.string() })), status: z.looseObject({ state: z.string() }) }));

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** A real Prometheus and Alertmanager (HTTP, files on this machine) and Grafana's HTTP API, from the deployment's `observability:` section. */
export class RealObservability extends ObservabilityBase {
  private readonly tools: ObservabilityTools;
  private readonly grafana: GrafanaClient | null;
  private readonly prom: string;
  private readonly am: string | null;

  constructor(private readonly section: ObservabilitySection, private readonly deployment: string, env: NodeJS.ProcessEnv, private readonly cwd = process.cwd()) {
    super();
    this.tools = new ObservabilityTools({ promtool: section.tools?.promtool ?? DEFAULT_TOOLS.promtool, amtool: section.tools?.amtool ?? DEFAULT_TOOLS.amtool });
    this.prom = section.prometheus.url.replace(/\/$/, "");
    this.am = section.alertmanager ? section.alertmanager.url.replace(/\/$/, "") : null;
    const g = section.grafana;
    // The token is read when Grafana is first called, so a deployment that never touches a dashboard needs none set.
    const ref = g?.token;
    const token = (): string | null => {
      if (!ref) return null;
      const value = env[ref.slice("env:".length)];
      if (!value) throw new AgentError("bad-input", `deployment ${deployment}: observability.grafana.token names ${ref}, which is not set in honua-agent's environment`);
      return value;
    };
    this.grafana = g ? new GrafanaClient(g.url, token, g.folderUid ?? null) : null;
  }

  get confirmSeconds(): number {
    return this.section.confirmSeconds;
  }
  layout() {
    return { agentRulesPath: this.pathOf("rules:honua-agent.rules.yml"), manifests: this.section.prometheus.manifestsDir !== undefined };
  }

  describe(): string {
    return `Prometheus at ${this.prom} (rules in ${this.section.prometheus.rulesDir})${this.am ? `, Alertmanager at ${this.am}` : ""}${this.section.grafana ? `, Grafana at ${this.section.grafana.url}` : ""}`;
  }

  private pathOf(target: FileTarget): string {
    const p = this.section.prometheus;
    if (target.startsWith("rules:")) return resolve(this.cwd, p.rulesDir, target.slice("rules:".length));
    if (target.startsWith("manifest:")) {
      if (!p.manifestsDir) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.prometheus.manifestsDir for PrometheusRule manifests`);
      return resolve(this.cwd, p.manifestsDir, target.slice("manifest:".length));
    }
    if (target === "alertmanager") {
      if (!this.section.alertmanager) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.alertmanager section: routes cannot be changed`);
      return resolve(this.cwd, this.section.alertmanager.configFile);
    }
    if (!p.retentionFile) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.prometheus.retentionFile: the file holding --storage.tsdb.retention.time is not known`);
    return resolve(this.cwd, p.retentionFile);
  }

  async file(target: FileTarget): Promise<ObsFile> {
    const path = this.pathOf(target);
    return { target, path, content: await readOrNull(path) };
  }

  async files(): Promise<ObsFile[]> {
    const p = this.section.prometheus;
    const list = async (dir: string, prefix: "rules" | "manifest") =>
      (await readdir(resolve(this.cwd, dir)).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? [] : Promise.reject(e))))
        .filter((n) => /^[\w-][\w.-]*\.ya?ml$/.test(n))
        .sort()
        .map((n) => FileTarget.parse(`${prefix}:${n}`));
    const targets: FileTarget[] = [...(await list(p.rulesDir, "rules")), ...(p.manifestsDir ? await list(p.manifestsDir, "manifest") : [])];
    if (this.section.alertmanager) targets.push("alertmanager");
    if (p.retentionFile) targets.push("retention");
    return Promise.all(targets.map((t) => this.file(t)));
  }

  async write(target: FileTarget, content: string | null): Promise<boolean> {
    return (await writeAtomic(this.pathOf(target), content)).changed;
  }

  checkRules(files: Record<string, string>): Promise<ToolRun> {
    return this.tools.checkRules(files);
  }
  testRules(files: Record<string, string>, tests: string): Promise<ToolRun> {
    return this.tools.testRules(files, tests);
  }
  checkAlertmanager(content: string): Promise<ToolRun> {
    return this.tools.checkAlertmanager(content);
  }
  routeReceivers(content: string, labels: Record<string, string>) {
    return this.tools.routeReceivers(content, labels);
  }

  async series(metrics: readonly string[]): Promise<Record<string, number>> {
    const names = [...new Set(metrics)];
    for (const n of names) if (!METRIC_NAME.test(n)) throw new AgentError("bad-input", `not a metric name: ${n}`);
    const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    if (names.length === 0) return out;
    const q = `count by (__name__) ({__name__=~"${names.join("|")}"})`;
    const body = Query.parse(await callJson("Prometheus", `${this.prom}/api/v1/query?query=${encodeURIComponent(q)}`));
    for (const r of body.data.result) if (r.metric.__name__ !== undefined) out[r.metric.__name__] = Number(r.value[1]);
    return out;
  }

  async declared(metrics: readonly string[]): Promise<string[]> {
    const body = z.object({ data: z.record(z.string(), z.array(z.unknown())) }).parse(await callJson("Prometheus", `${this.prom}/api/v1/metadata`));
    const family = (m: string) => [m, m.replace(/_(?:bucket|count|sum)$/, "")];
    return metrics.filter((m) => family(m).some((f) => (body.data[f]?.length ?? 0) > 0));
  }

  private async reload(what: string, base: string, metric: string): Promise<ReloadResult> {
    const r = await call(what, `${base}/-/reload`, { method: "POST" });
    if (r.status === 403 || (r.status === 404 && /lifecycle/i.test(r.text))) return { ok: false, detail: `${what} refused the reload (${r.status}: ${r.text.trim().slice(0, 200)}); start it with --web.enable-lifecycle` };
    const m = await call(what, `${base}/metrics`);
    const ok = exposition(m.text, metric)[0]?.value;
    if (r.status !== 200) return { ok: false, detail: `${what} reload failed (${r.status}): ${r.text.trim().slice(0, 400)}; ${metric} ${ok ?? "absent"}` };
    if (ok !== 1) return { ok: false, detail: `${what} answered the reload but ${metric} is ${ok ?? "absent"}` };
    return { ok: true, detail: `${metric} 1` };
  }

  reloadPrometheus(): Promise<ReloadResult> {
    return this.reload("Prometheus", this.prom, "prometheus_config_last_reload_successful");
  }
  reloadAlertmanager(): Promise<ReloadResult> {
    if (!this.am) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.alertmanager section`);
    return this.reload("Alertmanager", this.am, "alertmanager_config_last_reload_successful");
  }

  async loadedRules(): Promise<LoadedRule[]> {
    const body = Rules.parse(await callJson("Prometheus", `${this.prom}/api/v1/rules`));
    return body.data.groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, name: r.name, type: r.type, health: r.health, lastError: r.lastError ? r.lastError : null, expr: r.query })));
  }

  async targets(): Promise<ScrapeTarget[]> {
    const body = Targets.parse(await callJson("Prometheus", `${this.prom}/api/v1/targets?state=active`));
    return body.data.activeTargets.map((t) => ({ job: t.labels.job ?? "", instance: t.labels.instance ?? "", health: t.health, lastError: t.lastError ? t.lastError : null }));
  }

  async ruleEvaluationFailures(): Promise<number> {
    const m = await call("Prometheus", `${this.prom}/metrics`);
    return exposition(m.text, "prometheus_rule_evaluation_failures_total").reduce((a, s) => a + s.value, 0);
  }

  private needGrafana(): GrafanaClient {
    if (!this.grafana) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.grafana section: dashboards cannot be changed`);
    return this.grafana;
  }
  async dashboards() {
    return this.grafana ? this.grafana.list() : null;
  }
  async dashboard(uid: string) {
    return this.needGrafana().get(uid);
  }
  async saveDashboard(model: DashboardModel, idempotencyKey: string) {
    return this.needGrafana().save(model, idempotencyKey);
  }
  async restoreDashboard(uid: string, state: DashboardState, idempotencyKey: string) {
    return this.needGrafana().restore(uid, state, idempotencyKey);
  }

  private needAm(): string {
    if (!this.am) throw new AgentError("bad-input", `deployment ${this.deployment} has no observability.alertmanager section`);
    return this.am;
  }
  async postAlert(alert: { labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }): Promise<void> {
    const r = await call("Alertmanager", `${this.needAm()}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([alert]) });
    if (r.status !== 200) throw new AgentError("failed", `Alertmanager refused the test alert: ${r.status} ${r.text.slice(0, 200)}`);
  }
  async alerts(labels: Record<string, string>): Promise<AlertSeen[]> {
    const filter = Object.entries(labels).map(([k, v]) => `filter=${encodeURIComponent(`${k}=${JSON.stringify(v)}`)}`).join("&");
    const body = AmAlerts.parse(await callJson("Alertmanager", `${this.needAm()}/api/v2/alerts?${filter}`));
    return body.map((a) => AlertSeen.parse({ labels: a.labels, receivers: a.receivers.map((r) => r.name), state: a.status.state }));
  }
  async deliveries(): Promise<Deliveries> {
    const m = await call("Alertmanager", `${this.needAm()}/metrics`);
    const out: Deliveries = {};
    const key = (l: Record<string, string>) => l.receiver_name ?? l.integration ?? "all";
    for (const s of exposition(m.text, "alertmanager_notifications_total")) (out[key(s.labels)] ??= { sent: 0, failed: 0 }).sent += s.value;
    for (const s of exposition(m.text, "alertmanager_notifications_failed_total")) (out[key(s.labels)] ??= { sent: 0, failed: 0 }).failed += s.value;
    return out;
  }
}
