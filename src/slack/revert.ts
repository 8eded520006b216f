import { AgentError } from "../core/errors.js";
import { REVERT_WORKFLOW } from "../graph/revert/params.js";
import { renderRevertPlan } from "../graph/revert/render.js";
import { buildError, buildNotice, buildProgressMessage, escapeText, progressLines, who } from "./blocks.js";
import { reply, type Place, type SlackDeps } from "./context.js";
import { clip } from "./limits.js";

/** "revert it" / "revert run X" in a thread: what goes back, then a new run in this thread, its gates carded like any run's. */
export const REVERT_COMMAND = /^(?:please\s+)?revert(?:\s+(?:it|this|that|the change|(?:run\s+)?(run-[0-9a-z-]+)))?$/;

/**
 * Starts a revert of `target` asked for in a thread by `at.user`, checked as the user's own (an approver of the
 * deployment). A refusal (not finished, already reverted, changed since, not allowed) is thrown with its reason and
 * starts nothing; the revert run is bound to this thread, so its cards and progress are posted here.
 */
export async function revertInThread(d: SlackDeps, at: Place, target: string): Promise<void> {
  const row = await d.engine.store.getRun(target);
  if (!row) throw new AgentError("not-found", `unknown run ${target}; nothing was started`);
  const actor = await d.directory.actor(at.user, row.deployment);
  const plan = await d.engine.revertPlan(target, actor);
  const planTs = (await d.client.chat.postMessage({ channel: at.channel, thread_ts: at.threadTs, ...buildNotice(`${who(at.user)} asked to revert ${target}:\n\`\`\`${escapeText(clip(renderRevertPlan(plan), 2500))}\`\`\``, ":leftwards_arrow_with_hook:") })).ts ?? null;
  const def = d.engine.workflow(REVERT_WORKFLOW);
  const placeholder = buildProgressMessage({ run: "(starting)", workflow: REVERT_WORKFLOW, deployment: row.deployment, status: "running", lines: progressLines(def.steps, [], null, null), outcome: null });
  const progressTs = (await d.client.chat.postMessage({ channel: at.channel, thread_ts: at.threadTs, ...placeholder })).ts ?? null;
  const thread = { channel: at.channel, threadTs: at.threadTs, planTs, progressTs };
  let summary;
  try {
    summary = await d.notifier.startingIn(thread, () => d.engine.revert(target, actor));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (progressTs) await d.client.chat.update({ channel: at.channel, ts: progressTs, ...buildNotice(`Not started: ${escapeText(why)}`, ":warning:") });
    if (!(e instanceof AgentError)) throw e;
    await reply(d, at, buildError(why));
    return;
  }
  await d.notifier.bind(summary.run, thread);
  await d.notifier.settle(summary.run, summary);
}
