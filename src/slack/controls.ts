import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildHelpMessage, buildNotice, escapeText, who } from "./blocks.js";
import { reply, type Converse, type Place, type SlackDeps } from "./context.js";

/**
 * Text in a run's thread. The five plain commands act on the run (the engine checks who may);
 * anything else goes to the conversation module when it is installed, else gets the command list.
 */
export async function handleThreadText(d: SlackDeps, at: Place, run: string, text: string): Promise<void> {
  const command = text.trim().toLowerCase().replace(/[.!]+$/, "");
  const row = await d.engine.store.getRun(run);
  if (!row) return;
  switch (command) {
    case "status":
      await d.notifier.status(run);
      return;
    case "transcript":
      await d.notifier.uploadTranscript(run);
      return;
    case "pause": {
      const s = await d.engine.pause(run, await d.directory.actor(at.user, row.deployment), "paused from Slack");
      await reply(d, at, buildNotice(`${who(at.user)} paused the run: it holds before its next step (a step already running finishes first). \`resume\` continues, \`cancel\` rolls back.`, ":double_vertical_bar:"));
      await d.notifier.settle(run, s);
      return;
    }
    case "resume":
    case "continue": {
      await reply(d, at, buildNotice(`${who(at.user)} resumed the run.`, ":arrow_forward:"));
      const s = await d.engine.unpause(run, await d.directory.actor(at.user, row.deployment));
      await d.notifier.settle(run, s);
      return;
    }
    case "cancel": {
      await reply(d, at, buildNotice(`${who(at.user)} cancelled the run: what it changed is being restored.`, ":black_square_for_stop:"));
      const s = await d.engine.cancel(run, await d.directory.actor(at.user, row.deployment), "cancelled from Slack");
      await d.notifier.settle(run, s);
      return;
    }
    default: {
      const converse = await d.converse();
      if (!converse) {
        await reply(d, at, buildHelpMessage(`I only know the plain commands here (you wrote: "${escapeText(text.slice(0, 200))}").`));
        return;
      }
      const actor = await d.directory.actor(at.user, row.deployment);
      const answer = await converse(d.engine, { run, user: at.user, groups: actor.groups, text }, { env: d.env });
      await reply(d, at, { text: answer.text, blocks: [{ type: "section", text: { type: "mrkdwn", text: answer.text.slice(0, 2900) } }] });
      await d.notifier.settle(run);
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
