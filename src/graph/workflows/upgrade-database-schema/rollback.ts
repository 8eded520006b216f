import { cleanupLeftovers, rollbackFromJournal } from "../../rollback.js";
import type { Leftover, RunView, StepContext } from "../../step.js";

/**
 * The journal's rollback: restoring inverses (a constraint dropped, a default put back, NOT NULL lifted) run at once,
 * newest first, each only where this run's statement really changed something. What the run created (an index, a
 * column, an extension, a table) is left for the delete gate; DROPs are points of no return, named as such.
 */
export const rollbackSchema = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);

/** Deletes what the run created, newest first (a column after the constraint on it), each by the inverse recorded when it was applied. */
export const cleanupSchema = (ctx: StepContext, leftovers: readonly Leftover[]) =>
  cleanupLeftovers(ctx, [...leftovers.filter((l) => l.capability === "database")].reverse().concat(leftovers.filter((l) => l.capability !== "database")));
