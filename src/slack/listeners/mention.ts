import type { App } from "@slack/bolt";
import type { SlackDeps } from "../context.js";
import { MessageEvent, routeMessage } from "./message.js";

/** `@honua ...` in a channel: a request, or a command when it is written in a run's thread. */
export function registerMention(app: App, d: SlackDeps): void {
  app.event("app_mention", async ({ event }) => {
    const e = MessageEvent.safeParse(event);
    if (!e.success || !e.data.user || e.data.bot_id) return;
    await routeMessage(d, { ...e.data, user: e.data.user });
  });
}

