/**
 * Block Kit for every message the bot sends, as pure functions of plain data: no Slack client, no engine,
 * no clock. Each returns the blocks and the fallback `text` (notifications, screen readers, old clients).
 */
import { z } from "zod";
import type { types } from "@slack/bolt";
import type { GatePayload, MetricsSummary, RunStatus, StepRecord } from "../graph/state.js";
import { renderMetrics } from "../render.js";
import { renderDiff } from "../tools/config/diff.js";

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

const SECTION_MAX = 2900;
const clip = (s: string, max = SECTION_MAX): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
/** User text shown back to Slack: no mentions or links smuggled in through the request. */
export const escapeText = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
/** Text for a code block: escaped, and a ``` inside cannot close the block early. */
const codeText = (s: string): string => escapeText(s).replace(/```/g, "`\u200b`\u200b`");

// verbatim: Slack does not auto-link bare URLs, #channel names or @here-style words in echoed text;
// the bot's own <@U…>, <!subteam^…> and <!date^…> sequences still render.
const section = (text: string): KnownBlock => ({ type: "section", text: { type: "mrkdwn", text: clip(text), verbatim: true } });
const context = (...texts: string[]): KnownBlock => ({ type: "context", elements: texts.filter(Boolean).slice(0, 10).map((t) => ({ type: "mrkdwn" as const, text: clip(t, 2000), verbatim: true })) });
const header = (text: string): KnownBlock => ({ type: "header", text: { type: "plain_text", text: clip(text, 150), emoji: true } });

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
    return id ? `<!subteam^${id}|${entry}>` : entry;
  }
  return escapeText(entry);
}

/** A Slack user id becomes a mention; a name (CLI user, policy) stays text. */
export const who = (user: string): string => (SLACK_USER_ID.test(user) ? `<@${user}>` : escapeText(user));

/** Slack ids and ISO times inside an engine message ("already approved by U123 at 2026-...") become mentions and local times. */
export const mentionIds = (text: string): string =>
  escapeText(text)
    .replace(/\b([UW][A-Z0-9]{6,})\b/g, "<@$1>")
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?Z\b/g, (iso) => slackTime(iso));

/** A time each reader sees in their own timezone, with a UTC fallback. */
export function slackTime(iso: string, format = "{date_short_pretty} {time}"): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const fallback = `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return `<!date^${Math.floor(ms / 1000)}^${format}|${fallback}>`;
}
const hhmm = (iso: string): string => new Date(iso).toISOString().slice(11, 16);

// ------------------------------------------------------------------------------------------- plan

export interface PlanView {
  workflow: string;
  title: string;
  deployment: string;
  params: Record<string, unknown>;
  steps: { name: string; gated: boolean }[];
  requestedBy: string;
  /** From EstimateCostImpact once it ran; null before. */
  cost: { addedMonthlyUsd: number; originSavingsMonthlyUsd: number; netMonthlyUsd: number } | null;
  unavailable?: string;
}

const usd = (x: number): string => `${x < 0 ? "-" : ""}$${Math.abs(x).toFixed(2)}`;

export function buildPlanMessage(p: PlanView): SlackMessage {
  const params = Object.keys(p.params).length ? Object.entries(p.params).map(([k, v]) => `\`${escapeText(k)}\`=${escapeText(JSON.stringify(v) ?? "null")}`).join(" · ") : "none given (the design step chooses and says why)";
  const gates = p.steps.filter((s) => s.gated).map((s) => s.name);
  const steps = p.steps.map((s, i) => `${i + 1}. ${s.name}${s.gated ? "  :lock: _approval_" : ""}`).join("\n");
  const cost = p.cost
    ? `*Cost estimate:* ${usd(p.cost.netMonthlyUsd)}/month net (+${usd(p.cost.addedMonthlyUsd)} new resources, -${usd(p.cost.originSavingsMonthlyUsd)} origin)`
    : "*Cost estimate:* computed by the cost step before anything is provisioned; shown here and on the approval card";
  const blocks: KnownBlock[] = [
    header(`Plan: ${p.title}`),
    section(`*Workflow:* \`${p.workflow}\`\n*Deployment:* \`${escapeText(p.deployment)}\`\n*Requested by:* ${who(p.requestedBy)}\n*Params:* ${params}`),
    section(`*Steps*\n${steps}`),
    section(`*Gates:* ${gates.length ? gates.join(", ") : "none"}: nothing is provisioned, no traffic moves and nothing is deleted without an approver's click.\n${cost}`),
  ];
  if (p.unavailable) blocks.push(section(`:warning: This workflow cannot run in this version: ${escapeText(p.unavailable)}`));
  const text = `Plan: ${p.workflow} on ${p.deployment}, ${p.steps.length} steps, ${gates.length} gated${p.cost ? `, ${usd(p.cost.netMonthlyUsd)}/month net` : ""}`;
  return { text, blocks };
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
  running: { step: string; stage: number | null } | null,
  waiting: { step: string; stage: number | null } | null,
): ProgressLine[] {
  const names = [...planned.map((s) => s.name), ...records.map((r) => r.name).filter((n) => !planned.some((s) => s.name === n))];
  const unique = [...new Set(names)];
  return unique.map((name) => {
    const mine = records.filter((r) => r.name === name);
    const stages = mine.filter((r) => r.stage !== null).map((r) => `${r.stageValue ?? r.stage}%${r.status === "failed" ? " failed" : r.verdict === "degraded" ? " degraded" : ""}`);
    const detail: string[] = [];
    if (stages.length) detail.push(stages.join(" · "));
    let mark: StepMark = "pending";
    // A stage whose watch window rolled the run back is no success, whatever else passed.
    if (mine.some((r) => r.status === "failed" || r.verdict === "degraded")) mark = "failed";
    else if (mine.length) mark = "done";
    if (running?.step === name) {
      mark = "running";
      if (running.stage !== null) detail.push(`${running.stage}% running`);
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
  const list = p.lines.map((l) => `${MARK[l.mark]} ${l.name}${l.detail ? ` — ${escapeText(l.detail)}` : ""}`).join("\n");
  const status = `${STATUS_EMOJI[p.status] ?? ""} *${p.status}*${p.outcome ? `: ${escapeText(p.outcome)}` : ""}`;
  return {
    text: `Run ${p.run} (${p.workflow} on ${p.deployment}): ${p.status}, ${done}/${p.lines.length} steps done`,
    blocks: [section(`*Progress* · run \`${p.run}\` · ${status}`), section(list || "_starting…_"), context(`${done}/${p.lines.length} steps done · updated as steps run · type \`status\`, \`pause\`, \`resume\`, \`cancel\` or \`transcript\` in this thread`)],
  };
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

function gateBody(c: CardView): KnownBlock[] {
  const g = c.gate;
  const stage = g.stage !== null && g.change.traffic ? ` (${g.change.traffic.to}%)` : "";
  const blocks: KnownBlock[] = [
    header(`${g.kind === "delete" ? "🗑️" : "✋"} Approval needed: ${KIND_TITLE[g.kind] ?? g.kind} · ${g.step}${stage}`),
    section(`*What will happen:* ${escapeText(g.action)}\n*Why:* ${escapeText(g.why)}\n*Risk:* ${escapeText(g.risk)}`),
  ];
  const change: string[] = [];
  if (g.change.config.length) change.push(`*Config diff*\n\`\`\`${clip(codeText(renderDiff(g.change.config)), 2000)}\`\`\``);
  if (g.change.resources.length) {
    change.push(`*Resources*\n${g.change.resources.map((r) => `• ${Object.entries(r).map(([k, v]) => `${escapeText(k)}: ${escapeText(String(v))}`).join(", ")}`).join("\n")}`);
  }
  if (g.change.traffic) change.push(`*Traffic share:* ${g.change.traffic.from}% → *${g.change.traffic.to}%*`);
  if (change.length) blocks.push(section(change.join("\n")));
  blocks.push(section(`*Metrics now:* ${escapeText(renderMetrics(g.metricsNow))}`));
  blocks.push(
    context(
      `*Who may approve:* ${c.approvers.join(", ") || "nobody is configured"}${c.twoPersonRule ? ` (two-person rule: not ${who(g.requestedBy)}, who requested it)` : ""}`,
      `*Requested by* ${who(g.requestedBy)} · *asked* ${slackTime(g.askedAt)}${c.expiresAt ? ` · *expires* ${slackTime(c.expiresAt)}` : ""}`,
      `run \`${escapeText(g.run)}\` · ${escapeText(g.deployment)} · plan \`${escapeText(c.planHash)}\``,
    ),
  );
  return blocks;
}

const gateValue = (c: CardView): string => JSON.stringify({ r: c.gate.run, i: c.interrupt, h: c.planHash } satisfies GateButtonValue);

export function buildApprovalCard(c: CardView): SlackMessage {
  const approve: Button = { type: "button", action_id: ACTION.approve, style: "primary", text: { type: "plain_text", text: "Approve" }, value: gateValue(c) };
  if (c.gate.kind === "delete") {
    approve.confirm = {
      title: { type: "plain_text", text: "Delete for good?" },
      text: { type: "mrkdwn", text: clip(`${escapeText(c.gate.action)}\n\nThis cannot be undone.`, 300), verbatim: true },
      confirm: { type: "plain_text", text: "Delete" },
      deny: { type: "plain_text", text: "Cancel" },
      style: "danger",
    };
  }
  const reject: Button = { type: "button", action_id: ACTION.reject, style: "danger", text: { type: "plain_text", text: "Reject" }, value: gateValue(c) };
  return {
    text: `Approval needed on ${escapeText(c.gate.deployment)}: ${c.gate.step} (${c.gate.kind}). ${escapeText(c.gate.action)}`,
    blocks: [...gateBody(c), { type: "actions", block_id: "honua_gate", elements: [approve, reject] }],
  };
}

export function buildDecidedCard(c: CardView, d: { decision: "approve" | "reject"; by: string; at: string }): SlackMessage {
  const verb = d.decision === "approve" ? "Approved" : "Rejected";
  const icon = d.decision === "approve" ? ":white_check_mark:" : ":no_entry_sign:";
  const line = `${icon} *${verb} by ${who(d.by)} at ${slackTime(d.at, "{time}")}*`;
  return {
    text: `${c.gate.step} on ${c.gate.deployment}: ${verb.toLowerCase()} by ${escapeText(d.by)} at ${hhmm(d.at)} UTC`,
    blocks: [...gateBody(c).map((b, i) => (i === 0 ? header(`${verb}: ${KIND_TITLE[c.gate.kind] ?? c.gate.kind} · ${c.gate.step}`) : b)), section(line)],
  };
}

export function buildExpiredCard(c: CardView, expiredAt: string): SlackMessage {
  return {
    text: `The approval request for ${c.gate.step} on ${c.gate.deployment} expired; nothing was changed and the run stays paused`,
    blocks: [
      ...gateBody(c).map((b, i) => (i === 0 ? header(`Expired: ${KIND_TITLE[c.gate.kind] ?? c.gate.kind} · ${c.gate.step}`) : b)),
      section(`:hourglass: *Expired ${slackTime(expiredAt)}.* Nothing was changed; the run stays paused at this gate until someone asks again.`),
      { type: "actions", block_id: "honua_expired", elements: [{ type: "button", action_id: ACTION.requestAgain, text: { type: "plain_text", text: "Request again" }, value: gateValue(c) }] },
    ],
  };
}

export function buildRequestedAgainCard(c: CardView, by: string, at: string): SlackMessage {
  return {
    text: `The expired request for ${c.gate.step} was asked again by ${escapeText(by)}`,
    blocks: [
      ...gateBody(c).map((b, i) => (i === 0 ? header(`Expired: ${KIND_TITLE[c.gate.kind] ?? c.gate.kind} · ${c.gate.step}`) : b)),
      section(`:hourglass: Expired; *requested again by ${who(by)} at ${slackTime(at, "{time}")}* (see the new card below).`),
    ],
  };
}

/** Sent once at 80% of a request's time to live. */
export function buildExpiryWarning(c: CardView, now: string): SlackMessage {
  const left = c.expiresAt ? Math.max(0, Math.round((Date.parse(c.expiresAt) - Date.parse(now)) / 60_000)) : 0;
  return {
    text: `Approval for ${c.gate.step} on ${c.gate.deployment} expires in ${left} min`,
    blocks: [section(`:alarm_clock: ${c.approvers.join(" ")} the approval request for *${c.gate.step}* on \`${escapeText(c.gate.deployment)}\` expires ${c.expiresAt ? slackTime(c.expiresAt, "{time}") : "soon"} (in about ${left} min). Nothing proceeds without a decision; on expiry the run stays paused.`)],
  };
}

export function buildExpiryNotice(c: CardView): SlackMessage {
  return {
    text: `Approval for ${c.gate.step} on ${c.gate.deployment} expired; the run stays paused`,
    blocks: [section(`:hourglass: ${c.approvers.join(" ")} the approval request for *${c.gate.step}* on \`${escapeText(c.gate.deployment)}\` expired. Nothing was changed and the run stays paused; press *Request again* on the card to ask again.`)],
  };
}

// ---------------------------------------------------------------------------------------- rollback

export function buildRollbackAlert(a: { run: string; deployment: string; reason: string; automatic?: boolean; mentions: string[] }): SlackMessage {
  const automatic = a.automatic ?? true;
  const title = automatic ? "AUTOMATIC ROLLBACK" : "ROLLING BACK";
  const how = automatic ? "The last known-good state is being restored now, without waiting for anyone." : "The last known-good state is being restored now, as asked.";
  return {
    text: `${title} on ${a.deployment} (run ${a.run}): ${escapeText(a.reason)}`,
    blocks: [
      header(`🚨 ${title} on ${a.deployment}`),
      section(`${a.mentions.join(" ")}\n*Why:* ${escapeText(a.reason)}\n${how} Anything left behind is deleted only behind a \`delete\` approval.`),
      context(`run \`${a.run}\``),
    ],
  };
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
  const decisions = r.decisions.map((d) => `• ${d.step}: ${d.decision} by ${who(d.by)} at ${slackTime(d.at, "{time}")}`).join("\n");
  return {
    text: `Report for run ${r.run} (${r.workflow} on ${r.deployment}): ${r.status}${r.outcome ? `: ${escapeText(r.outcome)}` : ""}`,
    blocks: [
      header(`${r.status === "done" ? "✅" : "⚠️"} Report: ${r.workflow} on ${r.deployment}: ${r.status}`),
      section(`${r.outcome ? `*Outcome:* ${escapeText(r.outcome)}\n` : ""}*Before:* ${escapeText(renderMetrics(r.before))}\n*After:* ${escapeText(renderMetrics(r.after))}`),
      section(`*Decisions*\n${decisions || "none"}`),
      context(`requested by ${who(r.requestedBy)} · run \`${r.run}\` · chart and full transcript attached below`),
    ],
  };
}

// ------------------------------------------------------------------------------------ conversation

/** Slack refuses a whole message whose button value is over 2000 characters; JSON escaping can double the request's length. */
const BUTTON_VALUE_MAX = 2000;
function pickValue(request: string, d: string): string {
  let q = request.slice(0, 1800);
  let value = JSON.stringify({ q, d } satisfies PickValue);
  while (value.length > BUTTON_VALUE_MAX && q.length > 1) {
    q = q.slice(0, Math.max(1, q.length - Math.ceil((value.length - BUTTON_VALUE_MAX) / 2)));
    value = JSON.stringify({ q, d } satisfies PickValue);
  }
  return value;
}

export function buildClarifyMessage(q: { question: string; request: string; deployments: string[] }): SlackMessage {
  const blocks: KnownBlock[] = [section(`:thinking_face: ${escapeText(q.question)}`)];
  if (q.deployments.length) {
    blocks.push({
      type: "actions",
      block_id: "honua_pick",
      elements: q.deployments.slice(0, 25).map((d) => ({
        type: "button" as const,
        action_id: `${ACTION.pickDeployment}:${d}`,
        text: { type: "plain_text" as const, text: d },
        value: pickValue(q.request, d),
      })),
    });
  }
  return { text: escapeText(q.question), blocks };
}

export const THREAD_COMMANDS = ["status", "pause", "resume", "cancel", "transcript"] as const;

/** `extra` is mrkdwn the caller built (user text in it already escaped). */
export function buildHelpMessage(extra?: string): SlackMessage {
  const text = `In a run's thread: \`status\` · \`pause\` · \`resume\` · \`cancel\` · \`transcript\`. To start a change, mention me with a request, e.g. \`@honua add Redis caching to prod\`, or use \`/honua add Redis caching to prod\`.`;
  return { text, blocks: [section(`${extra ? `${extra}\n` : ""}${text}`)] };
}

export const buildNotice = (text: string, emoji = ":information_source:"): SlackMessage => ({ text, blocks: [section(`${emoji} ${text}`)] });
/**
 * `text` is plain (an error message, possibly echoing user or model text): escaped here. User ids in it become
 * mentions only when the caller knows the engine wrote it (`linkIds`): an id someone typed is not a ping.
 */
export const buildError = (text: string, linkIds = false): SlackMessage => ({
  text: `Error: ${escapeText(text)}`,
  blocks: [section(`:warning: ${linkIds ? mentionIds(text) : escapeText(text)}`)],
});

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
  const runs = h.runs.map((r) => `• \`${r.run}\` ${r.workflow} on *${escapeText(r.deployment)}*: ${r.status} · by ${who(r.requestedBy)} · since ${slackTime(r.startedAt)}${where(r.channel)}`);
  const approvals = h.approvals.map((a) => `• *${a.step}* (${a.kind}) on *${escapeText(a.deployment)}* · run \`${a.run}\`${a.expiresAt ? ` · expires ${slackTime(a.expiresAt)}` : ""}${where(a.channel)}`);
  return {
    type: "home",
    blocks: [
      header("honua-agent"),
      section(`*Waiting for your approval* (${approvals.length})\n${approvals.join("\n") || "_nothing waits for you_"}`),
      { type: "divider" },
      section(`*Runs in progress* (${runs.length})\n${runs.join("\n") || "_no run in progress_"}`),
      context(`Start a change with \`/honua add Redis caching to prod\` or by mentioning the bot in a channel.`),
    ],
  };
}
