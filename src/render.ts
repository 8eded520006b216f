import { usd } from "./core/text.js";
import type { Pending, RunSummary, Transcript } from "./engine.js";
import type { RunEvent } from "./graph/events.js";
import type { MetricsSummary } from "./core/metrics.js";
import type { WorkflowDef } from "./graph/step.js";
import type { Plan } from "./planner/plan.js";
import { renderSection } from "./core/sections.js";
import { percentDone, type Progress } from "./core/progress.js";
import { workflowModule } from "./graph/workflows/registry.js";
import { renderDiff } from "./tools/config/diff.js";

const pct = (x: number | null) => (x === null ? "n/a" : `${(x * 100).toFixed(2)}%`);

/** A stage's one name, wherever it is shown: "stage 2 of 3 (50%)". `index` is 0-based; `value` the traffic percentage. */
export function stageName(index: number | null, value?: number | null, count?: number | null): string {
  if (index === null) return value === null || value === undefined ? "" : `${value}%`;
  return `stage ${index + 1}${count ? ` of ${count}` : ""}${value === null || value === undefined ? "" : ` (${value}%)`}`;
}

/** How a summary was measured, said with its figures: the span really observed, the samples, the traffic share it applies to. */
export function measuredOver(m: MetricsSummary): string {
  const observed = m.observedMinutes ?? m.windowMinutes;
  const span = observed < m.windowMinutes ? `${observed} min observed of the last ${m.windowMinutes} min asked` : `${m.windowMinutes} min`;
  const share = m.trafficShare === null || m.trafficShare === undefined ? "" : `, ${m.trafficShare}% of traffic on the change`;
  return `${m.samples} samples over ${span}${share}`;
}

export function renderMetrics(m: MetricsSummary | null): string {
  if (!m) return "no metrics";
  if (m.samples === 0) return `NO DATA (0 samples in ${m.windowMinutes} min)`;
  // A hit ratio read from responses that went through the cache says nothing about the requests that did not.
  const hit = m.hitRatio === null ? "hit ratio n/a" : `hit ratio ${pct(m.hitRatio)}${m.trafficShare !== null && m.trafficShare !== undefined && m.trafficShare < 100 ? " (of the requests through a cache)" : ""}`;
  const cost = m.monthlyCostUsd === null ? "" : ` · ${usd(m.monthlyCostUsd)}/month`;
  return `p95 ${m.p95Ms} ms · errors ${pct(m.errorRate)} · ${hit} · origin ${m.originRequestsPerSecond} req/s${cost} (${measuredOver(m)})`;
}

export function renderPlan(plan: Plan, def: WorkflowDef): string {
  const params = Object.keys(plan.params).length ? JSON.stringify(plan.params) : "(none given; the design step chooses and says why)";
  const steps = def.steps.map((s, i) => `  ${String(i + 1).padStart(2)}. ${s.name}${s.gated ? "  [gate: approval required]" : ""}`);
  return [`Plan: ${plan.workflow} on ${plan.deployment}`, `params: ${params}`, ...steps, def.unavailable ? `NOTE: cannot run in this version: ${def.unavailable}` : ""].filter(Boolean).join("\n");
}

export function renderGate(p: Pending): string {
  const g = p.gate;
  const lines = [
    `── ${g.kind === "paused" ? "PAUSED before" : g.kind === "rollback" ? "ROLLBACK REQUESTED before" : "APPROVAL NEEDED:"} ${g.step}${g.stage !== null ? ` (${stageName(g.stage, g.stageValue, g.stageCount)})` : ""} [${g.kind}] on ${g.deployment} ──`,
    `what:    ${g.action}`,
    `why:     ${g.why}`,
    `risk:    ${g.risk}`,
  ];
  if (g.change.config.length) lines.push("config:", ...renderDiff(g.change.config).split("\n").map((l) => `  ${l}`));
  if (g.change.resources.length) lines.push("resources:", ...g.change.resources.map((r) => `  ${JSON.stringify(r)}`));
  if (g.change.traffic) lines.push(`traffic: ${g.change.traffic.from}% -> ${g.change.traffic.to}%`);
  for (const sec of g.change.sections ?? []) {
    const r = renderSection(sec);
    lines.push(`${r.title}:`, ...r.lines.map((l) => `  ${l}`));
  }
  const who = g.kind === "paused" ? `${g.requestedBy} (requester) or ${g.approvers.join(", ")}` : g.approvers.join(", ");
  lines.push(`metrics now: ${renderMetrics(g.metricsNow)}`, `approvers: ${who} · requested by ${g.requestedBy} · plan ${p.planHash}${p.expiresAt ? ` · expires ${p.expiresAt}` : ""}`);
  return lines.join("\n");
}

export function renderSummary(s: RunSummary): string {
  return `run ${s.run} (${s.workflow} on ${s.deployment}): ${s.status}${s.outcome ? ` — ${s.outcome}` : ""}`;
}

export function renderEvent(e: RunEvent): string | null {
  switch (e.type) {
    case "step-start":
      return `▶ ${e.step}${e.stage !== null ? ` ${stageName(e.stage, e.stageValue)}` : ""}`;
    case "step-end":
      // A stage whose window rolled the run back is not a success: it gets the failure mark, whatever it returned.
      return `${e.status === "done" && e.verdict !== "degraded" ? (e.verdict === "inconclusive" ? "?" : "✔") : "✖"} ${e.step}${e.stage !== null ? ` ${stageName(e.stage, e.stageValue)}` : ""}${e.note ? `: ${e.note}` : ""}`;
    case "progress":
      return e.progress ? `  … ${e.step}: ${e.message}` : `  ${e.message.split("\n").join("\n  ")}`;
    case "rollback":
      return e.automatic ? `!!! AUTOMATIC ROLLBACK on run ${e.run}: ${e.reason}` : `!!! ROLLING BACK run ${e.run}: ${e.reason}`;
    case "decision":
      return `  decision on ${e.step}: ${e.decision} by ${e.by}`;
    case "finish":
      return `■ ${e.status}: ${e.reason}`;
    case "gate":
      return null;
  }
}

/**
 * Prints run events to a terminal. Structured progress (a batch copy's `{done, total, unit, rate}`) does not scroll a
 * line per batch: on a TTY one status line is rewritten in place and cleared before the next line; elsewhere (a log, a
 * pipe) a step's progress is printed when it starts, at each further tenth done and when it completes.
 */
export class TerminalEvents {
  /** Per running step: the last tenth printed (not a TTY). */
  private readonly tenths = new Map<string, number>();
  /** A progress line is on screen without its newline (TTY). */
  private transient = false;

  constructor(
    private readonly write: (s: string) => void,
    private readonly tty: boolean,
  ) {}

  event(e: RunEvent): void {
    if (e.type === "progress" && e.progress) return this.progress(e, e.progress);
    if (e.type === "step-start" || e.type === "step-end" || e.type === "finish") this.tenths.delete(`${e.run}:${"step" in e ? e.step : ""}`);
    const line = renderEvent(e);
    // A gate prints nothing here (the front shows it after the call returns): the status line is cleared for it too.
    const out = `${this.clear()}${line === null ? "" : `${line}\n`}`;
    if (out) this.write(out);
  }

  /** Ends a transient progress line (before the process prints anything else). */
  end(): void {
    const c = this.clear();
    if (c) this.write(c);
  }

  private clear(): string {
    if (!this.transient) return "";
    this.transient = false;
    return "\r\x1b[2K";
  }

  private progress(e: Extract<RunEvent, { type: "progress" }>, p: Progress): void {
    const line = renderEvent(e)!;
    if (this.tty) {
      this.write(`\r\x1b[2K${line}`);
      this.transient = true;
      return;
    }
    const key = `${e.run}:${e.step}`;
    const pct = percentDone(p);
    const tenth = p.done === p.total ? 10 : pct === null ? 0 : Math.floor(pct / 10);
    const last = this.tenths.get(key);
    if (last !== undefined && tenth <= last) return;
    this.tenths.set(key, tenth);
    this.write(`${line}\n`);
  }
}

export function renderTranscript(t: Transcript): string {
  const out = [
    `# Run ${t.run}: ${t.workflow} on ${t.deployment}`,
    "",
    `- status: **${t.status}**${t.outcome ? ` (${t.outcome})` : ""}`,
    `- requested by ${t.requestedBy}: "${t.request.replace(/[\r\n]+/g, " ")}"`,
    `- before: ${renderMetrics(t.metrics.before)}`,
    `- after: ${renderMetrics(t.metrics.after)}`,
    "",
    "## Steps",
    "",
    "| # | step | stage | status | started | ended |",
    "|---|---|---|---|---|---|",
    ...t.steps.map((s, i) => `| ${i + 1} | ${s.name} | ${stageName(s.stage, s.stageValue)} | ${s.status}${s.verdict && s.verdict !== "healthy" ? ` (${s.verdict})` : ""}${s.error ? `: ${s.error.replace(/\|/g, "\\|")}` : ""} | ${s.startedAt}${s.wall ? ` (wall ${s.wall.startedAt})` : ""} | ${s.endedAt} |`),
    "",
    "## Decisions",
    "",
    "| step | stage | kind | decision | by | at | plan |",
    "|---|---|---|---|---|---|---|",
    ...t.decisions.map((d) => `| ${d.step} | ${stageName(d.stage)} | ${d.kind} | ${d.decision} | ${d.by} | ${d.at}${d.wallAt ? ` (wall ${d.wallAt})` : ""} | ${d.planHash} |`),
  ];
  if (t.modelCalls.length) {
    out.push(
      "",
      "## Model calls",
      "",
      "| task | model | prompt | tokens in/out | latency | outcome | at |",
      "|---|---|---|---|---|---|---|",
      ...t.modelCalls.map((c) => `| ${c.task} | ${c.model} | ${c.promptVersion} | ${c.inputTokens ?? "?"}/${c.outputTokens ?? "?"} | ${c.latencyMs} ms | ${c.outcome}${c.detail ? `: ${c.detail.replace(/[|\r\n]+/g, " ")}` : ""} | ${c.at} |`),
    );
  }
  const report = workflowModule(t.workflow)?.facets?.report?.(t.steps) ?? null;
  if (report) out.push("", report);
  return out.join("\n");
}
