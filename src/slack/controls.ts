import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildAnswer, buildHelpMessage, buildNotice, escapeText, who } from "./blocks.js";
import { clip } from "./limits.js";
import { reply, type Converse, type Place, type SlackDeps } from "./context.js";
import { REVERT_COMMAND, revertInThread } from "./revert.js";

/**
 * Text in a run's thread. The five plain commands act on the run (the engine checks who may);
 * anything else goes to the conversation module when it is installed, else gets the command list.
 */
export async function handleThreadText(d: SlackDeps, at: Place, run: string, text: string): Promise<void> {
  const command = text.trim().toLowerCase().replace(/[.!]+$/, "");
  const row = await d.engine.store.getRun(run);
  if (!row) return;
  // Controls need the user's groups only to recognise an approver: when Slack's user-group lookup fails, the
  // requester can still pause, resume or cancel their own run (the engine allows them without any group).
  const controller = () =>
    d.directory.actor(at.user, row.deployment).catch((e: unknown) => {
      if (at.user === row.requestedBy) return { user: at.user, groups: [] };
      throw e;
    });
  const revert = REVERT_COMMAND.exec(command);
  if (revert) {
    await revertInThread(d, at, revert[1] ?? run);
    return;
  }
  switch (command) {
    case "status":
      await d.notifier.status(run);
      return;
    case "transcript":
      await d.notifier.uploadTranscript(run);
      return;
    case "pause": {
      const s = await d.engine.pause(run, await controller(), "paused from Slack");
      await reply(d, at, buildNotice(`${who(at.user)} paused the run: it holds before its next step (a step already running finishes first). \`resume\` continues, \`cancel\` rolls back.`, ":double_vertical_bar:"));
      await d.notifier.settle(run, s);
      return;
    }
    case "resume":
    case "continue": {
      // Announced once the engine accepted it: a refused command (not the requester or an approver, an
      // expired gate, a run that ended) is answered privately and never reads as done in the thread.
      const s = await d.engine.unpause(run, await controller());
      await reply(d, at, buildNotice(`${who(at.user)} resumed the run.`, ":arrow_forward:"));
      await d.notifier.settle(run, s);
      return;
    }
    case "cancel": {
      const s = await d.engine.cancel(run, await controller(), "cancelled from Slack");
      const done = s.status === "cancelled" || s.status === "rolled-back" || s.status === "rejected";
      await reply(d, at, buildNotice(`${who(at.user)} cancelled the run: ${done ? "what it changed was restored" : "it stops and restores what it changed before its next step"}.`, ":black_square_for_stop:"));
      await d.notifier.settle(run, s);
      return;
    }
    default: {
      const converse = await d.converse();
      if (!converse) {
        await reply(d, at, buildHelpMessage(`I only know the plain commands here (you wrote: "${clip(escapeText(text), 200)}").`));
        return;
      }
      const actor = await d.directory.actor(at.user, row.deployment);
      const answer = await converse(d.engine, { run, user: at.user, groups: actor.groups, text }, { env: d.env });
      await reply(d, at, buildAnswer(answer.text));
      await d.notifier.settle(run);
      // A revert the conversation started ("could you revert this please") posts its cards in this thread too.
      for (const a of answer.actions ?? []) {
        if (!a.started) continue;
        const started = await d.engine.summary(a.started);
        await d.notifier.bind(a.started, { channel: at.channel, threadTs: at.threadTs, planTs: null, progressTs: null });
        await d.notifier.settle(a.started, started);
      }
    }
  }
}

/**
 * The conversation module (`src/conversation/index.ts`), loaded when it exists; null otherwise. Looked up
 * at run time so this front works with and without it.
 */
export async function loadConverse(): Promise<Converse | null> {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = ["index.ts", "index.js"].map((f) => join(here, "..", "conversation", f));
  const file = candidates.find((f) => existsSync(f));
  if (!file) return null;
  const mod: unknown = await import(pathToFileURL(file).href);
  if (mod && typeof mod === "object" && "converse" in mod && typeof mod.converse === "function") return mod.converse as Converse;
  return null;
}
