import type { webApi } from "@slack/bolt";
import type { Engine } from "../engine.js";
import { AgentError } from "../core/errors.js";
import type { PlanResult } from "../planner/plan.js";
import type { ApproverDirectory } from "./approvers.js";
import { buildError, mentionIds, type SlackMessage } from "./blocks.js";
import type { SlackMetrics } from "./metrics.js";
import type { ThreadNotifier } from "./notifier.js";
import type { SlackStore } from "./store.js";
import type { Tasks } from "./tasks.js";

/** Thread text that is not a plain command: answered by the conversation module when there is one. */
export type Converse = (engine: Engine, input: { run: string; user: string; groups: string[]; text: string }, opts?: { env?: NodeJS.ProcessEnv }) => Promise<{ text: string; actions?: readonly { started?: string }[] }>;

/** What every listener works with; built once by the server. */
export interface SlackDeps {
  engine: Engine;
  client: webApi.WebClient;
  store: SlackStore;
  notifier: ThreadNotifier;
  directory: ApproverDirectory;
  tasks: Tasks;
  metrics: SlackMetrics;
  now: () => Date;
  botUserId: string;
  /** The environment the server was started with (planner and conversation read model settings from it). */
  env: NodeJS.ProcessEnv;
  plan(text: string): Promise<PlanResult>;
  converse(): Promise<Converse | null>;
}

/** Where a reply goes: a thread, and the user for ephemeral answers. */
export interface Place {
  channel: string;
  threadTs: string;
  user: string;
}

/** The bot's own mention, removed from request text (`<@U123>` or `<@U123|honua>`). */
export const stripMention = (text: string, botUserId: string): string =>
  text.replace(new RegExp(`<@${botUserId}(?:\\|[^>]*)?>`, "g"), " ").replace(/\s+/g, " ").trim();

export async function reply(d: SlackDeps, at: Pick<Place, "channel" | "threadTs">, msg: SlackMessage): Promise<void> {
  await d.client.chat.postMessage({ channel: at.channel, thread_ts: at.threadTs, ...msg });
}

export async function whisper(d: SlackDeps, at: Place, msg: SlackMessage): Promise<void> {
  await d.client.chat.postEphemeral({ channel: at.channel, user: at.user, thread_ts: at.threadTs, ...msg });
}

/**
 * Work after the ack: coded engine refusals go back to the person who asked (privately when it is about
 * them), anything else is posted in the thread. Nothing is only logged.
 */
export function afterAck(d: SlackDeps, at: Place, label: string, fn: () => Promise<void>): void {
  d.tasks.spawn(label, async () => {
    try {
      await fn();
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      try {
        if (e instanceof AgentError && (e.code === "forbidden" || e.code === "stale")) await whisper(d, at, buildError(text, true));
        else await reply(d, at, buildError(e instanceof AgentError ? text : `${label} failed: ${text}`));
      } catch (postError) {
        console.error(`honua-agent slack: ${label} failed (${mentionIds(text)}) and the error could not be posted: ${postError instanceof Error ? postError.message : String(postError)}`);
      }
    }
  });
}
