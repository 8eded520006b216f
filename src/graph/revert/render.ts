import { renderSection } from "../../core/sections.js";
import { renderDiff } from "../../tools/config/diff.js";
import type { RevertPlan } from "./check.js";

/** A revert's plan as plain lines (terminal, chat, Slack as code): what goes back, in the order it goes back. */
export function renderRevertPlan(p: RevertPlan): string {
  const { target, targetWorkflow } = p.plan.params;
  const lines = [`Revert ${target} (${targetWorkflow}) on ${p.plan.deployment}: a new run, newest change first, each part behind its gate.`];
  lines.push(`1. traffic [traffic gate]: ${p.traffic.length ? p.traffic.map((t) => `${t.feature} ${t.from}% -> ${t.to}%`).join(", ") : "nothing to move back"}`);
  lines.push(`2. config [provision gate]: ${p.config.length ? `${p.config.length} key(s) back to what the run found` : "nothing to put back"}`);
  if (p.config.length) lines.push(...renderDiff(p.config).split("\n").map((l) => `   ${l}`));
  lines.push(`3. delete [delete gate]: ${p.created.length ? p.created.map((c) => `${c.description}${c.id ? ` (${c.id})` : ""}`).join("; ") : "nothing the run created"}`);
  for (const s of p.sections) {
    const r = renderSection(s);
    lines.push(`${r.title}:`, ...r.lines.map((l) => `   ${l}`));
  }
  return lines.join("\n");
}

/** The plan as JSON for `revert --json` and the conversation's tool result. */
export const revertPlanJson = (p: RevertPlan) => ({
  revert: p.plan.params.target,
  workflow: p.plan.workflow,
  deployment: p.plan.deployment,
  traffic: p.traffic,
  config: p.config,
  created: p.created,
});
