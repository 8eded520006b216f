import { cleanupLeftovers, rollbackFromJournal } from "../../rollback.js";
import type { RunView, StepContext } from "../../step.js";

/**
 * The journal's rollback: the read share back to what the run found, Honua's config as found, change capture on the
 * source turned off (its trigger dropped). The old store is never touched by a rollback; a new store this run created is
 * left for the delete gate. After DisableOldStore (the point of no return) the retire is reported as not restored.
 */
export const rollbackMetadata = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);

/** Deletes the new store this run created (after a delete decision). */
export const cleanupMetadata = cleanupLeftovers;
