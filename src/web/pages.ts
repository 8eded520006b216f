import { MetricsSummary } from "../core/metrics.js";
import type { Monitoring } from "../core/monitoring.js";
import { RunStatus, type DecisionRecord } from "../core/records.js";
import type { StepRecord } from "../graph/state.js";
import { measuredOver, renderMetrics } from "../render.js";
import { renderVerify } from "../store/audit.js";
import { renderSectionHtml } from "../tools/sections.js";
import { beforeAfterChart, queryLogs, seriesChart, type ChartRule } from "./charts.js";
import type { GateView, RunRowView, RunsQuery, RunsView, RunView } from "./data.js";
import { stageOf } from "./data.js";
import { html, jsonBlock, trusted, type Html } from "../core/html.js";

/** Links a page may carry: `null` where the request's access does not reach that page (a link signed for one run). */
export type Linker = (path: string, query?: Record<string, string>) => string | null;

const STYLE = `
body{font:14px/1.45 "DejaVu Sans",system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:10px 20px}header a{color:#fff}
main{padding:16px 20px;max-width:1200px}
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:22px 0 8px;border-bottom:1px solid #d5d9e0}h3{font-size:14px;margin:6px 0}h4{margin:6px 0;font-size:13px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #d5d9e0;padding:3px 7px;text-align:left;vertical-align:top}th{background:#eef0f3}
pre{background:#fff;border:1px solid #d5d9e0;padding:6px;overflow:auto;max-height:420px;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;background:#dfe3e8}
.s-done,.v-healthy,.ok{background:#d3f2dc}.s-failed,.s-rolled-back,.v-degraded,.bad{background:#fbd5d5}.s-waiting,.s-paused,.v-inconclusive,.s-interrupted{background:#fdf0c4}
.s-rejected,.s-cancelled{background:#e4dcf5}
.step,.gate{background:#fff;border:1px solid #d5d9e0;border-left:4px solid #9aa5b1;margin:8px 0;padding:6px 10px}
.gate{border-left-color:#f2a100}.gate.decided-reject{border-left-color:#c0392b}.gate.decided-approve,.gate.decided-auto{border-left-color:#27ae60}
.step.failed,.step.degraded{border-left-color:#c0392b}
.row{display:flex;gap:16px;flex-wrap:wrap}.row>div{flex:1 1 420px}
.muted{color:#5f6b7a}.diff .add{color:#1e7b34}.diff .del{color:#b3261e}.diff .hunk{color:#6f42c1}
form.filters label{margin-right:10px}
.chart{background:#fff;border:1px solid #d5d9e0;padding:4px;margin:6px 0;overflow:auto}
`;

function page(title: string, body: Html, home: string | null): Html {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${title}</title><style>${trusted(STYLE)}</style></head><body><header>${home ? html`<a href="${home}">honua-agent runs</a>` : "honua-agent"} · read-only transcript viewer</header><main>${body}</main></body></html>`;
}

const badge = (cls: string, text: string): Html => html`<span class="badge ${cls}">${text}</span>`;
const statusBadge = (s: string): Html => badge(`s-${s}`, s);
const linkOr = (href: string | null, text: string): Html => (href ? html`<a href="${href}">${text}</a>` : html`${text}`);

// ------------------------------------------------------------------------------------------------ runs list

/** Links to the newer and older pages of the list, with its filters (signed when the list was reached by a link). */
function pager(v: RunsView, q: RunsQuery, link: Linker): Html {
  if (v.pages <= 1 && v.page === 1) return html``;
  const to = (page: number): string | null => {
    const query: Record<string, string> = {};
    for (const [k, val] of Object.entries(q)) if (k !== "page" && val !== undefined) query[k] = String(val);
    if (page > 1) query.page = String(page);
    return link("/", query);
  };
  const newer = v.page > 1 ? to(Math.min(v.page - 1, v.pages)) : null;
  const older = v.page < v.pages ? to(v.page + 1) : null;
  return html`<nav class="pager">${newer ? html`<a rel="prev" href="${newer}">← newer</a>` : ""}${newer && older ? " · " : ""}${older ? html`<a rel="next" href="${older}">older →</a>` : ""}</nav>`;
}

export function runsPage(v: RunsView, q: RunsQuery, link: Linker, hidden: Record<string, string>): Html {
  const select = (name: keyof RunsQuery, label: string, values: readonly string[]) =>
    html`<label>${label} <select name="${name}"><option value="">any</option>${values.map((x) => html`<option value="${x}"${q[name] === x ? html` selected` : ""}>${x}</option>`)}</select></label>`;
  const waits = (r: RunRowView): Html =>
    r.waitingOn
      ? html`${r.waitingOn.kind === "paused" ? "held before" : `${r.waitingOn.kind} approval of`} <b>${r.waitingOn.step}</b>${r.waitingOn.stage ? ` (${r.waitingOn.stage})` : ""}${r.waitingOn.kind === "paused" ? "" : html` · by ${r.waitingOn.approvers.join(", ")}`}${r.waitingOn.expiresAt ? html` · expires ${r.waitingOn.expiresAt}` : ""}`
      : html``;
  const body = html`<h1>Runs</h1>
<form class="filters" method="get" action="/">${Object.entries(hidden).map(([k, val]) => html`<input type="hidden" name="${k}" value="${val}">`)}
${select("deployment", "deployment", v.choices.deployment)}${select("workflow", "workflow", v.choices.workflow)}${select("status", "status", RunStatus.options)}${select("requester", "requester", v.choices.requester)}
<button type="submit">filter</button></form>
<p class="muted">${v.matched} of ${v.total} runs${v.matched !== v.total ? " match" : ""}${v.pages > 1 ? `; page ${v.page} of ${v.pages}` : ""}${v.rows.length > 0 && v.pages > 1 ? ` (${v.first}–${v.first + v.rows.length - 1})` : ""}${v.rows.length === 0 && v.page > v.pages ? `; no runs on page ${v.page}` : ""}</p>
${pager(v, q, link)}
<table id="runs"><thead><tr><th>run</th><th>workflow</th><th>deployment</th><th>status</th><th>requested by</th><th>started</th><th>waiting on</th></tr></thead><tbody>
${v.rows.map((r) => html`<tr data-run="${r.run}"><td>${linkOr(link(`/runs/${encodeURIComponent(r.run)}`), r.run)}</td><td>${r.workflow}</td><td>${r.deployment}</td><td>${statusBadge(r.status)}</td><td>${r.requestedBy}</td><td>${r.startedAt}</td><td>${waits(r)}</td></tr>`)}
</tbody></table>`;
  return page("honua-agent runs", body, null);
}

// ------------------------------------------------------------------------------------------------ run page

const metricsLine = (m: MetricsSummary | null): Html => html`<span>${renderMetrics(m)}</span>`;

function configTable(changes: GateView["payload"]["change"]["config"]): Html {
  return html`<table class="config"><thead><tr><th></th><th>key</th><th>before</th><th>after</th></tr></thead><tbody>${changes.map(
    (c) => html`<tr><td>${c.before === null ? "+" : c.after === null ? "−" : "~"}</td><td><code>${c.key}</code></td><td>${c.before ?? html`<span class="muted">(unset)</span>`}</td><td>${c.after ?? html`<span class="muted">(unset)</span>`}</td></tr>`,
  )}</tbody></table>`;
}

function decisionHtml(d: DecisionRecord | null, g: GateView): Html {
  if (g.pending) return html`<div class="decision">${badge("s-waiting", "waiting for a decision")}${g.pending.expiresAt ? ` · expires ${g.pending.expiresAt}` : ""}</div>`;
  if (!d) return html`<div class="decision muted">no decision recorded</div>`;
  return html`<div class="decision"><b>${d.decision}</b> by <b>${d.by}</b> at ${d.at}${d.wallAt ? ` (wall ${d.wallAt})` : ""} · plan ${html`<code>${d.planHash}</code>`}${
    d.planHash === g.planHash ? "" : html` ${badge("bad", `card showed ${g.planHash}`)}`
  }${d.comment ? html`<div>comment: <q>${d.comment}</q></div>` : ""}</div>`;
}

function gateHtml(g: GateView): Html {
  const p = g.payload;
  const decided = g.decision ? `decided-${g.decision.decision}` : "";
  return html`<div class="gate ${decided}" data-gate="${p.step}"><h3>gate: ${p.kind} before ${p.step}${stageOf(p) ? ` (${stageOf(p)})` : ""}</h3>
<div class="row"><div class="shown"><h4>what the approver was shown</h4>
<div><b>what:</b> ${p.action}</div><div><b>why:</b> ${p.why}</div><div><b>risk:</b> ${p.risk}</div>
${p.change.config.length ? html`<h4>config</h4>${configTable(p.change.config)}` : ""}
${p.change.resources.length ? html`<h4>resources</h4>${jsonBlock(p.change.resources)}` : ""}
${p.change.traffic ? html`<div><b>traffic:</b> ${p.change.traffic.from}% → ${p.change.traffic.to}%</div>` : ""}
${(p.change.sections ?? []).map(renderSectionHtml)}
<div><b>metrics then:</b> ${metricsLine(p.metricsNow)}</div>
<div class="muted">approvers: ${p.approvers.join(", ")} · requested by ${p.requestedBy} · asked ${p.askedAt} · plan <code>${g.planHash}</code> ${g.hashVerifies ? badge("ok", "hash verifies") : badge("bad", "hash does not match this payload")}</div>
<details><summary>payload as JSON</summary>${jsonBlock({ ...p, planHash: g.planHash })}</details></div>
<div><h4>decision</h4>${decisionHtml(g.decision, g)}</div></div></div>`;
}

/** Transcript keys of the evidence a step's output names. */
function evidenceKeys(s: StepRecord): string[] {
  const out = s.output;
  if (!out || typeof out !== "object") return [];
  const e = (out as { evidence?: unknown }).evidence;
  return typeof e === "string" ? [e] : [];
}

/**
 * The lines a window's chart draws: the baseline it was judged against (the step's input, else the run's before) and
 * the limits over which it rolls back, from the deployment's monitoring settings.
 */
function chartRules(s: StepRecord | null, before: MetricsSummary | null, m: Monitoring | null): ChartRule[] {
  const given = s && s.input && typeof s.input === "object" ? MetricsSummary.safeParse((s.input as { baseline?: unknown }).baseline) : null;
  const b = given?.success ? given.data : before;
  const out: ChartRule[] = [];
  if (b?.p95Ms !== null && b?.p95Ms !== undefined) {
    out.push({ reading: "p95Ms", value: b.p95Ms, kind: "baseline" });
    if (m) out.push({ reading: "p95Ms", value: Math.max(b.p95Ms * m.latencyFactor, b.p95Ms + m.latencyMinDeltaMs), kind: "limit" });
  }
  if (b?.errorRate !== null && b?.errorRate !== undefined) out.push({ reading: "errorRate", value: b.errorRate, kind: "baseline" });
  if (m) out.push({ reading: "errorRate", value: m.errorRateThreshold, kind: "limit" });
  return out;
}

async function evidenceHtml(key: string, body: unknown, rules: readonly ChartRule[] = []): Promise<Html> {
  const logs = queryLogs(body);
  if (logs.length === 0) return html`<details class="evidence" data-evidence="${key}"><summary>evidence ${key}</summary>${jsonBlock(body)}</details>`;
  const parts: Html[] = [];
  for (const { signal, log } of logs) {
    const svg = await seriesChart(log, signal === "serving" ? rules : []);
    parts.push(html`<div class="chart" data-evidence="${key}" data-signal="${signal}"><div class="muted">${signal}: ${log.source} · ${log.queries.length} series · ${log.queries[0]?.points.length ?? 0} points${log.noData.length ? ` · ${log.noData.length} points without data` : ""}</div>${
      svg ?? html`<div class="bad">no numeric point in this series</div>`
    }<details><summary>queries and raw values</summary>${log.queries.map((q) => html`<div><code>${q.query}</code> ${q.start} → ${q.end}, every ${q.stepSeconds} s</div>`)}${
      log.noData.length ? html`<h4>no data</h4>${log.noData.map((n) => html`<div>${n.at}: ${n.reason}</div>`)}` : ""
    }${jsonBlock(log.queries.map((q) => ({ reading: q.reading, points: q.points })))}</details></div>`);
  }
  return html`<div class="evidence"><h4>evidence ${key}</h4>${parts}</div>`;
}

async function stepHtml(s: StepRecord, i: number, v: RunView, used: Set<string>): Promise<Html> {
  const evidence = v.transcript.evidence;
  const stage = s.stage === null ? "" : stageOf({ stage: s.stage, stageValue: s.stageValue ?? null, stageCount: null });
  const charts: Html[] = [];
  for (const k of evidenceKeys(s)) {
    if (!(k in evidence)) continue;
    used.add(k);
    charts.push(await evidenceHtml(k, evidence[k], chartRules(s, v.transcript.metrics.before, v.monitoring)));
  }
  const cls = [s.status === "failed" ? "failed" : "", s.verdict === "degraded" ? "degraded" : ""].join(" ");
  return html`<div class="step ${cls}" data-step="${s.name}"><h3>${i + 1}. ${s.name}${stage ? ` · ${stage}` : ""} ${statusBadge(s.status)}${s.verdict ? html` ${badge(`v-${s.verdict}`, s.verdict)}` : ""}</h3>
<div class="muted">${s.startedAt} → ${s.endedAt}${s.wall ? ` (wall ${s.wall.startedAt} → ${s.wall.endedAt})` : ""}</div>
${s.error ? html`<div class="bad">error: ${s.error}</div>` : ""}
${charts}
<details><summary>input</summary>${jsonBlock(s.input)}</details><details><summary>output</summary>${jsonBlock(s.output)}</details></div>`;
}

const sameGateStep = (g: GateView, s: StepRecord) => g.payload.step === s.name && g.payload.stage === s.stage;

export async function runPage(v: RunView, link: Linker): Promise<Html> {
  const t = v.transcript;
  const used = new Set<string>();
  const placed = new Set<GateView>();
  const timeline: Html[] = [];
  for (const [i, s] of t.steps.entries()) {
    for (const g of v.gates) if (!placed.has(g) && sameGateStep(g, s)) (placed.add(g), timeline.push(gateHtml(g)));
    timeline.push(await stepHtml(s, i, v, used));
  }
  for (const g of v.gates) if (!placed.has(g)) timeline.push(gateHtml(g));
  const otherEvidence: Html[] = [];
  for (const [k, body] of Object.entries(t.evidence)) if (!used.has(k)) otherEvidence.push(await evidenceHtml(k, body, chartRules(null, t.metrics.before, v.monitoring)));
  const configChanges = v.gates.flatMap((g) => g.payload.change.config.map((c) => ({ ...c, step: g.payload.step, decision: g.decision?.decision ?? (g.pending ? "waiting" : "none") })));
  const bars = await beforeAfterChart(t.metrics.before, t.metrics.after);
  const chain = v.chain
    ? html`<p id="chain">${v.chain.broken ? badge("bad", "audit chain broken") : badge("ok", "audit chain verifies")} ${renderVerify([v.chain])}</p>`
    : html`<p id="chain">${badge("s-waiting", "no audit chain")} no audit entries for ${t.deployment} yet</p>`;
  const home = link("/");
  const body = html`<h1>Run <code>${t.run}</code></h1>
<p>${t.workflow} on <b>${t.deployment}</b> ${statusBadge(t.status)}${t.outcome ? html` — <span id="outcome">${t.outcome}</span>` : ""}</p>
<p>requested by <b>${t.requestedBy}</b>: <q id="request">${t.request}</q></p>
${chain}
<h2>Before / after</h2>
<div>before: ${metricsLine(t.metrics.before)}</div><div>after: ${metricsLine(t.metrics.after)}</div>
${t.metrics.after ? html`<div class="muted">after measured over ${measuredOver(t.metrics.after)}</div>` : ""}
${bars ? html`<div class="chart" id="before-after">${bars}</div>` : ""}
<h2>Timeline</h2>
<p class="muted">${t.steps.length} step records, ${v.gates.length} gates, ${t.decisions.length} decisions</p>
${timeline}
${v.unmatched.length ? html`<h2>Decisions without a gate in the checkpoint history</h2>${v.unmatched.map((d) => html`<div class="gate">${d.step}${d.stage !== null ? ` stage ${d.stage + 1}` : ""} [${d.kind}]: <b>${d.decision}</b> by ${d.by} at ${d.at} · plan <code>${d.planHash}</code>${d.comment ? html` · <q>${d.comment}</q>` : ""}</div>`)}` : ""}
${otherEvidence.length ? html`<h2>Other evidence</h2>${otherEvidence}` : ""}
<h2>Config changes</h2>
${configChanges.length ? html`<table id="config-changes"><thead><tr><th>gate</th><th>decision</th><th>key</th><th>before</th><th>after</th></tr></thead><tbody>${configChanges.map((c) => html`<tr><td>${c.step}</td><td>${c.decision}</td><td><code>${c.key}</code></td><td>${c.before ?? "(unset)"}</td><td>${c.after ?? "(unset)"}</td></tr>`)}</tbody></table>` : html`<p class="muted">no gate showed a config change</p>`}
<h2>Model calls</h2>
${t.modelCalls.length ? html`<table id="model-calls"><thead><tr><th>task</th><th>model</th><th>prompt</th><th>tokens in/out</th><th>latency</th><th>outcome</th><th>at</th></tr></thead><tbody>${t.modelCalls.map((c) => html`<tr><td>${c.task}</td><td>${c.model}</td><td>${c.promptVersion}</td><td>${c.inputTokens ?? "?"}/${c.outputTokens ?? "?"}</td><td>${c.latencyMs} ms</td><td>${c.outcome}${c.detail ? `: ${c.detail}` : ""}</td><td>${c.at}</td></tr>`)}</tbody></table>` : html`<p class="muted">no model calls (planned by the rules)</p>`}
<h2>Report</h2>
${v.report ? html`<pre id="report">${v.report}</pre>` : html`<p class="muted">no report${t.status === "done" ? "" : ` (the run ended ${t.status})`}</p>`}`;
  return page(`run ${t.run}`, body, home);
}

export function errorPage(status: number, message: string): Html {
  return page(`${status}`, html`<h1>${status}</h1><p>${message}</p>`, null);
}
