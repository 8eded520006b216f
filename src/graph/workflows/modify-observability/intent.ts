import { Text, anyOf, between, escapeRe, inOrder, matchAll, type Matcher } from "../../../core/text.js";
import { UNIT, clauses, promDuration } from "../../../core/grammar.js";
import type { Extraction, WorkflowIntent } from "../module.js";
import type { ObservabilityChange } from "./params.js";

type ObservabilityKind = ObservabilityChange["kind"];
type ObservabilityAction = ObservabilityChange["action"];

/** First match wins: the most specific kind of change a clause talks about. */
const KINDS: readonly (readonly [ObservabilityKind, Matcher])[] = [
  ["recording-rule", /\brecording rules?\b/],
  ["retention", /\bretention\b|\bkeep (?:prometheus |the )?metrics\b/],
  [
    "alert-route",
    anyOf(
      /\b(?:route|routes|routed|routing|reroute|receivers?)\b/,
      inOrder(/\b(?:send|forward|pipe|deliver|direct)\b/, /\b(?:alerts?|notifications?)\b/, /\bto\b/),
      inOrder(/\balerts?\b/, /\b(?:go|goes|should go)\s+to\b/),
    ),
  ],
  ["dashboard", /\b(?:dashboards?|panels?)\b/],
  ["alert-rule", /\b(?:alerts?|alerting|alarms?|threshold)\b|\bpage (?:me|us|oncall|on-call|the)\b|\bnotify (?:me|us)\b/],
  ["dashboard", /\bgrafana\b/],
];
const ACTIONS: readonly (readonly [ObservabilityAction, RegExp])[] = [
  ["remove", /\b(?:remove|delete|drop|disable|stop|get rid of|retire|deprecate|kill)\b/],
  ["add", /\b(?:add|create|set up|setup|new|build|make|install|introduce)\b/],
  ["modify", /\b(?:change|modify|update|raise|lower|increase|decrease|bump|tune|adjust|set|edit|rename|tweak|reduce|extend|tighten|loosen)\b/],
];
const COMPARATORS: Record<string, string> = {
  above: ">", over: ">", exceeds: ">", exceed: ">", exceeding: ">", "greater than": ">", "more than": ">",
  "higher than": ">", crosses: ">", ">": ">", ">=": ">=", below: "<", under: "<", "less than": "<",
  "lower than": "<", "<": "<", "<=": "<=",
};
const CONDITION_START = /\b(?:when|if|whenever|once|on|for)\s+(?:the\s+)?/;
const CONDITION_END = new RegExp(
  String.raw`\s*(?:is\s+|are\s+|goes\s+|gets\s+|rises\s+|climbs\s+|jumps\s+|spikes\s+|stays\s+|drops\s+|falls\s+|dips\s+)?(` +
    Object.keys(COMPARATORS).sort((a, b) => b.length - a.length).map(escapeRe).join("|") +
    String.raw`)\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|%)?`,
);
/** "when <subject> <comparator> <number><unit>": subject, comparator, number, unit, and where it ends. */
function condition(lower: string): { subject: string; op: string; value: string; unit: string | undefined; end: number } | null {
  const b = between(lower, CONDITION_START, CONDITION_END);
  return b ? { subject: b.inner, op: b.suffix[1] ?? "", value: b.suffix[2] ?? "", unit: b.suffix[3], end: b.end } : null;
}
const SUBJECT = /\b(?:when|if|whenever|on|for)\s+(?:the\s+)?(?:high|low|elevated|increased|rising|spiking|slow)?\s*(.+)$/;
const FOR_DURATION = new RegExp(String.raw`\bfor\s+(\d+)\s*${UNIT}\b`);
const SEVERITY = /\b(critical|warning|info)\b/;
/** CamelCase words that are products, not alert names. */
const PRODUCT_NAMES = new Set([
  "pagerduty", "opsgenie", "cloudfront", "opensearch", "elasticsearch", "elasticache", "postgresql", "postgis", "github",
  "dynamodb", "victorops", "alertmanager", "honua",
]);
const CAMEL_NAME = /\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b/g;
const QUOTED = /"([^"]+)"|`([^`]+)`/;

function ruleName(c: Text): string | undefined {
  const quoted = QUOTED.exec(c.orig);
  if (quoted) return quoted[1] ?? quoted[2];
  const called = /\b(?:called|named|titled)\s+([\w:.-]+(?:\s+[A-Z][\w-]*)*)/.exec(c.orig);
  if (called) return called[1];
  return (c.orig.match(CAMEL_NAME) ?? []).find((w) => !PRODUCT_NAMES.has(w.toLowerCase()));
}

/** "p95 latency" -> p95_latency_ms, "cache hit ratio" -> cache_hit_ratio; latency is always in ms. */
function metricName(phrase: string): string {
  const words = phrase
    .toLowerCase()
    .replace(/[^a-z0-9_\s]/g, " ")
    .split(/\s+/)
    .filter((w) => w && !["the", "a", "an", "our", "is", "are", "of"].includes(w));
  if (words.length === 1 && /^p\d{2,3}$/.test(words[0] ?? "")) words.push("latency");
  const name = words.join("_");
  return /latency|duration|response_time/.test(name) && !name.endsWith("_ms") ? `${name}_ms` : name;
}

function threshold(metric: string, value: string, unit = ""): number {
  const n = Number(value);
  if (unit === "%") return Number((n / 100).toFixed(6));
  if (/^s/.test(unit) && metric.endsWith("_ms")) return n * 1000;
  return n;
}

function alertRuleSpec(c: Text, action: ObservabilityAction): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const cond = condition(c.lower);
  if (cond) {
    const metric = metricName(cond.subject);
    if (metric && (action === "add" || !/\b(?:threshold|alert)\b/.test(cond.subject))) spec.metric = metric;
    spec.op = COMPARATORS[cond.op];
    spec.threshold = threshold(metric, cond.value, cond.unit);
  } else if (action === "modify") {
    const to = new RegExp(String.raw`\b(?:to|at|of)\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|%)?`).exec(c.lower);
    if (to) spec.threshold = threshold(/latency/.test(c.lower) ? "_ms" : "", to[1] ?? "", to[2]);
  } else if (action === "add") {
    const subject = SUBJECT.exec(c.lower);
    const metric = metricName(subject?.[1] ?? "");
    if (metric) spec.metric = metric;
  }
  const duration = FOR_DURATION.exec(c.lower.slice(cond ? cond.end : 0));
  if (duration && cond) spec.for = promDuration(duration[1] ?? "", duration[2] ?? "m");
  const severity = SEVERITY.exec(c.lower);
  if (severity) spec.severity = severity[1];
  return spec;
}

function routeSpec(c: Text): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const severity = SEVERITY.exec(c.lower);
  if (severity) spec.severity = severity[1];
  const receivers = matchAll(/\bto\s+(?:the\s+)?(#[\w-]+|@[\w.-]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|[A-Za-z][\w-]*)/, c.orig);
  const receiver = receivers.at(-1)?.[1];
  if (receiver && !/^(?:go|be)$/i.test(receiver)) spec.receiver = receiver;
  const alert = ruleName(c);
  if (alert && alert !== receiver) spec.alertname = alert;
  return spec;
}

/**
 * "… for <subject> [to|on|in|into <a dashboard>]": what the panels show, without the dashboard they go on. Linear:
 * the first "to/on/in/into" with the word dashboard somewhere after it ends the subject (as the lazy regex
 * `for\s+(.+?)(?:\s+(?:to|on|in|into)\s+\S.*\bdashboard\b.*)?$` did, without trying every position).
 */
function panelSubject(orig: string): string | undefined {
  const start = /\b(?:for|showing|with|tracking)\s+/.exec(orig);
  if (!start) return undefined;
  const rest = orig.slice(start.index + start[0].length);
  if (rest === "") return undefined;
  let lastDashboard = -1;
  for (const m of rest.matchAll(/\bdashboard\b/g)) lastDashboard = m.index;
  const into = /\s+(?:to|on|in|into)\s+(?=\S)/g;
  into.lastIndex = 1;
  const m = into.exec(rest);
  return m && lastDashboard >= m.index + m[0].length + 1 ? rest.slice(0, m.index) : rest;
}

function dashboardParts(c: Text, action: ObservabilityAction): Pick<ObservabilityChange, "name" | "spec"> {
  const out: Pick<ObservabilityChange, "name" | "spec"> = {};
  const called = /\b(?:called|named|titled)\s+("[^"]+"|`[^`]+`|[\w-]+(?:\s+[A-Z][\w-]*)*)/.exec(c.orig);
  const the = between(c.orig, /\bthe\s+/, /\s+(?:grafana\s+)?dashboard\b/)?.inner;
  const name = called?.[1]?.replace(/^["`]|["`]$/g, "") ?? (action !== "add" && the && !/^(?:grafana|new)$/i.test(the) ? the : undefined);
  if (name) out.name = name;
  const word = /\b(?:dashboards?|panels?)\b/.exec(c.lower);
  const after = word ? c.slice(word.index) : c;
  const subject = panelSubject(after.orig) ?? (action === "add" && !name ? between(c.orig, /\b(?:an?|new)\s+/, /\s+(?:grafana\s+)?dashboard\b/)?.inner : undefined);
  const panels = subject
    ?.split(/\s*(?:,|\band\b|&)\s*/)
    .map((p) => p.replace(/\b(?:panels?|grafana|new)\b/gi, "").trim())
    .filter((p) => p !== "");
  if (panels?.length) out.spec = { panels };
  return out;
}

function observabilityChange(c: Text): ObservabilityChange | undefined {
  const kind = KINDS.find(([, re]) => re.test(c.lower))?.[0];
  if (!kind) return undefined;
  const firstVerb = ACTIONS.flatMap(([action, re]) => {
    const m = re.exec(c.lower);
    return m ? [{ action, at: m.index }] : [];
  }).sort((a, b) => a.at - b.at)[0];
  let action: ObservabilityAction = kind === "retention" ? "modify" : firstVerb?.action ?? "add";
  const change: ObservabilityChange = { kind, action };
  if (kind === "retention") {
    const d = new RegExp(String.raw`(\d+)\s*${UNIT}\b`).exec(c.lower);
    const size = /(\d+)\s*(gb|tb|mb)\b/.exec(c.lower);
    const spec: Record<string, unknown> = {};
    if (d) spec.retention = promDuration(d[1] ?? "", d[2] ?? "d");
    if (size) spec.size = `${size[1]}${(size[2] ?? "").toUpperCase()}`;
    if (Object.keys(spec).length) change.spec = spec;
    return change;
  }
  if (kind === "dashboard") {
    // Adding a panel changes an existing dashboard.
    if (action === "add" && /\bpanels?\b/.test(c.lower) && inOrder(/\b(?:to|on|in|into)\s+(?:the|our|an?\s+existing)\b/, /\bdashboard\b/).test(c.lower)) action = "modify";
    return { ...change, action, ...dashboardParts(c, action) };
  }
  if (kind === "alert-route") {
    const spec = routeSpec(c);
    return Object.keys(spec).length ? { ...change, spec } : change;
  }
  const name = ruleName(c) ?? (action !== "add" ? between(c.orig, /\bthe\s+/, /\s+(?:alert(?:ing)? rule|alert|alarm|recording rule)s?\b/)?.inner : undefined);
  if (name) change.name = name;
  if (kind === "recording-rule") {
    const idName = /\b([a-z_][a-z0-9_]*(?::[a-z0-9_]+)+)\b/i.exec(c.orig)?.[1];
    if (idName) change.name = idName;
    const expr = /`([^`]+)`/.exec(c.orig)?.[1] ?? /\b(?:expr(?:ession)?\s*[:=]?|=)\s*(.+)$/.exec(c.orig)?.[1];
    const subject = /\bfor\s+(.+)$/.exec(c.lower)?.[1];
    if (expr) change.spec = { expr: expr.trim() };
    else if (subject && !idName) change.spec = { metric: metricName(subject) };
    return change;
  }
  const spec = alertRuleSpec(c, action);
  if (Object.keys(spec).length) change.spec = spec;
  return change;
}

/** Asked when no concrete change was given (the model planner asks the same). */
export const CHANGES_QUESTION =
  "What should change? I can add, modify or remove alert rules, recording rules, dashboards and alert routes, or set Prometheus retention.";

/** "raise it to 800 ms", "lower it to 0.1": a new threshold for the alert the clause before named. */
const RETUNE = /\b(raise|increase|bump|lower|decrease|reduce|set|change|move|make)\b.*?\bto\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|%)?/;
/** What an alert or panel watches when the request names it without a condition ("a high error rate alert"). */
const MEASURE_WORDS: readonly (readonly [RegExp, string])[] = [
  [/\berror(?:s| rate)?\b|\b5xx\b/, "error_rate"],
  [/\bcache hit (?:rate|ratio)\b|\bhit (?:rate|ratio)\b/, "cache_hit_ratio"],
  [/\bp99\b/, "p99_latency_ms"],
  [/\btiles?\b.*\blatency\b/, "tile_latency_ms"],
  [/\bp95\b|\blatency\b/, "p95_latency_ms"],
];
const PAGES = /\bpages?\s+(?:on-?call|oncall|someone|us|me)\b|\bpaging\b|\bwake\b/;

/** Reads what a clause leaves implicit: the measure of "a high error rate alert", "pages on-call" as critical, "a cache hit rate panel". */
function implicit(c: Text, change: ObservabilityChange): ObservabilityChange {
  if (change.kind === "alert-rule" && change.action === "add" && change.spec?.metric === undefined && change.spec?.expr === undefined) {
    const metric = MEASURE_WORDS.find(([re]) => re.test(c.lower))?.[1];
    if (metric && !change.name) change = { ...change, spec: { ...change.spec, metric } };
    if (PAGES.test(c.lower) && change.spec?.severity === undefined) change = { ...change, spec: { ...change.spec, severity: "critical" } };
  }
  if (change.kind === "dashboard" && change.spec?.panels === undefined) {
    const panel = /\b(?:an?|new)\s+(.+?)\s+panels?\b/.exec(c.lower)?.[1]?.replace(/\b(?:grafana|new)\b/g, "").trim();
    if (panel) change = { ...change, action: change.action === "add" ? "modify" : change.action, spec: { ...change.spec, panels: [panel] } };
  }
  return change;
}

function extract(t: Text): Extraction {
  const found: ObservabilityChange[] = [];
  for (const c of clauses(t)) {
    const change = observabilityChange(c);
    if (change) {
      found.push(implicit(c, change));
      continue;
    }
    // "the TileLatencyHigh alert is too noisy, raise it to 800 ms": the second clause retunes the first one's alert.
    const prev = found.at(-1);
    const m = RETUNE.exec(c.lower);
    if (prev && m && prev.kind === "alert-rule" && prev.name) {
      found[found.length - 1] = { ...prev, action: "modify", spec: { ...prev.spec, threshold: threshold(/latency|tile/i.test(prev.name) ? "_ms" : "", m[2] ?? "", m[3]) } };
    }
  }
  // A change with neither a name nor a spec ("set up alerting") says nothing the Design step could act on.
  const changes = found.filter((c) => c.name !== undefined || c.spec !== undefined);
  if (changes.length === 0) return { params: {}, missing: [{ param: "changes", question: CHANGES_QUESTION }], claimed: [] };
  const claimed = changes
    .flatMap((c) => [c.name, c.spec?.receiver, c.spec?.alertname])
    .flatMap((v) => (typeof v === "string" ? [v.toLowerCase().replace(/^[#@]/, "")] : []));
  return { params: { changes }, missing: [], claimed };
}

export const intent: WorkflowIntent = {
  signals: [
    // Outweighs every other workflow's words together: in "a dashboard for storage backend latency" they are the subject.
    [/\b(?:alerts?|alerting|alertmanager|dashboards?|panels?|grafana|prometheus|recording rules?|retention|alarms?)\b/, 12],
    [/\bpage (?:me|us|oncall|on-call|the)\b|\bnotify (?:me|us)\b|\bthreshold\b/, 3],
  ],
  sqlScore: 0,
  vocabulary: {
    triggers: ["dashboard", "dashboards", "alert", "alerts", "alerting", "alertmanager", "grafana", "prometheus", "retention", "recording", "latency"],
    notTypos: ["avert", "alter", "alters", "altered", "altering", "alerted"],
    notDeployments: [
      "alerts", "alert", "dashboard", "dashboards", "latency", "errors", "error", "critical", "warning", "info", "oncall", "on-call",
      "slack", "email", "pagerduty", "opsgenie", "grafana", "prometheus", "alertmanager", "retention", "p95", "p99", "p50",
      "team", "channel", "someone", "anyone",
    ],
    things: ["dashboard", "channel", "team", "alert", "alerts", "metric", "metrics"],
    safeObjects: ["alerts?", "alerting", "rules?", "dashboards?", "panels?", "routes?", "routing", "receiver", "retention", "threshold"],
  },
  capability: "change observability (alert rules, recording rules, dashboards, alert routes, Prometheus retention)",
  listed: 20,
  extract,
};
