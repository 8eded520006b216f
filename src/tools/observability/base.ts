import { AgentError } from "../../core/errors.js";
import { DashboardState, FileTarget, decodeFile, type AlertSeen, type DashboardModel, type DashboardSummary, type Deliveries, type LoadedRule, type ObsFile, type ObservabilityCapability, type ReloadResult, type ScrapeTarget, type ToolRun } from "./types.js";

/** `file:<target>` or `grafana:<uid>`: how the journal names what a rollback puts back. */
export const fileRestoreTarget = (t: FileTarget): string => `file:${t}`;
export const dashboardRestoreTarget = (uid: string): string => `grafana:${uid}`;

/** The rollback half every adapter shares: files back byte for byte, one reload per service, then dashboards. */
export abstract class ObservabilityBase implements ObservabilityCapability {
  abstract describe(): string;
  abstract readonly confirmSeconds: number;
  abstract layout(): { agentRulesPath: string; manifests: boolean };
  abstract files(): Promise<ObsFile[]>;
  abstract file(target: FileTarget): Promise<ObsFile>;
  abstract write(target: FileTarget, content: string | null, idempotencyKey: string): Promise<boolean>;
  abstract checkRules(files: Record<string, string>): Promise<ToolRun>;
  abstract testRules(files: Record<string, string>, tests: string): Promise<ToolRun>;
  abstract checkAlertmanager(content: string): Promise<ToolRun>;
  abstract routeReceivers(content: string, labels: Record<string, string>): Promise<{ receivers: string[]; run: ToolRun }>;
  abstract series(metrics: readonly string[]): Promise<Record<string, number>>;
  abstract declared(metrics: readonly string[]): Promise<string[]>;
  abstract reloadPrometheus(): Promise<ReloadResult>;
  abstract reloadAlertmanager(): Promise<ReloadResult>;
  abstract loadedRules(): Promise<LoadedRule[]>;
  abstract targets(): Promise<ScrapeTarget[]>;
  abstract ruleEvaluationFailures(): Promise<number>;
  abstract dashboards(): Promise<DashboardSummary[] | null>;
  abstract dashboard(uid: string): Promise<{ model: DashboardModel; version: number } | null>;
  abstract saveDashboard(model: DashboardModel, idempotencyKey: string): Promise<{ uid: string; version: number }>;
  abstract restoreDashboard(uid: string, state: DashboardState, idempotencyKey: string): Promise<void>;
  abstract postAlert(alert: { labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }): Promise<void>;
  abstract alerts(labels: Record<string, string>): Promise<AlertSeen[]>;
  abstract deliveries(): Promise<Deliveries>;

  async restore(target: string, value: string, idempotencyKey: string): Promise<void> {
    await this.restoreAll([{ target, value }], idempotencyKey);
  }

  async restoreAll(items: readonly { target: string; value: string }[], idempotencyKey: string): Promise<void> {
    const reload = new Set<"prometheus" | "alertmanager">();
    const dashboards: { uid: string; state: DashboardState }[] = [];
    for (const i of items) {
      if (i.target.startsWith("file:")) {
        const t = FileTarget.parse(i.target.slice("file:".length));
        // A file already as found needs no reload: a step that restored it itself (a failed reload) left nothing to do.
        if (!(await this.write(t, decodeFile(i.value), `${idempotencyKey}:${t}`))) continue;
        if (t.startsWith("rules:")) reload.add("prometheus");
        if (t === "alertmanager") reload.add("alertmanager");
      } else if (i.target.startsWith("grafana:")) {
        dashboards.push({ uid: i.target.slice("grafana:".length), state: DashboardState.parse(JSON.parse(i.value)) });
      } else {
        throw new AgentError("failed", `observability cannot restore ${i.target}`);
      }
    }
    const failed: string[] = [];
    if (reload.has("prometheus")) {
      const r = await this.reloadPrometheus();
      if (!r.ok) failed.push(`Prometheus did not reload the restored rules: ${r.detail}`);
    }
    if (reload.has("alertmanager")) {
      const r = await this.reloadAlertmanager();
      if (!r.ok) failed.push(`Alertmanager did not reload the restored config: ${r.detail}`);
    }
    for (const d of dashboards) await this.restoreDashboard(d.uid, d.state, `${idempotencyKey}:${d.uid}`);
    // The files are back byte for byte either way; a service that will not reload them is named.
    if (failed.length) throw new AgentError("failed", `files restored, but ${failed.join("; ")}`);
  }
}
