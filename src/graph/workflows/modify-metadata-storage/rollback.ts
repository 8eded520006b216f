import type { JournalEntry } from "../../../core/journal.js";
import { cleanupLeftovers, rollbackFromJournal } from "../../rollback.js";
import type { RollbackResult, RunView, StepContext } from "../../step.js";

/** What a rollback says once the old store is gone: reads, config and the new store all stay. */
export const PAST_RETIRE = "reads, Honua's config and the new store stay as they are: the old store was retired (its verified backup is what restores it; restore it first, then move reads back)";

/**
 * The journal's rollback: the read share back to what the run found, Honua's config as found, change capture on the
 * source turned off (its trigger dropped). The old store is never touched by a rollback; a new store this run created is
 * left for the delete gate. Past DisableOldStore (the point of no return) nothing is moved back: the new store is the
 * only one left, so the share, the config and the new store all stay, and the retire is reported as not restored.
 */
export async function rollbackMetadata(ctx: StepContext, _view: RunView): Promise<RollbackResult> {
  const entries = await ctx.journal.entries();
  if (!entries.some((e) => e.effects.some((f) => f.kind === "irreversible"))) return rollbackFromJournal(ctx);
  const kept: JournalEntry[] = entries.map((e) => ({ ...e, effects: e.effects.filter((f) => f.kind === "irreversible") }));
  const journal = { intend: ctx.journal.intend.bind(ctx.journal), done: ctx.journal.done.bind(ctx.journal), entries: async () => kept };
  const r = await rollbackFromJournal({ ...ctx, journal });
  return { ...r, notRestored: [...(r.notRestored ?? []), PAST_RETIRE] };
}

/** Deletes the new store this run created (after a delete decision). */
export const cleanupMetadata = cleanupLeftovers;
