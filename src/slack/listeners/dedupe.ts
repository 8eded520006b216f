import type { App } from "@slack/bolt";
import { z } from "zod";
import type { SlackDeps } from "../context.js";

const Body = z.object({
  event_id: z.string().optional(),
  type: z.string().optional(),
  trigger_id: z.string().optional(),
  command: z.string().optional(),
  user: z.object({ id: z.string() }).optional(),
  actions: z.array(z.object({ action_id: z.string().optional(), action_ts: z.string().optional() })).optional(),
});

/** The identity of one delivery from Slack: the same for a retry or a replay of it, different for a new click. */
export function deliveryId(body: unknown): string | undefined {
  const b = Body.safeParse(body);
  if (!b.success) return undefined;
  if (b.data.event_id) return `event:${b.data.event_id}`;
  const action = b.data.actions?.[0];
  if (b.data.type === "block_actions" && action?.action_ts) return `action:${action.action_id ?? ""}:${action.action_ts}:${b.data.user?.id ?? ""}`;
  if (b.data.command && b.data.trigger_id) return `command:${b.data.trigger_id}`;
  return undefined;
}

/**
 * True the first time a delivery is seen; a Slack retry (`x-slack-retry-num`), a duplicate event id or a
 * replayed signed click gets false. Seen ids are persisted, so this holds across a restart.
 */
export async function firstDelivery(d: SlackDeps, body: unknown): Promise<boolean> {
  const id = deliveryId(body);
  if (!id || (await d.store.firstSight(id, d.now().toISOString()))) return true;
  d.metrics.duplicates.inc();
  return false;
}

/**
 * Events: Bolt has acked them before any middleware, so duplicates are dropped here, before any listener.
 * Clicks and commands are acked by their listener first and checked right after (a database write before
 * the ack would only make every ack slower).
 */
export function registerDedupe(app: App, d: SlackDeps): void {
  app.use(async (args) => {
    if (deliveryId(args.body)?.startsWith("event:") && !(await firstDelivery(d, args.body))) return;
    await args.next();
  });
}
