import type { App } from "@slack/bolt";
import { z } from "zod";
import { afterAck, stripMention, type SlackDeps } from "../context.js";
import { handleThreadText } from "../controls.js";
import { handleRequest } from "../requests.js";

/** The fields of a message or app_mention event this front reads; anything else is ignored. */
export const MessageEvent = z.object({
  type: z.string(),
  subtype: z.string().optional(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  text: z.string().default(""),
  channel: z.string(),
  channel_type: z.string().optional(),
  ts: z.string(),
  thread_ts: z.string().optional(),
});
type MessageEvent = z.infer<typeof MessageEvent>;

/** A thread reply (in a run's thread) is a command; anything else is a new request. */
export async function routeMessage(d: SlackDeps, e: MessageEvent & { user: string }): Promise<void> {
  const text = stripMention(e.text, d.botUserId);
  const inThread = e.thread_ts !== undefined && e.thread_ts !== e.ts;
  const at = { channel: e.channel, threadTs: e.thread_ts ?? e.ts, user: e.user };
  // The lookup is work after the ack too: the message was addressed to the bot, so a failure is answered there.
  afterAck(d, at, "request", async () => {
    const run = inThread ? await d.store.runInThread(e.channel, e.thread_ts!) : undefined;
    if (run) await handleThreadText(d, at, run, text);
    else await handleRequest(d, at, text);
  });
}

/**
 * Plain messages: every top-level DM is a request; in channels only replies in a run's thread are read
 * (commands). A channel message that mentions the bot arrives as app_mention too and is handled there.
 */
export function registerMessages(app: App, d: SlackDeps): void {
  app.event("message", async ({ event }) => {
    const e = MessageEvent.safeParse(event);
    // A reply also sent to the channel (thread_broadcast) is still a reply; edits, joins and bot posts are not read.
    if (!e.success || (e.data.subtype && e.data.subtype !== "thread_broadcast") || e.data.bot_id || !e.data.user || e.data.user === d.botUserId) return;
    const m = { ...e.data, user: e.data.user };
    if (m.channel_type === "im") {
      await routeMessage(d, m);
      return;
    }
    if (m.text.includes(`<@${d.botUserId}`)) return;
    if (m.thread_ts === undefined || m.thread_ts === m.ts) return;
    const run = await d.store.runInThread(m.channel, m.thread_ts);
    if (!run) return;
    const at = { channel: m.channel, threadTs: m.thread_ts, user: m.user };
    afterAck(d, at, "thread command", () => handleThreadText(d, at, run, m.text));
  });
}
