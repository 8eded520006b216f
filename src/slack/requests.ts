import { AgentError } from "../core/errors.js";
import { requestTooLong } from "../core/text.js";
import { isClarify, isPlan } from "../planner/plan.js";
import { buildClarifyMessage, buildError, buildHelpMessage, buildNotice, buildPlanMessage, buildProgressMessage, escapeText, progressLines } from "./blocks.js";
import { reply, type Place, type SlackDeps } from "./context.js";

/**
 * A request from a mention, a DM, `/honua` or a deployment button: plan it, then in the thread post the
 * plan and a progress message, start the run (to its first gate or its end) and settle the thread.
 */
export async function handleRequest(d: SlackDeps, at: Place, text: string): Promise<void> {
  if (!text || /^(help|\?)$/i.test(text)) {
    await reply(d, at, buildHelpMessage());
    return;
  }
  const tooLong = requestTooLong(text);
  if (tooLong) {
    await reply(d, at, buildNotice(`I didn't read that: ${escapeText(tooLong)}.`, ":no_entry:"));
    return;
  }
  const planned = await d.plan(text);
  if (!isPlan(planned)) {
    if (isClarify(planned)) {
      const deployments = planned.missing.includes("deployment") || planned.unknownDeployment ? Object.keys(d.engine.config.config.deployments) : [];
      await reply(d, at, buildClarifyMessage({ question: planned.clarify, request: text, deployments }));
    } else {
      await reply(d, at, buildNotice(`I won't do that: ${escapeText(planned.refuse)}`, ":no_entry:"));
    }
    return;
  }
  const plan = { workflow: planned.workflow, deployment: planned.deployment, params: planned.params };
  const def = d.engine.workflow(plan.workflow);
  // What is there already is read before anything is posted as a plan: an existing change starts nothing.
  const pre = await d.engine.preflight(plan);
  if (pre.inPlace) {
    await reply(d, at, buildNotice(`Already in place: ${escapeText(pre.inPlace.summary)}. Nothing to do; nothing was started.\n${pre.inPlace.evidence.map((e) => `• ${escapeText(e)}`).join("\n")}`, ":white_check_mark:"));
    return;
  }
  if (pre.refuse) {
    await reply(d, at, buildNotice(`I can't do that here: ${escapeText(pre.refuse)}`, ":no_entry:"));
    return;
  }
  const planMsg = buildPlanMessage({
    workflow: plan.workflow, title: def.title, deployment: plan.deployment, params: plan.params,
    steps: def.steps.map((s) => ({ name: s.name, gated: s.gated })), requestedBy: at.user, cost: null, unavailable: def.unavailable,
  });
  const planTs = (await d.client.chat.postMessage({ channel: at.channel, thread_ts: at.threadTs, ...planMsg })).ts ?? null;
  if (def.unavailable) {
    await reply(d, at, buildError(`${plan.workflow} cannot run in this version: ${def.unavailable}`));
    return;
  }
  if (pre.notes.length) await reply(d, at, buildNotice(pre.notes.map((n) => `• ${escapeText(n)}`).join("\n"), ":information_source:"));
  const placeholder = buildProgressMessage({ run: "(starting)", workflow: plan.workflow, deployment: plan.deployment, status: "running", lines: progressLines(def.steps, [], null, null), outcome: null });
  const progressTs = (await d.client.chat.postMessage({ channel: at.channel, thread_ts: at.threadTs, ...placeholder })).ts ?? null;
  const thread = { channel: at.channel, threadTs: at.threadTs, planTs, progressTs };
  let summary;
  try {
    summary = await d.notifier.startingIn(thread, () => d.engine.start(plan, at.user, text));
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (progressTs) {
      await d.client.chat.update({ channel: at.channel, ts: progressTs, ...buildNotice(`Not started: ${escapeText(why)}`, e instanceof AgentError && e.code === "conflict" ? ":lock:" : ":warning:") });
    }
    if (!(e instanceof AgentError)) throw e;
    await reply(d, at, buildError(why));
    return;
  }
  await d.notifier.bind(summary.run, thread);
  await d.notifier.settle(summary.run, summary);
}
