import { createTwoFilesPatch } from "diff";
import { Document, isMap, isScalar, isSeq, parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { z } from "zod";
import { AgentError } from "../../../core/errors.js";
import { maskSecretLine } from "../../../core/secrets.js";
import { DashboardModel, FileTarget, type DashboardSummary, type ObsFile } from "../../../tools/observability/types.js";
import type { ObservabilityChange } from "./params.js";
import { hasSyntaxError, metricNames, thresholdOf } from "./promql.js";
import { measureOf, type Measure } from "./templates.js";

/** The rule file the agent owns for what it adds; rules it changes stay in the file they are in. */
export const AGENT_RULES: FileTarget = "rules:honua-agent.rules.yml";
export const AGENT_GROUP = "honua-agent";

export const FileChange = z.object({ target: FileTarget, path: z.string(), before: z.string().nullable(), after: z.string().nullable(), diff: z.string() });
export type FileChange = z.infer<typeof FileChange>;

export const DashboardChange = z.object({
  uid: z.string(),
  title: z.string(),
  /** The version found (null: the run creates it). */
  beforeVersion: z.number().int().nullable(),
  /** The model found, kept for a deletion (Grafana drops a deleted dashboard's versions). */
  before: DashboardModel.nullable(),
  /** null: delete it. */
  after: DashboardModel.nullable(),
  diff: z.string(),
});
export type DashboardChange = z.infer<typeof DashboardChange>;

export const RuleChange = z.object({
  name: z.string(),
  type: z.enum(["alert", "record"]),
  action: z.enum(["add", "modify", "remove"]),
  target: FileTarget,
  expr: z.string().nullable(),
  for: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()),
});
export type RuleChange = z.infer<typeof RuleChange>;

/** A route the change must give: an alert with `labels` goes to exactly `receivers`. */
export const RouteExpectation = z.object({ labels: z.record(z.string(), z.string()), receivers: z.array(z.string()).min(1), why: z.string() });
export type RouteExpectation = z.infer<typeof RouteExpectation>;

export const Design = z.object({
  files: z.array(FileChange),
  dashboards: z.array(DashboardChange),
  rules: z.array(RuleChange),
  routes: z.array(RouteExpectation),
  /** Metric names every changed expression reads (rules and panels), for the series check. */
  metrics: z.array(z.string()),
  /** Names recording rules produce (theirs are not asked of Prometheus). */
  recorded: z.array(z.string()),
  removal: z.boolean(),
  /** What needs a restart to take effect (retention flags). */
  restart: z.array(z.string()),
  notes: z.array(z.string()),
  summary: z.array(z.string()),
});
export type Design = z.infer<typeof Design>;

/** A file's change as an approver reads it: a unified diff with credential lines masked. */
export function fileDiff(path: string, before: string | null, after: string | null): string {
  const mask = (s: string | null) => (s ?? "").split("\n").map((l) => (/\b(?:api_url|url|service_key|routing_key|auth_password|password|token)\s*:/i.test(l) && !/_file\s*:/.test(l) ? l.replace(/(:\s*).+$/, "$1***") : maskSecretLine(l))).join("\n");
  return createTwoFilesPatch(before === null ? "/dev/null" : `a${path}`, after === null ? "/dev/null" : `b${path}`, mask(before), mask(after), "", "", { context: 3 })
    .split("\n")
    .filter((l) => !/^={3,}$/.test(l) && !l.startsWith("Index:"))
    .join("\n")
    .trim();
}

const dump = (doc: Document): string => doc.toString({ lineWidth: 0 });

interface RuleAt {
  target: FileTarget;
  doc: Document;
  groups: YAMLSeq;
  group: YAMLMap;
  rules: YAMLSeq;
  index: number;
  rule: YAMLMap;
}

const str = (v: unknown): string | null => (v === undefined || v === null ? null : String(v));
const record = (m: unknown): Record<string, string> => {
  if (!isMap(m)) return {};
  const out: Record<string, string> = {};
  for (const p of m.items) if (isScalar(p.key)) out[String(p.key.value)] = String(isScalar(p.value) ? p.value.value : p.value);
  return out;
};

/** The rule files as editable YAML documents, by target. */
class RuleFiles {
  readonly docs = new Map<FileTarget, { doc: Document; file: ObsFile }>();
  constructor(files: readonly ObsFile[]) {
    for (const f of files) {
      if (!f.target.startsWith("rules:") || f.content === null) continue;
      const doc = parseDocument(f.content);
      if (doc.errors.length) throw new AgentError("failed", `${f.path} is not valid YAML as found (${doc.errors[0]!.message}); fix it before changing rules`);
      this.docs.set(f.target, { doc, file: f });
    }
  }
  find(name: string): RuleAt[] {
    const out: RuleAt[] = [];
    for (const [target, { doc }] of this.docs) {
      const groups = doc.get("groups");
      if (!isSeq(groups)) continue;
      for (const g of groups.items) {
        if (!isMap(g)) continue;
        const rules = g.get("rules");
        if (!isSeq(rules)) continue;
        rules.items.forEach((r, index) => {
          if (isMap(r) && [str(r.get("alert")), str(r.get("record"))].some((n) => n !== null && n.toLowerCase() === name.toLowerCase())) out.push({ target, doc, groups, group: g, rules, index, rule: r });
        });
      }
    }
    return out;
  }
  /** Every name a recording rule produces, as found. */
  recorded(): string[] {
    const out: string[] = [];
    for (const { doc } of this.docs.values()) {
      const groups = doc.get("groups");
      if (!isSeq(groups)) continue;
      for (const g of groups.items) {
        const rules = isMap(g) ? g.get("rules") : null;
        if (isSeq(rules)) for (const r of rules.items) if (isMap(r) && r.get("record")) out.push(String(r.get("record")));
      }
    }
    return out;
  }
  /** The agent's own group, created in its own file when absent. */
  agentRules(path: string): YAMLSeq {
    let entry = this.docs.get(AGENT_RULES);
    if (!entry) {
      const doc = parseDocument(`# Rules added by honua-agent; each change is reviewed in Slack before it is written.\ngroups:\n  - name: ${AGENT_GROUP}\n    rules: []\n`);
      entry = { doc, file: { target: AGENT_RULES, path, content: null } };
      this.docs.set(AGENT_RULES, entry);
    }
    const groups = entry.doc.get("groups") as YAMLSeq;
    let group = groups.items.find((g) => isMap(g) && g.get("name") === AGENT_GROUP) as YAMLMap | undefined;
    if (!group) {
      group = entry.doc.createNode({ name: AGENT_GROUP, rules: [] }) as YAMLMap;
      groups.add(group);
    }
    let rules = group.get("rules");
    if (!isSeq(rules)) {
      rules = entry.doc.createNode([]);
      group.set("rules", rules);
    }
    const seq = rules as YAMLSeq;
    seq.flow = false;
    return seq;
  }
}

const specString = (spec: Record<string, unknown> | undefined, k: string): string | undefined => (typeof spec?.[k] === "string" && spec[k] !== "" ? (spec[k] as string) : undefined);
const specNumber = (spec: Record<string, unknown> | undefined, k: string): number | undefined => {
  const v = spec?.[k];
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};
const DURATION = /^\d+(?:ms|s|m|h|d|w|y)$/;
const ALERT_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RECORD_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const OPS = new Set([">", "<", ">=", "<=", "==", "!="]);

function severityOf(spec: Record<string, unknown> | undefined, fallback: string): string {
  const s = specString(spec, "severity") ?? (spec?.pages === true || /on-?call|page/i.test(specString(spec, "notify") ?? "") ? "critical" : undefined);
  if (s && !/^(?:critical|warning|info|page|ticket)$/.test(s)) throw new AgentError("bad-input", `severity ${s} is not one of critical, warning, info`);
  return s ?? fallback;
}

function designAlertAdd(c: ObservabilityChange, files: RuleFiles, agentPath: string): RuleChange {
  const spec = c.spec;
  const expr0 = specString(spec, "expr");
  const metric = specString(spec, "metric");
  const measure: Measure | null = metric ? measureOf(metric) : c.name ? measureOf(c.name) : null;
  if (!expr0 && !measure) {
    throw new AgentError("bad-input", `which measure should the alert watch? Say one of: p95 latency, tile latency, p99 latency, error rate, cache hit ratio, database latency, database pool, request rate, or give the PromQL as spec.expr${metric ? ` (${metric} is not one of them)` : ""}`);
  }
  const op = specString(spec, "op") ?? measure?.op ?? ">";
  if (!OPS.has(op)) throw new AgentError("bad-input", `comparison ${op} is not one of ${[...OPS].join(" ")}`);
  const threshold = specNumber(spec, "threshold") ?? measure?.threshold;
  let expr: string;
  if (expr0) {
    if (hasSyntaxError(expr0)) throw new AgentError("bad-input", `not PromQL: ${expr0}`);
    expr = thresholdOf(expr0) || threshold === undefined ? expr0 : `${expr0} ${op} ${threshold}`;
  } else expr = `${measure!.expr} ${op} ${threshold}`;
  const name = c.name && ALERT_NAME.test(c.name) ? c.name : measure?.alert ?? "HonuaCustomAlert";
  const forD = specString(spec, "for") ?? "5m";
  if (!DURATION.test(forD)) throw new AgentError("bad-input", `for: ${forD} is not a Prometheus duration (5m, 1h)`);
  const found = files.find(name);
  if (found.length) throw new AgentError("conflict", `an alert named ${name} already exists in ${found[0]!.target.slice(6)}; ask to modify it, or name the new one`);
  const labels = { severity: severityOf(spec, "warning"), ...(specString(spec, "team") ? { team: specString(spec, "team")! } : {}) };
  const annotations = { summary: specString(spec, "summary") ?? (measure && threshold !== undefined ? measure.summary(threshold) : `${name} (${expr})`) };
  const rules = files.agentRules(agentPath);
  rules.add(rules.items.length === 0 ? files.docs.get(AGENT_RULES)!.doc.createNode({ alert: name, expr, for: forD, labels, annotations }) : files.docs.get(AGENT_RULES)!.doc.createNode({ alert: name, expr, for: forD, labels, annotations }));
  return { name, type: "alert", action: "add", target: AGENT_RULES, expr, for: forD, labels, annotations };
}

function designRuleModify(c: ObservabilityChange, files: RuleFiles): RuleChange {
  if (!c.name) throw new AgentError("bad-input", "which rule should change? Name it (e.g. TileLatencyHigh)");
  const found = files.find(c.name);
  if (found.length === 0) throw new AgentError("not-found", `no rule named ${c.name} in the rule files (${[...files.docs.keys()].map((t) => t.slice(6)).join(", ") || "none"})`);
  if (found.length > 1) throw new AgentError("conflict", `${c.name} is defined ${found.length} times (${found.map((f) => f.target.slice(6)).join(", ")}); which one Prometheus alerts on is ambiguous: keep one, then ask again`);
  const at = found[0]!;
  const spec = c.spec;
  const oldExpr = String(at.rule.get("expr") ?? "");
  let expr = specString(spec, "expr") ?? oldExpr;
  const threshold = specNumber(spec, "threshold");
  const t = thresholdOf(expr);
  const annotations = record(at.rule.get("annotations"));
  if (threshold !== undefined && !specString(spec, "expr")) {
    if (!t) throw new AgentError("bad-input", `${c.name}'s expression has no threshold at its top (${oldExpr}); give the whole expression as spec.expr`);
    const op = specString(spec, "op") ?? t.op;
    expr = `${expr.slice(0, t.from).replace(/(?:>=|<=|==|!=|>|<)\s*$/, `${op} `)}${threshold}${expr.slice(t.to)}`;
    // The summary that quotes the old threshold quotes the new one.
    for (const [k, v] of Object.entries(annotations)) {
      const re = new RegExp(`(^|[^\\d.])${t.value.toString().replace(".", "\\.")}(?![\\d.])`);
      if (re.test(v)) {
        annotations[k] = v.replace(re, `$1${threshold}`);
        at.rule.setIn(["annotations", k], annotations[k]);
      }
    }
  }
  if (hasSyntaxError(expr)) throw new AgentError("bad-input", `not PromQL: ${expr}`);
  if (expr !== oldExpr) at.rule.set("expr", expr);
  let forD = str(at.rule.get("for"));
  const newFor = specString(spec, "for");
  if (newFor) {
    if (!DURATION.test(newFor)) throw new AgentError("bad-input", `for: ${newFor} is not a Prometheus duration (5m, 1h)`);
    at.rule.set("for", newFor);
    forD = newFor;
  }
  const labels = record(at.rule.get("labels"));
  const sev = specString(spec, "severity");
  if (sev) {
    labels.severity = severityOf(spec, sev);
    at.rule.setIn(["labels", "severity"], labels.severity);
  }
  const type = at.rule.get("alert") ? "alert" : "record";
  return { name: String(at.rule.get(type === "alert" ? "alert" : "record")), type, action: "modify", target: at.target, expr, for: forD, labels, annotations };
}

function designRuleRemove(c: ObservabilityChange, files: RuleFiles): RuleChange {
  if (!c.name) throw new AgentError("bad-input", "which rule should be removed? Name it (e.g. DiskAlmostFull)");
  const found = files.find(c.name);
  if (found.length === 0) throw new AgentError("not-found", `no rule named ${c.name} in the rule files (${[...files.docs.keys()].map((t) => t.slice(6)).join(", ") || "none"}): nothing to remove`);
  if (found.length > 1) throw new AgentError("conflict", `${c.name} is defined ${found.length} times (${found.map((f) => f.target.slice(6)).join(", ")}); say which file`);
  const at = found[0]!;
  const type = at.rule.get("alert") ? "alert" : "record";
  const out: RuleChange = { name: String(at.rule.get(type === "alert" ? "alert" : "record")), type, action: "remove", target: at.target, expr: String(at.rule.get("expr") ?? ""), for: str(at.rule.get("for")), labels: record(at.rule.get("labels")), annotations: record(at.rule.get("annotations")) };
  at.rules.items.splice(at.index, 1);
  return out;
}

function designRecordAdd(c: ObservabilityChange, files: RuleFiles, agentPath: string): RuleChange {
  const spec = c.spec;
  const metric = specString(spec, "metric");
  const measure = metric ? measureOf(metric) : null;
  const expr = specString(spec, "expr") ?? measure?.expr;
  if (!expr) throw new AgentError("bad-input", "what should the recording rule compute? Give its PromQL as spec.expr");
  if (hasSyntaxError(expr)) throw new AgentError("bad-input", `not PromQL: ${expr}`);
  const name = c.name ?? (measure ? `honua:${measure.id}:5m` : undefined);
  if (!name || !RECORD_NAME.test(name)) throw new AgentError("bad-input", `a recording rule needs a name like level:metric:operation${name ? ` (${name} is not one)` : ""}`);
  if (files.find(name).length) throw new AgentError("conflict", `a rule named ${name} already exists`);
  const rules = files.agentRules(agentPath);
  rules.add(files.docs.get(AGENT_RULES)!.doc.createNode({ record: name, expr }));
  return { name, type: "record", action: "add", target: AGENT_RULES, expr, for: null, labels: {}, annotations: {} };
}

/** The receiver that delivers to `to` (`#channel`, `@user`, an address or a receiver name) in the Alertmanager config. */
function receiverFor(doc: Document, to: string): string {
  const receivers = doc.get("receivers");
  const list = isSeq(receivers) ? receivers.items.filter(isMap) : [];
  const bare = to.replace(/^[#@]/, "").toLowerCase();
  const names = list.map((r) => String(r.get("name")));
  const byName = names.find((n) => n.toLowerCase() === bare || n.toLowerCase() === to.toLowerCase());
  if (byName) return byName;
  for (const r of list) {
    const text = JSON.stringify(r.toJSON()).toLowerCase();
    if (text.includes(`"${to.toLowerCase()}"`) || (to.startsWith("#") && text.includes(`"channel":"${to.toLowerCase()}"`))) return String(r.get("name"));
  }
  throw new AgentError("bad-input", `no receiver in the Alertmanager config delivers to ${to} (receivers: ${names.join(", ") || "none"}); add one with its credentials by reference first, then ask again`);
}

function matchersOf(spec: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["severity", "alertname", "team", "service"]) {
    const v = specString(spec, k);
    if (v !== undefined) {
      if (!/^[\w.:-]+$/.test(v)) throw new AgentError("bad-input", `${k}=${v}: label values here are letters, digits, . : - and _`);
      out[k] = v;
    }
  }
  return out;
}

function designRoute(c: ObservabilityChange, doc: Document): { expectation: RouteExpectation | null; summary: string } {
  const spec = c.spec;
  const to = specString(spec, "receiver");
  const match = matchersOf(spec);
  const route = doc.get("route");
  if (!isMap(route)) throw new AgentError("failed", "the Alertmanager config has no route tree");
  let routes = route.get("routes");
  if (!isSeq(routes)) {
    routes = doc.createNode([]);
    route.set("routes", routes);
  }
  const seq = routes as YAMLSeq;
  const matcherText = Object.entries(match).map(([k, v]) => `${k}="${v}"`);
  const sameMatchers = (r: unknown) => isMap(r) && JSON.stringify((r.get("matchers") as YAMLSeq | undefined)?.toJSON?.() ?? []) === JSON.stringify(matcherText);
  if (c.action === "remove") {
    const before = seq.items.length;
    seq.items = seq.items.filter((r) => !(isMap(r) && (to ? String(r.get("receiver")) === receiverFor(doc, to) : true) && (matcherText.length === 0 || sameMatchers(r))));
    const removed = before - seq.items.length;
    if (removed === 0) throw new AgentError("not-found", `no route ${to ? `to ${to} ` : ""}${matcherText.length ? `for ${matcherText.join(", ")} ` : ""}in the Alertmanager config: nothing to remove`);
    const fallback = String(route.get("receiver"));
    return { expectation: matcherText.length ? { labels: { alertname: "HonuaAgentTestAlert", ...match }, receivers: [fallback], why: `after removing the route, ${matcherText.join(", ")} falls back to ${fallback}` } : null, summary: `remove ${removed} route(s)${to ? ` to ${to}` : ""}` };
  }
  if (!to) throw new AgentError("bad-input", "where should these alerts go? Name the receiver or channel (e.g. #honua-oncall)");
  if (matcherText.length === 0) throw new AgentError("bad-input", "which alerts should go there? Give a severity, alert name or team (e.g. critical alerts)");
  const receiver = receiverFor(doc, to);
  const existing = seq.items.find(sameMatchers);
  if (existing && isMap(existing)) existing.set("receiver", receiver);
  else seq.items.unshift(doc.createNode({ receiver, matchers: matcherText }));
  return { expectation: { labels: { alertname: "HonuaAgentTestAlert", ...match }, receivers: [receiver], why: `${matcherText.join(", ")} -> ${receiver} (${to})` }, summary: `route ${matcherText.join(", ")} to ${receiver}` };
}

const PANEL_H = 8;

function designDashboard(c: ObservabilityChange, found: readonly { summary: DashboardSummary; model: DashboardModel }[]): DashboardChange {
  const want = c.name?.toLowerCase();
  const pick = () => {
    if (want) return found.find((d) => d.summary.title.toLowerCase() === want || d.summary.uid === c.name) ?? found.find((d) => d.summary.title.toLowerCase().includes(want));
    const honua = found.filter((d) => /honua/i.test(d.summary.title));
    return found.length === 1 ? found[0] : honua.length === 1 ? honua[0] : undefined;
  };
  const panels = Array.isArray(c.spec?.panels) ? (c.spec.panels as unknown[]).map(String) : specString(c.spec, "panel") ? [specString(c.spec, "panel")!] : [];
  const at = pick();
  if (c.action === "remove" && panels.length === 0) {
    if (!at) throw new AgentError("not-found", `no dashboard ${c.name ?? ""} in Grafana (${found.map((d) => d.summary.title).join(", ") || "none"}): nothing to remove`);
    return { uid: at.summary.uid, title: at.summary.title, beforeVersion: at.summary.version, before: at.model, after: null, diff: fileDiff(`/grafana/${at.summary.uid}.json`, JSON.stringify(at.model, null, 2), null) };
  }
  let base: DashboardModel;
  let creating = false;
  if (at && (c.action !== "add" || !c.name || at.summary.title.toLowerCase() === want)) base = at.model;
  else if (c.action === "add" && (c.name || found.length === 0)) {
    const title = c.name ?? "Honua (honua-agent)";
    base = { uid: `honua-agent-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 28)}`, title, panels: [], schemaVersion: 39, tags: ["honua", "honua-agent"] };
    creating = true;
  } else {
    throw new AgentError("bad-input", `which dashboard? ${found.length ? `Grafana has ${found.map((d) => `"${d.summary.title}"`).join(", ")}` : "Grafana has none"}`);
  }
  if (panels.length === 0 && !creating) throw new AgentError("bad-input", `what should change on "${base.title}"? Name the panels (e.g. a cache hit rate panel)`);
  const after: DashboardModel = structuredClone(base);
  if (c.action === "remove") {
    const drop = panels.map((p) => p.toLowerCase());
    const before = after.panels.length;
    after.panels = after.panels.filter((p) => !drop.some((d) => (p.title ?? "").toLowerCase().includes(d)));
    if (after.panels.length === before) throw new AgentError("not-found", `no panel ${panels.join(", ")} on "${base.title}": nothing to remove`);
  } else {
    let id = Math.max(0, ...after.panels.map((p) => Number((p as { id?: unknown }).id) || 0));
    let y = Math.max(0, ...after.panels.map((p) => {
      const g = (p as { gridPos?: { y?: number; h?: number } }).gridPos;
      return (g?.y ?? 0) + (g?.h ?? PANEL_H);
    }));
    for (const [i, phrase] of panels.entries()) {
      const m = measureOf(phrase);
      if (!m) throw new AgentError("bad-input", `no known series for a "${phrase}" panel; say p95 latency, error rate, cache hit ratio, database latency, database pool or request rate`);
      const title = phrase.replace(/^./, (ch) => ch.toUpperCase());
      if (after.panels.some((p) => (p.title ?? "").toLowerCase() === title.toLowerCase())) throw new AgentError("in-place", `"${base.title}" already has a ${title} panel`);
      after.panels.push({ id: ++id, type: "timeseries", title, gridPos: { x: (i % 2) * 12, y, w: 12, h: PANEL_H }, targets: [{ refId: "A", expr: m.expr, legendFormat: m.id }], fieldConfig: { defaults: { unit: m.unit === "ms" ? "ms" : m.unit === "ratio" ? "percentunit" : m.unit === "rps" ? "reqps" : "bytes" }, overrides: [] } });
      if (i % 2 === 1) y += PANEL_H;
    }
  }
  const strip = (m: DashboardModel | null) => (m ? JSON.stringify({ ...m, version: undefined }, null, 2) : null);
  return { uid: after.uid!, title: after.title, beforeVersion: creating ? null : at!.summary.version, before: creating ? null : base, after, diff: fileDiff(`/grafana/${after.uid}.json`, creating ? null : strip(base), strip(after)) };
}

function designRetention(c: ObservabilityChange, file: ObsFile | undefined): { change: FileChange; restart: string } {
  const spec = c.spec;
  const time = specString(spec, "retention");
  const size = specString(spec, "size");
  if (!time && !size) throw new AgentError("bad-input", "how long (e.g. 30d) or how much (e.g. 50GB) should Prometheus keep?");
  if (time && !/^\d+(?:h|d|w|y)$/.test(time)) throw new AgentError("bad-input", `retention ${time} is not a duration such as 15d or 8w`);
  if (size && !/^\d+(?:MB|GB|TB)$/.test(size)) throw new AgentError("bad-input", `retention size ${size} is not a size such as 50GB`);
  if (!file || file.content === null) throw new AgentError("bad-input", "the deployment's config does not say where Prometheus's retention flags live (observability.prometheus.retentionFile): retention cannot be changed from here");
  let after = file.content;
  const set = (flag: string, value: string) => {
    const re = new RegExp(`(--${flag.replace(/\./g, "\\.")}[=\\s]+)(["']?)([^\\s"',\\]]+)\\2`);
    if (re.test(after)) after = after.replace(re, `$1$2${value}$2`);
    else {
      const anchor = /^(\s*-\s*["']?)--config\.file[=\s][^\n]*$/m.exec(after);
      if (!anchor) throw new AgentError("bad-input", `${file.path} has no --${flag} flag and no --config.file line to add it beside; set it by hand`);
      after = `${after.slice(0, anchor.index + anchor[0].length)}\n${anchor[1]}--${flag}=${value}${/["']$/.test(anchor[1]!) ? anchor[1]!.slice(-1) : ""}${after.slice(anchor.index + anchor[0].length)}`;
    }
  };
  if (time) set("storage.tsdb.retention.time", time);
  if (size) set("storage.tsdb.retention.size", size);
  if (after === file.content) throw new AgentError("in-place", `Prometheus already keeps ${[time, size].filter(Boolean).join(" / ")} (${file.path})`);
  return { change: { target: "retention", path: file.path, before: file.content, after, diff: fileDiff(file.path, file.content, after) }, restart: `Prometheus reads --storage.tsdb.retention.* only at start: restart it (${file.path}) for the new retention to take effect` };
}

/** The expressions of panels a dashboard change adds (panels it already had are not this change's to check). */
function newPanelExprs(d: DashboardChange): string[] {
  const had = new Set((d.before?.panels ?? []).map((p) => JSON.stringify(p)));
  return (d.after?.panels ?? []).filter((p) => !had.has(JSON.stringify(p))).flatMap((p) => ((p as { targets?: { expr?: string }[] }).targets ?? []).map((t) => t.expr ?? ""));
}

/** A PrometheusRule manifest (prometheus-operator) holding a rule file's groups, for GitOps. */
export function prometheusRule(name: string, ruleFile: string): string {
  const groups = (parseDocument(ruleFile).toJSON() as { groups?: unknown } | null)?.groups ?? [];
  const doc = new Document({ apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: name.replace(/\.ya?ml$/, "").replace(/[^a-z0-9-]+/gi, "-").toLowerCase(), labels: { "app.kubernetes.io/managed-by": "honua-agent" } }, spec: { groups } });
  return doc.toString({ lineWidth: 0 });
}

export interface Found {
  files: ObsFile[];
  dashboards: { summary: DashboardSummary; model: DashboardModel }[];
  /** Where the agent's own rule file goes. */
  agentRulesPath: string;
  /** Write PrometheusRule manifests beside the rule files (GitOps). */
  manifests: boolean;
  /** False when the deployment has no Grafana configured. */
  grafana?: boolean;
}

/**
 * The whole change, designed against what the deployment holds now: rule YAML edited in place (comments and the other
 * rules untouched), the route tree, dashboard models, retention flags; each as a diff for the gate.
 */
export function designChanges(changes: readonly ObservabilityChange[], found: Found): Design {
  const rules = new RuleFiles(found.files);
  const am = found.files.find((f) => f.target === "alertmanager");
  let amDoc: Document | null = null;
  const ruleChanges: RuleChange[] = [];
  const routes: RouteExpectation[] = [];
  const dashboards: DashboardChange[] = [];
  const retention: FileChange[] = [];
  const restart: string[] = [];
  const summary: string[] = [];
  const notes: string[] = [];
  for (const c of changes) {
    switch (c.kind) {
      case "alert-rule":
      case "recording-rule": {
        const r = c.action === "remove" ? designRuleRemove(c, rules) : c.action === "modify" || (c.action === "add" && c.name && rules.find(c.name).length && c.spec && !c.spec.metric && !c.spec.expr) ? designRuleModify(c, rules) : c.kind === "alert-rule" ? designAlertAdd(c, rules, found.agentRulesPath) : designRecordAdd(c, rules, found.agentRulesPath);
        ruleChanges.push(r);
        summary.push(`${r.action} ${r.type === "alert" ? "alert" : "recording rule"} ${r.name}${r.expr && r.action !== "remove" ? `: ${r.expr}${r.for ? ` for ${r.for}` : ""}` : ""}`);
        break;
      }
      case "alert-route": {
        if (!am || am.content === null) throw new AgentError("bad-input", "the deployment has no Alertmanager config the agent may edit (observability.alertmanager.configFile)");
        amDoc ??= parseDocument(am.content);
        if (amDoc.errors.length) throw new AgentError("failed", `${am.path} is not valid YAML as found (${amDoc.errors[0]!.message})`);
        const r = designRoute(c, amDoc);
        if (r.expectation) routes.push(r.expectation);
        summary.push(r.summary);
        break;
      }
      case "dashboard": {
        if (found.grafana === false) throw new AgentError("bad-input", "the deployment has no Grafana configured (observability.grafana { url, token: env:VAR }): dashboards cannot be changed from here");
        const d = designDashboard(c, found.dashboards.map((x) => {
          const already = dashboards.find((y) => y.uid === x.summary.uid);
          return already?.after ? { summary: x.summary, model: already.after } : x;
        }));
        const i = dashboards.findIndex((x) => x.uid === d.uid);
        if (i >= 0) dashboards[i] = { ...d, beforeVersion: dashboards[i]!.beforeVersion, before: dashboards[i]!.before };
        else dashboards.push(d);
        summary.push(d.after === null ? `delete dashboard "${d.title}"` : `${d.beforeVersion === null ? "create" : "update"} dashboard "${d.title}"`);
        break;
      }
      case "retention": {
        const r = designRetention(c, found.files.find((f) => f.target === "retention"));
        retention.push(r.change);
        restart.push(r.restart);
        summary.push(`retention ${[specString(c.spec, "retention"), specString(c.spec, "size")].filter(Boolean).join(", ")} (needs a Prometheus restart)`);
        break;
      }
    }
  }
  const files: FileChange[] = [];
  for (const [target, { doc, file }] of rules.docs) {
    const after = dump(doc);
    if (after === file.content) continue;
    files.push({ target, path: file.path, before: file.content, after, diff: fileDiff(file.path, file.content, after) });
    if (found.manifests) {
      const m = FileTarget.parse(`manifest:${target.slice("rules:".length)}`);
      const prev = found.files.find((f) => f.target === m);
      const content = prometheusRule(target.slice(6), after);
      if (prev?.content !== content) files.push({ target: m, path: prev?.path ?? m, before: prev?.content ?? null, after: content, diff: fileDiff(prev?.path ?? m, prev?.content ?? null, content) });
    }
  }
  if (amDoc && am) {
    const after = dump(amDoc);
    if (after !== am.content) files.push({ target: "alertmanager", path: am.path, before: am.content, after, diff: fileDiff(am.path, am.content, after) });
  }
  files.push(...retention);
  for (const d of dashboards) if (d.after === null) notes.push(`Deleting "${d.title}" drops its version history in Grafana; a rollback re-creates it from the model kept in the run's journal.`);
  const recorded = [...rules.recorded(), ...ruleChanges.filter((r) => r.type === "record" && r.action !== "remove").map((r) => r.name)];
  const exprs = [...ruleChanges.filter((r) => r.action !== "remove" && r.expr).map((r) => r.expr!), ...dashboards.flatMap((d) => newPanelExprs(d))];
  const metrics = [...new Set(exprs.flatMap((e) => (e ? metricNames(e) : [])))].filter((m) => !recorded.includes(m) && m !== "ALERTS" && m !== "ALERTS_FOR_STATE").sort();
  return {
    files,
    dashboards,
    rules: ruleChanges,
    routes,
    metrics,
    recorded,
    removal: changes.some((c) => c.action === "remove") || ruleChanges.some((r) => r.action === "remove") || dashboards.some((d) => d.after === null),
    restart,
    notes,
    summary,
  };
}
