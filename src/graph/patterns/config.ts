import type { Effect } from "../../core/journal.js";
import type { ConfigChange } from "../../core/sections.js";
import { diffConfig } from "../../tools/config/diff.js";
import type { StepContext } from "../step.js";

const configOf = (effects: readonly Effect[]): ConfigChange[] =>
  effects.flatMap((e) => (e.kind === "config" ? [{ key: e.key, before: e.before, after: e.after }] : []));

/**
 * Writes `desired` into Honua's config (each key where it already lives, in its spelling), journalled before it acts:
 * a replay after a crash applies what the first attempt recorded, and the rollback restores each key to the value
 * found. `name` tells two writes of one step apart (null: the step's own key). Returns the changes made.
 */
export async function applyConfig(ctx: StepContext, desired: Record<string, string | null>, name: string | null = null): Promise<ConfigChange[]> {
  const planned = diffConfig(await ctx.adapters.config.read(), desired);
  const { key, effects } = await ctx.journal.intend(name, planned.map((c): Effect => ({ kind: "config", ...c })));
  const changes = configOf(effects);
  if (changes.length) await ctx.adapters.config.apply(changes, key);
  await ctx.journal.done(name);
  return changes;
}
