import { cleanupLeftovers, rollbackFromJournal } from "../../rollback.js";
import type { RunView, StepContext } from "../../step.js";

/** Caching's rollback is the journal's: exactly what this run changed, back to what it found; nothing else. */
export const rollbackCaching = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);

/** What a rollback left (a created node, keys warmed into an adopted Redis, a CDN staging copy), behind the delete gate. */
export const cleanupCaching = cleanupLeftovers;
