import type { App, BlockAction, ButtonAction } from "@slack/bolt";
import { AgentError } from "../../core/errors.js";
import { ACTION, GateButtonValue, PickValue, buildError, buildNotice, escapeText, mentionIds, mentionList, who } from "../blocks.js";
import { clip } from "../limits.js";
import { afterAck, whisper, type Place, type SlackDeps } from "../context.js";
import { handleRequest } from "../requests.js";
import { firstDelivery } from "./dedupe.js";

const placeOf = (body: BlockAction): Place | undefined => {
  const channel = body.channel?.id ?? body.container?.channel_id;
  const message = body.message as { ts?: string; thread_ts?: string } | undefined;
  const threadTs = message?.thread_ts ?? message?.ts;
  return channel && threadTs ? { channel, threadTs, user: body.user.id } : undefined;
};

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, raw: string | undefined): T | undefined {
  try {
    const r = schema.safeParse(JSON.parse(raw ?? ""));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A button acts only on the gate of the card it sits on: the clicked message must be the card this front
 * posted for exactly that run, interrupt and plan hash. A value copied onto another message, or edited to
 * name another run or gate, changes nothing and the clicker is told so.
 */
async function onItsCard(d: SlackDeps, at: Place, body: BlockAction, value: GateButtonValue): Promise<boolean> {
  const ts = (body.message as { ts?: string } | undefined)?.ts ?? body.container?.message_ts;
  const cards = await d.store.cards(value.r);
  if (cards.some((c) => c.interrupt === value.i && c.planHash === value.h && c.channel === at.channel && c.ts === ts)) return true;
  await whisper(d, at, buildNotice("This button does not belong to the approval card it was clicked on (it names another run or gate); nothing was decided.", ":no_entry:"));
  return false;
}

/** Approve or Reject on a card: the engine's decision record decides who wins; the card is edited once. */
async function decide(d: SlackDeps, at: Place, body: BlockAction, value: GateButtonValue, decision: "approve" | "reject"): Promise<void> {
  const row = await d.engine.store.getRun(value.r);
  if (!row) {
    await whisper(d, at, buildError(`run ${value.r} is unknown here`));
    return;
  }
  if (!(await onItsCard(d, at, body, value))) return;
  const actor = await d.directory.actor(at.user, row.deployment);
  // Kept for redrawing the card as decided (a restart forgets it); only for display, so it never blocks a decision.
  await d.notifier.viewFor(value.r, value.i).catch(() => undefined);
  let summary;
  const decidedAt = d.now().getTime();
  try {
    summary = await d.engine.decide(value.r, actor, decision, { planHash: value.h, comment: "via Slack" });
  } catch (e) {
    if (e instanceof AgentError && e.code === "forbidden") {
      const approvers = await d.directory.labels(row.deployment);
      await whisper(d, at, buildNotice(`You can't ${decision} this: ${clip(mentionIds(e.message), 1000)}\n*Who may approve:* ${mentionList(approvers, 1500, ", ")}`, ":no_entry:"));
      return;
    }
    if (e instanceof AgentError && (e.code === "stale" || e.code === "conflict")) {
      await whisper(d, at, buildNotice(mentionIds(e.message), ":information_source:"));
      return;
    }
    throw e;
  }
  // Read once the run went on (not in the way of its next step starting): only the time the gate was asked is needed,
  // which closing the ticket leaves as it was; the latency ends when the click was taken.
  const ticket = await d.engine.store.getTicket(value.r, value.i);
  if (ticket) d.metrics.decisionLatency.observe({ kind: ticket.kind, decision }, Math.max(0, (decidedAt - Date.parse(ticket.askedAt)) / 1000));
  await d.tasks.serial(value.r, () => d.notifier.closeOpenCards(value.r));
  await d.notifier.settle(value.r, summary);
}

/** After expiry: the same gate is asked again with a fresh time to live. */
async function requestAgain(d: SlackDeps, at: Place, body: BlockAction, value: GateButtonValue): Promise<void> {
  const row = await d.engine.store.getRun(value.r);
  if (!row) {
    await whisper(d, at, buildError(`run ${value.r} is unknown here`));
    return;
  }
  if (!(await onItsCard(d, at, body, value))) return;
  const current = await d.engine.summary(value.r);
  if (current.pending?.interrupt !== value.i || current.pending.planHash !== value.h) {
    await whisper(d, at, buildNotice(`This card's gate no longer waits for a decision (run ${clip(escapeText(value.r), 200)} is ${current.status}${current.pending ? `, now at ${current.pending.step}` : ""}); nothing was asked again.`, ":information_source:"));
    return;
  }
  const summary = await d.engine.requestAgain(value.r, await d.directory.actor(at.user, row.deployment));
  await d.notifier.reopenCard(value.r, summary, at.user);
  await d.notifier.settle(value.r, summary);
}

export function registerActions(app: App, d: SlackDeps): void {
  for (const decision of ["approve", "reject"] as const) {
    app.action<BlockAction<ButtonAction>>(ACTION[decision], async ({ ack, body, action }) => {
      await ack();
      const at = placeOf(body);
      if (!at) return;
      const value = parse(GateButtonValue, action.value);
      if (!value) {
        afterAck(d, at, "decision", () => whisper(d, at, buildError("this button does not carry a valid approval request")));
        return;
      }
      afterAck(d, at, `${decision} ${value.r}`, async () => {
        if (await firstDelivery(d, body)) await decide(d, at, body, value, decision);
      });
    });
  }

  app.action<BlockAction<ButtonAction>>(ACTION.requestAgain, async ({ ack, body, action }) => {
    await ack();
    const at = placeOf(body);
    if (!at) return;
    const value = parse(GateButtonValue, action.value);
    if (!value) {
      afterAck(d, at, "request again", () => whisper(d, at, buildError("this button does not carry a valid approval request")));
      return;
    }
    afterAck(d, at, `request again ${value.r}`, async () => {
      if (await firstDelivery(d, body)) await requestAgain(d, at, body, value);
    });
  });

  app.action<BlockAction<ButtonAction>>(new RegExp(`^${ACTION.pickDeployment}`), async ({ ack, body, action }) => {
    await ack();
    const at = placeOf(body);
    const value = parse(PickValue, action.value);
    if (!at || !value) return;
    afterAck(d, at, "request", async () => {
      if (!(await firstDelivery(d, body))) return;
      const message = body.message as { ts?: string } | undefined;
      if (message?.ts) {
        await d.client.chat.update({ channel: at.channel, ts: message.ts, ...buildNotice(`Deployment: *${clip(escapeText(value.d), 200)}* (chosen by ${who(at.user)})`, ":dart:") });
      }
      await handleRequest(d, at, `${value.q} on ${value.d}`);
    });
  });
}
