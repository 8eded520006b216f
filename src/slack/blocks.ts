/**
 * Block Kit for every message the bot sends, as pure functions of plain data: no Slack client, no engine,
 * no clock. Each returns the blocks and the fallback `text` (notifications, screen readers, old clients).
 */
import { usd } from "../core/text.js";
import { z } from "zod";
import type { types } from "@slack/bolt";
import type { GatePayload, StepRecord } from "../graph/state.js";
import type { RunStatus } from "../core/records.js";
import type { MetricsSummary } from "../core/metrics.js";
import type { CostEstimate } from "../graph/workflows/module.js";
import { renderMetrics, stageName } from "../render.js";
import { renderSection, type ChangeSection } from "../core/sections.js";
import { renderProgress, type Progress } from "../core/progress.js";
import { renderDiff } from "../tools/config/diff.js";
import { LIMIT, clip, codePoints, fitList } from "./limits.js";

type KnownBlock = types.KnownBlock;
type Button = types.Button;
type HomeView = types.HomeView;

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

export const ACTION = {
  approve: "honua_approve",
  reject: "honua_reject",
  requestAgain: "honua_request_again",
  pickDeployment: "honua_pick_deployment",
} as const;

/** What an approval button carries: the run, the interrupt and the plan hash the approver was shown. */
export const GateButtonValue = z.object({ r: z.string().min(1).max(200), i: z.string().min(1).max(400), h: z.string().min(1).max(200) }).strict();
export type GateButtonValue = z.infer<typeof GateButtonValue>;

/** A deployment choice for a request that did not name one. */
export const PickValue = z.object({ q: z.string().min(1).max(1800), d: z.string().min(1).max(100) }).strict();
export type PickValue = z.infer<typeof PickValue>;

/** User text shown back to Slack: no mentions or links smuggled in through the request. */
export const escapeText = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
/** Text for a code block: escaped, and a ``` inside cannot close the block early. */
const codeText = (s: string): string => escapeText(s).replace(/```/g, "`\u200b`\u200b`");
/**
 * Echoed text in at most `max` characters: escaped before the cut, so the cut never splits an entity (and cut
 * once before escaping, so a 50,000-character text is not escaped whole to show 300 characters of it).
 */
const short = (s: string, max: number): string => clip(escapeText(clip(s, max)), max);

// verbatim: Slack does not auto-link bare URLs, #channel names or @here-style words in echoed text;
// the bot's own <@U…>, <!subteam^…> and <!date^…> sequences still render.
const section = (text: string): KnownBlock => ({ type: "section", text: { type: "mrkdwn", text: clip(text, LIMIT.section) || "…", verbatim: true } });
const context = (...texts: string[]): KnownBlock => ({ type: "context", elements: texts.filter(Boolean).slice(0, LIMIT.contextElements).map((t) => ({ type: "mrkdwn" as const, text: clip(t, LIMIT.contextText), verbatim: true })) });
const header = (text: string): KnownBlock => ({ type: "header", text: { type: "plain_text", text: clip(text, LIMIT.header) || "…", emoji: true } });
/** Every message's fallback text: what notifications show, kept readable. */
const message = (text: string, blocks: KnownBlock[]): SlackMessage => ({ text: clip(text, LIMIT.text), blocks });

/** `U…`/`W…` user ids and `S…` user-group ids look like this; anything else is a name from the config. */
export const SLACK_USER_ID = /^[UW][A-Z0-9]{2,}$/;
export const SLACK_GROUP_ID = /^S[A-Z0-9]{2,}$/;

/**
 * How an approver entry from the config is shown: a mention for Slack ids (and for a handle whose
 * user-group id is known), the plain name otherwise.
 */
export function formatApprover(entry: string, handleIds: ReadonlyMap<string, string> = new Map()): string {
  if (SLACK_USER_ID.test(entry)) return `<@${entry}>`;
  if (SLACK_GROUP_ID.test(entry)) return `<!subteam^${entry}>`;
  if (entry.startsWith("@")) {
    const id = handleIds.get(entry.slice(1).toLowerCase());
    return id ? `<!subteam^${id}|${short(entry, 100)}>` : short(entry, 100);
  }
  return short(entry, 100);
}

/** A Slack user id becomes a mention; a name (CLI user, policy) stays text. */
export const who = (user: string): string => (SLACK_USER_ID.test(user) && user.length <= 40 ? `<@${user}>` : short(user, 100));

/** Slack ids and ISO times inside an engine message ("already approved by U123 at 2026-...") become mentions and local times. */
export const mentionIds = (text: string): string =>
  escapeText(text)
    .replace(/\b([UW][A-Z0-9]{6,})\b/g, "<@$1>")
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z\b/g, (iso) => slackTime(iso));

/** A time each reader sees in their own timezone, with a UTC fallback. */
export function slackTime(iso: string, format = "{date_short_pretty} {time}"): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return short(iso, 100);
  const fallback = `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return `<!date^${Math.floor(ms / 1000)}^${format}|${fallback}>`;
}
const hhmm = (iso: string): string => (Number.isNaN(Date.parse(iso)) ? short(iso, 40) : new Date(iso).toISOString().slice(11, 16));

// ------------------------------------------------------------------------------------------- plan

export interface PlanView {
  workflow: string;
  title: string;
  deployment: string;
  params: Record<string, unknown>;
  steps: { name: string; gated: boolean }[];
  requestedBy: string;
  /** The workflow's cost estimate once it made one (its facets); null before. */
  cost: Pick<CostEstimate, "addedMonthlyUsd" | "savingsMonthlyUsd" | "netMonthlyUsd" | "savingsOf"> | null;
  unavailable?: string;
}



export function buildPlanMessage(p: PlanView): SlackMessage {
  const entries = Object.entries(p.params);
  const params = entries.length
    ? fitList(entries, 1800, { sep: " · ", render: ([k, v]) => `\`${short(k, 100)}\`=${short(JSON.stringify(v) ?? "null", 400)}` })
    : "none given (the design step chooses and says why)";
  const gates = p.steps.filter((s) => s.gated);
  const steps = fitList(p.steps.map((s, i) => ({ ...s, i })), 2800, { render: (s) => `${s.i + 1}. ${short(s.name, 200)}${s.gated ? "  :lock: _approval_" : ""}` });
  const cost = p.cost
    ? `*Cost estimate:* ${usd(p.cost.netMonthlyUsd)}/month net (+${usd(p.cost.addedMonthlyUsd)} new resources, -${usd(p.cost.savingsMonthlyUsd)} ${short(p.cost.savingsOf, 100)})`
    : "*Cost estimate:* computed by the cost step before anything is provisioned; shown here and on the approval card";
  const blocks: KnownBlock[] = [
    header(`Plan: ${p.title}`),
    section(`*Workflow:* \`${short(p.workflow, 200)}\`\n*Deployment:* \`${short(p.deployment, 300)}\`\n*Requested by:* ${who(p.requestedBy)}\n*Params:* ${params}`),
    section(`*Steps*\n${steps}`),
    section(`*Gates:* ${gates.length ? fitList(gates, 1500, { sep: ", ", render: (s) => short(s.name, 200) }) : "none"}: nothing is provisioned, no traffic moves and nothing is deleted without an approver's click.\n${cost}`),
  ];
  if (p.unavailable) blocks.push(section(`:warning: This workflow cannot run in this version: ${short(p.unavailable, 2800)}`));
  return message(`Plan: ${p.workflow} on ${short(p.deployment, 300)}, ${p.steps.length} steps, ${gates.length} gated${p.cost ? `, ${usd(p.cost.netMonthlyUsd)}/month net` : ""}`, blocks);
}

// --------------------------------------------------------------------------------------- progress

export type StepMark = "done" | "running" | "waiting" | "pending" | "failed";

export interface ProgressLine {
  name: string;
  mark: StepMark;
  detail: string;
}

const MARK: Record<StepMark, string> = {
  done: ":white_check_mark:",
  running: ":hourglass_flowing_sand:",
  waiting: ":raised_hand:",
  pending: ":white_small_square:",
  failed: ":x:",
};

/**
 * Marks for every step of the workflow, from what the checkpointed transcript says ran, the step
 * currently running (from live events) and the gate the run waits at. Rollback and cleanup steps,
 * which are not in the plan, are appended when they ran.
 */
export function progressLines(
  planned: readonly { name: string }[],
  records: readonly Pick<StepRecord, "name" | "stage" | "stageValue" | "status" | "verdict">[],
  running: { step: string; stage: number | null; progress?: Progress | null } | null,
  waiting: { step: string; stage: number | null } | null,
): ProgressLine[] {
  const names = [...planned.map((s) => s.name), ...records.map((r) => r.name).filter((n) => !planned.some((s) => s.name === n))];
  const unique = [...new Set(names)];
  return unique.map((name) => {
    const mine = records.filter((r) => r.name === name);
    const stages = mine.filter((r) => r.stage !== null).map((r) => `${r.stageValue === null ? `round ${(r.stage ?? 0) + 1}` : `${r.stageValue ?? r.stage}%`}${r.status === "failed" ? " failed" : r.verdict === "degraded" ? " degraded" : ""}`);
    const detail: string[] = [];
    if (stages.length) detail.push(stages.join(" · "));
    let mark: StepMark = "pending";
    // A stage whose watch window rolled the run back is no success, whatever else passed.
    if (mine.some((r) => r.status === "failed" || r.verdict === "degraded")) mark = "failed";
    else if (mine.length) mark = "done";
    if (running?.step === name) {
      mark = "running";
      if (running.stage !== null) detail.push(`${running.stage}% running`);
      if (running.progress) detail.push(renderProgress(running.progress));
    } else if (waiting?.step === name) {
      mark = "waiting";
      detail.push(waiting.stage !== null ? `waiting for approval (${waiting.stage}%)` : "waiting for approval");
    }
    return { name, mark, detail: detail.join(" · ") };
  });
}

export interface ProgressView {
  run: string;
  workflow: string;
  deployment: string;
  status: RunStatus | "paused";
  lines: ProgressLine[];
  outcome: string | null;
}

const STATUS_EMOJI: Record<string, string> = {
  running: ":arrows_counterclockwise:",
  waiting: ":raised_hand:",
  paused: ":double_vertical_bar:",
  done: ":white_check_mark:",
  failed: ":x:",
  "rolled-back": ":rewind:",
  rejected: ":no_entry_sign:",
  cancelled: ":black_square_for_stop:",
};

export function buildProgressMessage(p: ProgressView): SlackMessage {
  const done = p.lines.filter((l) => l.mark === "done").length;
  const list = fitList(p.lines, 2900, { itemMax: 400, render: (l) => `${MARK[l.mark]} ${short(l.name, 200)}${l.detail ? ` — ${short(l.detail, 400)}` : ""}` });
  const status = `${STATUS_EMOJI[p.status] ?? ""} *${escapeText(p.status)}*${p.outcome ? `: ${short(p.outcome, 2000)}` : ""}`;
  return message(`Run ${p.run} (${p.workflow} on ${short(p.deployment, 300)}): ${p.status}, ${done}/${p.lines.length} steps done`, [
    section(`*Progress* · run \`${short(p.run, 300)}\` · ${status}`),
    section(list || "_starting…_"),
    context(`${done}/${p.lines.length} steps done · updated as steps run · type \`status\`, \`pause\`, \`resume\`, \`cancel\` or \`transcript\` in this thread`),
  ]);
}

// ---------------------------------------------------------------------------------------- approval

export interface CardView {
  gate: GatePayload;
  interrupt: string;
  planHash: string;
  expiresAt: string | null;
  /** Approver entries already formatted (mentions), see formatApprover. */
  approvers: string[];
  twoPersonRule: boolean;
}

const KIND_TITLE: Record<string, string> = {
  provision: "Provision",
  traffic: "Traffic switch",
  delete: "Delete",
  inconclusive: "Inconclusive monitoring",
  rollback: "Rollback",
};
const kindTitle = (kind: string): string => KIND_TITLE[kind] ?? kind;

/** Approvers to mention, as many as fit; the rest are counted. */
export const mentionList = (labels: readonly string[], max: number, sep = " "): string => fitList(labels, max, { sep, itemMax: 200 });

/**
 * What the approver must see comes first (the action, the traffic share it moves, the expiry, the plan
 * hash), then why and the risk; the long lists (config diff, resources) follow, each shortened to
 * "…and N more" inside its own block, so no list pushes the essentials out of the card.
 */
function gateBody(c: CardView): KnownBlock[] {
  const g = c.gate;
  const traffic = g.change.traffic;
  const stage = g.stage !== null ? ` · ${stageName(g.stage, g.stageValue ?? traffic?.to ?? null, g.stageCount)}` : "";
  const essentials = [
    `*What will happen:* ${short(g.action, 2000)}`,
    traffic ? `*Traffic share:* ${traffic.from}% → *${traffic.to}%*` : "",
    `*Plan* \`${short(c.planHash, 200)}\`${c.expiresAt ? ` · *expires* ${slackTime(c.expiresAt)}` : ""}`,
  ];
  const blocks: KnownBlock[] = [
    header(`${g.kind === "delete" ? "🗑️" : "✋"} Approval needed: ${kindTitle(g.kind)} · ${g.step}${stage}`),
    section(essentials.filter(Boolean).join("\n")),
    section(`*Why:* ${short(g.why, 1400)}\n*Risk:* ${short(g.risk, 1400)}`),
  ];
  if (g.change.config.length) {
    const diff = fitList(g.change.config, 2800, { itemMax: 500, render: (ch) => codeText(clip(renderDiff([ch]), 500)) });
    blocks.push(section(`*Config diff* (${g.change.config.length} ${g.change.config.length === 1 ? "key" : "keys"})\n\`\`\`${diff}\`\`\``));
  }
  if (g.change.resources.length) {
    const resources = fitList(g.change.resources, 2800, { itemMax: 500, render: (r) => `• ${fitList(Object.entries(r), 500, { sep: ", ", render: ([k, v]) => `${short(k, 100)}: ${short(String(v), 400)}` })}` });
    blocks.push(section(`*Resources* (${g.change.resources.length})\n${resources}`));
  }
  // SQL, mappings, tables, file diffs: each its own block, as the terminal shows them (at most eight: the card stays one message).
  for (const sec of fitSections(g.change.sections ?? [])) blocks.push(sec);
  blocks.push(section(`*Metrics now:* ${short(renderMetrics(g.metricsNow), 2800)}`));
  blocks.push(
    context(
      `*Who may approve:* ${mentionList(c.approvers, 1500, ", ") || "nobody is configured"}${c.twoPersonRule ? ` (two-person rule: not ${who(g.requestedBy)}, who requested it)` : ""}`,
      `*Requested by* ${who(g.requestedBy)} · *asked* ${slackTime(g.askedAt)}`,
      `run \`${short(g.run, 300)}\` · ${short(g.deployment, 300)}`,
    ),
  );
  return blocks;
}

/** Change sections as blocks: the one text rendering, in a code block, shortened with "…and N more". */
function fitSections(sections: readonly ChangeSection[]): KnownBlock[] {
  const MAX = 8;
  const out = sections.slice(0, MAX).map((sec) => {
    const r = renderSection(sec);
    const lines = fitList(r.lines, 2700, { sep: "\n", itemMax: 500, render: (l: string) => codeText(clip(l, 500)) });
    return section(`*${escapeText(clip(r.title, 150))}*\n\`\`\`${lines}\`\`\``);
  });
  if (sections.length > MAX) out.push(section(`…and ${sections.length - MAX} more sections: see \`transcript\` in this thread`));
  return out;
}

const gateValue = (c: CardView): string => JSON.stringify({ r: c.gate.run, i: c.interrupt, h: c.planHash } satisfies GateButtonValue);
const UNDONE = "\n\nThis cannot be undone.";
/** The card's body under another header (decided, expired). */
const retitled = (c: CardView, title: string): KnownBlock[] => gateBody(c).map((b, i) => (i === 0 ? header(title) : b));

export function buildApprovalCard(c: CardView): SlackMessage {
  const approve: Button = { type: "button", action_id: ACTION.approve, style: "primary", text: { type: "plain_text", text: "Approve" }, value: gateValue(c) };
  if (c.gate.kind === "delete") {
    approve.confirm = {
      title: { type: "plain_text", text: "Delete for good?" },
      text: { type: "mrkdwn", text: `${short(c.gate.action, LIMIT.confirmText - codePoints(UNDONE))}${UNDONE}`, verbatim: true },
      confirm: { type: "plain_text", text: "Delete" },
      deny: { type: "plain_text", text: "Cancel" },
      style: "danger",
    };
  }
  const reject: Button = { type: "button", action_id: ACTION.reject, style: "danger", text: { type: "plain_text", text: "Reject" }, value: gateValue(c) };
  return message(`Approval needed on ${short(c.gate.deployment, 300)}: ${c.gate.step} (${c.gate.kind}). ${short(c.gate.action, LIMIT.text)}`, [
    ...gateBody(c),
    { type: "actions", block_id: "honua_gate", elements: [approve, reject] },
  ]);
}

export function buildDecidedCard(c: CardView, d: { decision: "approve" | "reject"; by: string; at: string }): SlackMessage {
  const verb = d.decision === "approve" ? "Approved" : "Rejected";
  const icon = d.decision === "approve" ? ":white_check_mark:" : ":no_entry_sign:";
  const line = `${icon} *${verb} by ${who(d.by)} at ${slackTime(d.at, "{time}")}*`;
  return message(`${c.gate.step} on ${short(c.gate.deployment, 300)}: ${verb.toLowerCase()} by ${short(d.by, 100)} at ${hhmm(d.at)} UTC`, [
    ...retitled(c, `${verb}: ${kindTitle(c.gate.kind)} · ${c.gate.step}`),
    section(line),
  ]);
}

export function buildExpiredCard(c: CardView, expiredAt: string): SlackMessage {
  return message(`The approval request for ${c.gate.step} on ${short(c.gate.deployment, 300)} expired; nothing was changed and the run stays paused`, [
    ...retitled(c, `Expired: ${kindTitle(c.gate.kind)} · ${c.gate.step}`),
    section(`:hourglass: *Expired ${slackTime(expiredAt)}.* Nothing was changed; the run stays paused at this gate until someone asks again.`),
    { type: "actions", block_id: "honua_expired", elements: [{ type: "button", action_id: ACTION.requestAgain, text: { type: "plain_text", text: "Request again" }, value: gateValue(c) }] },
  ]);
}

export function buildRequestedAgainCard(c: CardView, by: string, at: string): SlackMessage {
  return message(`The expired request for ${c.gate.step} was asked again by ${short(by, 100)}`, [
    ...retitled(c, `Expired: ${kindTitle(c.gate.kind)} · ${c.gate.step}`),
    section(`:hourglass: Expired; *requested again by ${who(by)} at ${slackTime(at, "{time}")}* (see the new card below).`),
  ]);
}

/** Sent once at 80% of a request's time to live. */
export function buildExpiryWarning(c: CardView, now: string): SlackMessage {
  const left = c.expiresAt ? Math.max(0, Math.round((Date.parse(c.expiresAt) - Date.parse(now)) / 60_000)) : 0;
  return message(`Approval for ${c.gate.step} on ${short(c.gate.deployment, 300)} expires in ${left} min`, [
    section(`:alarm_clock: ${mentionList(c.approvers, 1500)} the approval request for *${short(c.gate.step, 200)}* on \`${short(c.gate.deployment, 300)}\` expires ${c.expiresAt ? slackTime(c.expiresAt, "{time}") : "soon"} (in about ${left} min). Nothing proceeds without a decision; on expiry the run stays paused.`),
  ]);
}

export function buildExpiryNotice(c: CardView): SlackMessage {
  return message(`Approval for ${c.gate.step} on ${short(c.gate.deployment, 300)} expired; the run stays paused`, [
    section(`:hourglass: ${mentionList(c.approvers, 1500)} the approval request for *${short(c.gate.step, 200)}* on \`${short(c.gate.deployment, 300)}\` expired. Nothing was changed and the run stays paused; press *Request again* on the card to ask again.`),
  ]);
}

// ---------------------------------------------------------------------------------------- rollback

export function buildRollbackAlert(a: { run: string; deployment: string; reason: string; automatic?: boolean; mentions: string[] }): SlackMessage {
  const automatic = a.automatic ?? true;
  const title = automatic ? "AUTOMATIC ROLLBACK" : "ROLLING BACK";
  const how = automatic ? "The last known-good state is being restored now, without waiting for anyone." : "The last known-good state is being restored now, as asked.";
  return message(`${title} on ${short(a.deployment, 300)} (run ${a.run}): ${short(a.reason, LIMIT.text)}`, [
    header(`🚨 ${title} on ${a.deployment}`),
    section(`${mentionList(a.mentions, 800)}\n*Why:* ${short(a.reason, 1800)}\n${how} Anything left behind is deleted only behind a \`delete\` approval.`),
    context(`run \`${short(a.run, 300)}\``),
  ]);
}

// ------------------------------------------------------------------------------------------ report

export interface ReportView {
  run: string;
  workflow: string;
  deployment: string;
  status: string;
  outcome: string | null;
  before: MetricsSummary | null;
  after: MetricsSummary | null;
  decisions: { step: string; decision: string; by: string; at: string }[];
  requestedBy: string;
}

export function buildReportMessage(r: ReportView): SlackMessage {
  const decisions = fitList(r.decisions, 2800, { itemMax: 400, render: (d) => `• ${short(d.step, 200)}: ${short(d.decision, 50)} by ${who(d.by)} at ${slackTime(d.at, "{time}")}` });
  return message(`Report for run ${r.run} (${r.workflow} on ${short(r.deployment, 300)}): ${r.status}${r.outcome ? `: ${short(r.outcome, LIMIT.text)}` : ""}`, [
    header(`${r.status === "done" ? "✅" : "⚠️"} Report: ${r.workflow} on ${r.deployment}: ${r.status}`),
    section(`${r.outcome ? `*Outcome:* ${short(r.outcome, 1800)}\n` : ""}*Before:* ${short(renderMetrics(r.before), 500)}\n*After:* ${short(renderMetrics(r.after), 500)}`),
    section(`*Decisions*\n${decisions || "none"}`),
    context(`requested by ${who(r.requestedBy)} · run \`${short(r.run, 300)}\` · chart and full transcript attached below`),
  ]);
}

// ------------------------------------------------------------------------------------ conversation

/** Slack refuses a whole message whose button value is over 2000 characters; JSON escaping can double the request's length. */
const PICK_QUERY_MAX = 1800;
/** The request as the choices carry it back: as much as fits beside the longest of the names (`d`). */
function pickQuery(request: string, d: string): string {
  let max = PICK_QUERY_MAX;
  for (;;) {
    const q = clip(request, max);
    // Both counted in UTF-16 units: PickValue's schema does, and it is never less than Slack's count.
    const over = Math.max(JSON.stringify({ q, d } satisfies PickValue).length - LIMIT.buttonValue, q.length - PICK_QUERY_MAX);
    if (over <= 0 || max <= 1) return q;
    max = Math.max(1, max - Math.ceil(over / 2));
  }
}

/** Deployment choices shown as buttons (25 to a row); the rest are only counted. */
const PICK_ROWS = 4;
/** The longest name a choice can carry back (PickValue's bound; the config allows 63). */
const PICK_NAME_MAX = 100;

export function buildClarifyMessage(q: { question: string; request: string; deployments: string[] }): SlackMessage {
  const deployments = [...new Set(q.deployments)];
  const shown = deployments.filter((d) => d.length <= PICK_NAME_MAX).slice(0, PICK_ROWS * LIMIT.actionsElements);
  const rest = deployments.length - shown.length;
  const blocks: KnownBlock[] = [section(`:thinking_face: ${short(q.question, 2900)}`)];
  const longest = shown.reduce((a, d) => (JSON.stringify(d).length > JSON.stringify(a).length ? d : a), "");
  const query = pickQuery(q.request, longest);
  const buttons: Button[] = shown.map((d) => ({
    type: "button",
    action_id: `${ACTION.pickDeployment}:${d}`,
    text: { type: "plain_text", text: clip(d, LIMIT.button) || "…" },
    value: JSON.stringify({ q: query, d } satisfies PickValue),
  }));
  for (let i = 0; i < buttons.length; i += LIMIT.actionsElements) {
    blocks.push({ type: "actions", block_id: i === 0 ? "honua_pick" : `honua_pick_${i / LIMIT.actionsElements}`, elements: buttons.slice(i, i + LIMIT.actionsElements) });
  }
  if (rest > 0) blocks.push(context(`…and ${rest} more ${rest === 1 ? "deployment" : "deployments"}: name it in your request`));
  return message(short(q.question, LIMIT.text), blocks);
}

export const THREAD_COMMANDS = ["status", "pause", "resume", "cancel", "transcript", "revert it"] as const;

/** `extra` is mrkdwn the caller built (user text in it already escaped). */
export function buildHelpMessage(extra?: string): SlackMessage {
  const text = `In a run's thread: \`status\` · \`pause\` · \`resume\` · \`cancel\` · \`transcript\` · \`revert it\` (once it is done). To start a change, mention me with a request, e.g. \`@honua add Redis caching to prod\`, or use \`/honua add Redis caching to prod\`.`;
  return message(text, [section(`${extra ? `${clip(extra, LIMIT.section - codePoints(text) - 1)}\n` : ""}${text}`)]);
}

/** `text` is mrkdwn the caller built (user text in it already escaped). */
export const buildNotice = (text: string, emoji = ":information_source:"): SlackMessage => message(text, [section(`${emoji} ${text}`)]);
/**
 * `text` is plain (an error message, possibly echoing user or model text): escaped here. User ids in it become
 * mentions only when the caller knows the engine wrote it (`linkIds`): an id someone typed is not a ping.
 */
export const buildError = (text: string, linkIds = false): SlackMessage => message(`Error: ${short(text, LIMIT.text)}`, [section(`:warning: ${linkIds ? mentionIds(clip(text, LIMIT.section)) : short(text, LIMIT.section)}`)]);

/** The conversation's answer in a thread: it may repeat what someone wrote (or what a model was talked into), so it is text, never mentions or links. */
export const buildAnswer = (text: string): SlackMessage => message(short(text, LIMIT.text), [section(short(text, LIMIT.section))]);

/** The channel message a `/honua` request is threaded under. */
export const requestEcho = (user: string, text: string): string => clip(`${who(user)} asked: ${short(text, LIMIT.text)}`, LIMIT.text);

// -------------------------------------------------------------------------------------------- home

export interface HomeRun {
  run: string;
  workflow: string;
  deployment: string;
  status: string;
  requestedBy: string;
  startedAt: string;
  channel: string | null;
}

export interface HomeApproval {
  run: string;
  deployment: string;
  step: string;
  kind: string;
  expiresAt: string | null;
  channel: string | null;
}

export function buildHomeView(h: { user: string; runs: HomeRun[]; approvals: HomeApproval[] }): HomeView {
  const where = (c: string | null) => (c ? ` in <#${c}>` : "");
  const run = (r: HomeRun) => `• \`${short(r.run, 100)}\` ${short(r.workflow, 100)} on *${short(r.deployment, 100)}*: ${short(r.status, 50)} · by ${who(r.requestedBy)} · since ${slackTime(r.startedAt)}${where(r.channel)}`;
  const approval = (a: HomeApproval) => `• *${short(a.step, 200)}* (${short(a.kind, 50)}) on *${short(a.deployment, 100)}* · run \`${short(a.run, 100)}\`${a.expiresAt ? ` · expires ${slackTime(a.expiresAt)}` : ""}${where(a.channel)}`;
  return {
    type: "home",
    blocks: [
      header("honua-agent"),
      section(`*Waiting for your approval* (${h.approvals.length})\n${fitList(h.approvals, 2900, { itemMax: 500, render: approval }) || "_nothing waits for you_"}`),
      { type: "divider" },
      section(`*Runs in progress* (${h.runs.length})\n${fitList(h.runs, 2900, { itemMax: 500, render: run }) || "_no run in progress_"}`),
      context(`Start a change with \`/honua add Redis caching to prod\` or by mentioning the bot in a channel.`),
    ],
  };
}
