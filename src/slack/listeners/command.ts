import type { App } from "@slack/bolt";
import { buildHelpMessage, requestEcho } from "../blocks.js";
import { LIMIT, clip } from "../limits.js";
import { afterAck, type SlackDeps } from "../context.js";
import { handleRequest } from "../requests.js";
import { firstDelivery } from "./dedupe.js";

/**
 * `/honua add Redis caching to prod`: acked at once; the request is then posted in the channel as the
 * root of the run's thread (a slash command has no message of its own to thread under).
 */
export function registerCommand(app: App, d: SlackDeps): void {
  app.command("/honua", async ({ ack, body, command, respond }) => {
    const text = command.text.trim();
    if (!text || /^(help|\?)$/i.test(text)) {
      await ack({ response_type: "ephemeral", text: buildHelpMessage().text });
      return;
    }
    await ack();
    d.tasks.spawn("/honua", async () => {
      if (!(await firstDelivery(d, body))) return;
      let root: string | undefined;
      try {
        root = (await d.client.chat.postMessage({ channel: command.channel_id, text: requestEcho(command.user_id, text), parse: "none", link_names: false, unfurl_links: false, unfurl_media: false })).ts;
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        await respond({ response_type: "ephemeral", text: `I can't post in this channel (${clip(why, LIMIT.text - 100)}). Invite me with \`/invite @honua\`, or DM me the request.` });
        return;
      }
      if (!root) return;
      const at = { channel: command.channel_id, threadTs: root, user: command.user_id };
      afterAck(d, at, "request", () => handleRequest(d, at, text));
    });
  });
}
