import { z } from "zod";

/** The capability name in the journal and in `DeploymentAdapters`. */
export const OBSERVABILITY = "observability";

/**
 * A file the agent edits, named by role: a Prometheus rule file in the rules folder (`rules:<file name>`), a
 * PrometheusRule manifest for GitOps (`manifest:<file name>`), the Alertmanager config (`alertmanager`), or the file
 * that holds Prometheus's retention flags (`retention`).
 */
export const FileTarget = z.string().regex(/^(?:rules:[\w.-]+\.ya?ml|manifest:[\w.-]+\.ya?ml|alertmanager|retention)$/, "a file target is rules:<name>.yml, manifest:<name>.yml, alertmanager or retention");
export type FileTarget = z.infer<typeof FileTarget>;

export const ObsFile = z.object({
  target: FileTarget,
  /** Where it lives, for the card. */
  path: z.string(),
  /** null: the file does not exist. */
  content: z.string().nullable(),
});
export type ObsFile = z.infer<typeof ObsFile>;

/** What a file held, as the journal keeps it: byte for byte (base64), or absent. */
export const FileState = z.union([z.object({ absent: z.literal(true) }).strict(), z.object({ b64: z.string() }).strict()]);
export type FileState = z.infer<typeof FileState>;
export const encodeFile = (content: string | null): string => JSON.stringify(content === null ? { absent: true } : { b64: Buffer.from(content, "utf8").toString("base64") });
export function decodeFile(value: string): string | null {
  const s = FileState.parse(JSON.parse(value));
  return "absent" in s ? null : Buffer.from(s.b64, "base64").toString("utf8");
}

/** A dashboard's version as the journal keeps it: the version to restore, or absent (delete what the run created). */
export const DashboardState = z.union([
  z.object({ absent: z.literal(true) }).strict(),
  z.object({ version: z.number().int().positive() }).strict(),
  /** A dashboard the run deleted: Grafana drops its versions with it, so the model itself is kept. */
  z.object({ recreate: z.looseObject({ uid: z.string(), title: z.string() }) }).strict(),
]);
export type DashboardState = z.infer<typeof DashboardState>;

/** The output of promtool or amtool: what ran, whether it passed, what it said. */
export const ToolRun = z.object({ command: z.string(), ok: z.boolean(), output: z.string() });
export type ToolRun = z.infer<typeof ToolRun>;

export const ReloadResult = z.object({
  ok: z.boolean(),
  /** What confirmed it (`prometheus_config_last_reload_successful 1`, ...), or why it failed. */
  detail: z.string(),
});
export type ReloadResult = z.infer<typeof ReloadResult>;

export const LoadedRule = z.object({ group: z.string(), name: z.string(), type: z.enum(["alerting", "recording"]), health: z.string(), lastError: z.string().nullable(), expr: z.string() });
export type LoadedRule = z.infer<typeof LoadedRule>;

export const ScrapeTarget = z.object({ job: z.string(), instance: z.string(), health: z.string(), lastError: z.string().nullable() });
export type ScrapeTarget = z.infer<typeof ScrapeTarget>;

export const DashboardSummary = z.object({ uid: z.string(), title: z.string(), version: z.number().int() });
export type DashboardSummary = z.infer<typeof DashboardSummary>;

/** A dashboard model as Grafana keeps it (the JSON of `dashboard`). */
export const DashboardModel = z.looseObject({ uid: z.string().optional(), title: z.string(), panels: z.array(z.looseObject({ title: z.string().optional() })).default([]) });
export type DashboardModel = z.infer<typeof DashboardModel>;

export const AlertSeen = z.object({ labels: z.record(z.string(), z.string()), receivers: z.array(z.string()), state: z.string() });
export type AlertSeen = z.infer<typeof AlertSeen>;

/** Per receiver: notifications sent and failed, as far as the Alertmanager tells (null where it does not). */
export type Deliveries = Record<string, { sent: number; failed: number }>;

/**
 * The `observability` capability: Prometheus rules and their reload, Alertmanager's config, routes and alerts,
 * Grafana's dashboards. Files are written atomically with the previous version kept; every check runs the real tool.
 */
export interface ObservabilityCapability {
  describe(): string;
  /** How long a reload or a test alert's delivery is waited for, in seconds. */
  readonly confirmSeconds: number;
  /** Where the agent's own rule file is, and whether PrometheusRule manifests are written too (GitOps). */
  layout(): { agentRulesPath: string; manifests: boolean };
  /** Every file the agent may edit, with what it holds now (the rules folder, the Alertmanager config, the retention file). */
  files(): Promise<ObsFile[]>;
  /** One file now (null content: absent). */
  file(target: FileTarget): Promise<ObsFile>;
  /** Writes `content` atomically (null: deletes), keeping the previous version beside it; the same content twice is a no-op (false). */
  write(target: FileTarget, content: string | null, idempotencyKey: string): Promise<boolean>;
  /** `promtool check rules` on these files (name -> content). */
  checkRules(files: Record<string, string>): Promise<ToolRun>;
  /** `promtool test rules` with this test file against these rule files. */
  testRules(files: Record<string, string>, tests: string): Promise<ToolRun>;
  /** `amtool check-config`. */
  checkAlertmanager(content: string): Promise<ToolRun>;
  /** `amtool config routes test`: the receivers an alert with `labels` goes to under this config. */
  routeReceivers(content: string, labels: Record<string, string>): Promise<{ receivers: string[]; run: ToolRun }>;
  /** How many series each metric name has in the target Prometheus now (0: none, which is no data). */
  series(metrics: readonly string[]): Promise<Record<string, number>>;
  /**
   * The metric names some scrape target declares (`# TYPE` in its exposition, Prometheus's `/api/v1/metadata`) even
   * without a sample yet: a labelled counter that has not counted, such as errors before the first error.
   */
  declared(metrics: readonly string[]): Promise<string[]>;
  /** POST /-/reload and confirm with `prometheus_config_last_reload_successful`. */
  reloadPrometheus(): Promise<ReloadResult>;
  /** POST /-/reload and confirm with `alertmanager_config_last_reload_successful`. */
  reloadAlertmanager(): Promise<ReloadResult>;
  /** The rules Prometheus evaluates now (`/api/v1/rules`). */
  loadedRules(): Promise<LoadedRule[]>;
  /** Scrape targets and their health (`/api/v1/targets`). */
  targets(): Promise<ScrapeTarget[]>;
  /** Rule evaluation failures so far (`prometheus_rule_evaluation_failures_total`, summed). */
  ruleEvaluationFailures(): Promise<number>;
  /** Grafana's dashboards; null when the deployment has no Grafana. */
  dashboards(): Promise<DashboardSummary[] | null>;
  dashboard(uid: string): Promise<{ model: DashboardModel; version: number } | null>;
  /**
   * Saves (creating or updating) with `idempotencyKey` as the version message: a replay finds its version and saves
   * nothing. `model.version` is the version it was designed against: one saved in between is refused, never overwritten.
   */
  saveDashboard(model: DashboardModel, idempotencyKey: string): Promise<{ uid: string; version: number }>;
  /** Puts the dashboard back to `version` (a new version with that content), or deletes it when the run created it. */
  restoreDashboard(uid: string, state: DashboardState, idempotencyKey: string): Promise<void>;
  /** Posts alerts to Alertmanager's `/api/v2/alerts`. */
  postAlert(alert: { labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string }): Promise<void>;
  /** Alerts Alertmanager holds that carry every one of `labels`, with the receivers it routed them to. */
  alerts(labels: Record<string, string>): Promise<AlertSeen[]>;
  /** Notifications sent and failed per integration, from Alertmanager's own metrics. */
  deliveries(): Promise<Deliveries>;
  /** A rollback puts one file (`file:<target>`) or dashboard (`grafana:<uid>`) back. */
  restore(target: string, value: string, idempotencyKey: string): Promise<void>;
  /** Many at once: every file first, one reload per service whose files changed, then the dashboards. */
  restoreAll(items: readonly { target: string; value: string }[], idempotencyKey: string): Promise<void>;
}

declare module "../types.js" {
  interface DeploymentAdapters {
    observability?: ObservabilityCapability;
  }
}
