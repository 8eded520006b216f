import { cleanupLeftovers, rollbackFromJournal } from "../../rollback.js";
import type { RunView, StepContext } from "../../step.js";

/**
 * The journal's rollback: every asset href back to the exact string found (one catalog transaction), Honua's
 * FileStorage keys and the routing share back as found. What the run created (a bucket, or the objects it copied into
 * one it adopted) is left for the delete gate; sources are never deleted by a rollback.
 */
export const rollbackStorage = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);

/** Deletes a bucket the run created, or exactly the objects it copied into an adopted one. */
export const cleanupStorage = cleanupLeftovers;
