/** Plain-text answers from tool results: what the rule-based conversation says, and the fallback when a model cannot. */
import { usd as dollars } from "../core/text.js";
import type { MetricsSummary } from "../core/metrics.js";
import type { CostEstimate } from "../graph/workflows/module.js";
import { renderMetrics, stageName } from "../render.js";
import type { ToolCall, ToolResult } from "./tools.js";

type Data = Record<string, unknown>;
const pct = (x: unknown) => (typeof x === "number" ? `${(x * 100).toFixed(1)}%` : "n/a");
const usd = (x: unknown) => (typeof x === "number" ? dollars(x) : "n/a");
const asMetrics = (x: unknown): MetricsSummary | null => (x && typeof x === "object" ? (x as MetricsSummary) : null);

function status(d: Data): string {
  const p = d.pending as { step: string; stage: number | null; kind: string; action: string; why: string; risk: string; approvers: string[]; expiresAt: string | null } | null;
  const head = `Run ${d.run} (${d.workflow} on ${d.deployment}) is ${d.status}${d.outcome ? `: ${d.outcome}` : ""}.`;
  if (!p) {
    const last = d.lastStep as { name: string; status: string; error: string | null } | null;
    return last ? `${head} Last step: ${last.name} (${last.status}${last.error ? `: ${last.error}` : ""}).` : head;
  }
  const what = p.kind === "paused" ? "It is paused" : p.kind === "inconclusive" ? "It paused because monitoring was inconclusive" : p.kind === "rollback" ? "A rollback request is waiting for an approver" : `It is waiting for a ${p.kind} approval`;
  return [
    head,
    `${what} at ${p.step}${p.stage !== null ? ` (${stageName(p.stage)})` : ""}: ${p.why || p.action}`,
    p.kind === "paused" ? "" : `If approved: ${p.action}. Risk: ${p.risk}`,
    `Approvers: ${p.approvers.join(", ")}${p.expiresAt ? ` · expires ${p.expiresAt}` : ""}.`,
  ].filter(Boolean).join("\n");
}

function metrics(d: Data): string {
  const now = asMetrics(d.now);
  const lines = [
    now ? `Now on ${d.deployment}: hit ratio ${pct(now.hitRatio)}, ${renderMetrics(now)}` : `No live reading (${d.nowNote}).`,
    `Before the change: ${renderMetrics(asMetrics(d.before))}`,
  ];
  if (d.after) lines.push(`After: ${renderMetrics(asMetrics(d.after))}`);
  const at = (d.atDecision as { step: string; stage: number | null; decision: string; by: string; metrics: MetricsSummary | null }[]) ?? [];
  for (const x of at) lines.push(`At ${x.decision} of ${x.step}${x.stage !== null ? ` ${stageName(x.stage)}` : ""} by ${x.by}: ${x.metrics ? `p95 ${x.metrics.p95Ms} ms, errors ${pct(x.metrics.errorRate)}, hit ratio ${pct(x.metrics.hitRatio)}` : "no window recorded yet"}`);
  return lines.join("\n");
}

function plan(d: Data): string {
  const steps = (d.steps as { name: string; gated: boolean }[]).map((s, i) => `${i + 1}. ${s.name}${s.gated ? " [gate]" : ""}`).join(", ");
  const design = typeof d.design === "string" ? d.design : null;
  const lines = [`Request by ${d.requestedBy}: "${d.request}" -> ${d.workflow} on ${d.deployment}.`, `Steps: ${steps}`];
  if (design) lines.push(`Design: ${design}`);
  if (d.appliedDiff) lines.push(`Config diff applied:\n${d.appliedDiff}`);
  const change = d.pendingChange as { config: { key: string; before: string | null; after: string | null }[]; resources: unknown[]; traffic: { from: number; to: number } | null } | null;
  if (change) {
    const parts = [
      ...change.config.map((c) => `${c.key}: ${c.before ?? "(unset)"} -> ${c.after ?? "(unset)"}`),
      ...change.resources.map((r) => JSON.stringify(r)),
      ...(change.traffic ? [`traffic ${change.traffic.from}% -> ${change.traffic.to}%`] : []),
    ];
    if (parts.length) lines.push(`Waiting for approval: ${parts.join("; ")}`);
  }
  return lines.join("\n");
}

function transcript(d: Data): string {
  const steps = (d.steps as { name: string; stage: number | null; stageValue?: number | null; status: string; error: string | null }[]).map((s) => `${s.name}${s.stage !== null ? ` ${stageName(s.stage, s.stageValue)}` : ""} ${s.status}${s.error ? ` (${s.error})` : ""}`);
  const decisions = (d.decisions as { step: string; decision: string; by: string }[]).map((x) => `${x.decision} ${x.step} by ${x.by}`);
  return [`Last ${steps.length} of ${d.totalSteps} steps: ${steps.join("; ") || "none yet"}.`, `Decisions: ${decisions.join("; ") || "none yet"}.`].join("\n");
}

function deployments(d: Data): string {
  return (d.deployments as { name: string; aliases: string[]; provider: string; approvers: string[]; lockedBy: string | null }[])
    .map((x) => `${x.name}${x.aliases.length ? ` (${x.aliases.join(", ")})` : ""}: ${x.provider}, approvers ${x.approvers.join(", ")}${x.lockedBy ? `, locked by ${x.lockedBy}` : ""}`)
    .join("\n");
}

function cost(d: Data): string {
  const e = d.estimate as CostEstimate | null;
  const lines = [e ? `Estimate: +${usd(e.addedMonthlyUsd)}/month added, -${usd(e.savingsMonthlyUsd)}/month ${e.savingsOf}, net ${usd(e.netMonthlyUsd)}/month (${e.basis}).` : "No cost estimate yet: the workflow has not estimated one."];
  if (d.monthlyTotalNow !== null && d.monthlyTotalNow !== undefined) lines.push(`Monthly now: ${usd(d.monthlyTotalNow)} (${Object.entries((d.monthlyNow as Record<string, number>) ?? {}).map(([k, v]) => `${k} ${usd(v)}`).join(", ")}).`);
  return lines.join("\n");
}

function control(call: ToolCall, d: Data): string {
  const st = d.status as string;
  const pending = d.pending as { step: string; kind: string } | null;
  switch (call.tool) {
    case "pause_run":
      return st === "paused" ? `Paused${pending ? ` at ${pending.step}` : ""}. Say "resume" to continue.` : `Pause recorded${call.args.reason ? ` (${call.args.reason})` : ""}: the run holds before its next step${pending ? `; it is waiting at ${pending.step} (${pending.kind}) now` : ""}. It does not resume by itself; say "resume" when ready.`;
    case "resume_run":
      return pending ? `Run is ${st}: waiting at ${pending.step} (${pending.kind})${pending.kind === "paused" ? "" : "; that gate still needs an approver's decision"}.` : `Resumed: the run is ${st}.`;
    case "cancel_run":
      return `Cancelled: the run is ${st}${d.outcome ? ` (${d.outcome})` : ""}${pending ? `; waiting at ${pending.step} (${pending.kind})` : ""}.`;
    case "request_rollback":
      return `${d.message}${pending ? ` (now waiting at ${pending.step}, ${pending.kind})` : ""}.`;
    case "revert_run":
      return `Reverting ${d.target} as a new run, ${d.revert}: it is ${st}${pending ? `, waiting at ${pending.step} (${pending.kind}) for an approver` : ""}. Each part goes back behind its own gate.`;
    default:
      return "";
  }
}

export function renderResult(call: ToolCall, result: ToolResult): string {
  if (!result.ok) return `${call.tool.replace(/_/g, " ")}: ${result.error}`;
  const d = result.data;
  switch (call.tool) {
    case "run_status":
      return status(d);
    case "metrics":
      return metrics(d);
    case "plan_and_diff":
      return plan(d);
    case "transcript_excerpt":
      return transcript(d);
    case "deployments":
      return deployments(d);
    case "cost":
      return cost(d);
    default:
      return control(call, d);
  }
}

export const HELP =
  'I can answer about this run: "status", "why did it pause?", "what\'s the hit rate now?", "how much will this cost?", ' +
  '"show me the plan again", "what happened so far?", "which deployments are locked?"; and act on it: "pause (until ...)", ' +
  '"resume", "cancel", "roll it back", and once it is done "revert it". Approvals are given with the buttons (or honua-agent approve|reject) by an approver.';

export const decisionDecline = (approvers: string): string =>
  `I can't approve, reject or skip a gate, and nothing said in this thread changes who may: decisions come from the approvers (${approvers}) through the approval buttons or honua-agent approve|reject.`;
