import { z } from "zod";
import { JournalEntry, undoOf, type Undo } from "../../core/journal.js";

/** The workflow id of a revert: a run of its own that undoes a finished run from that run's journal. */
export const REVERT_WORKFLOW = "revert-run";

/**
 * What a revert undoes, fixed when it is planned: the finished run and its journal as recorded (a finished run's
 * journal never changes). Every card and step reads what to put back from here, so what the approvers see is what runs.
 */
export const RevertParams = z
  .object({
    /** The finished run this one undoes. */
    target: z.string().regex(/^run-[0-9a-z-]+$/, "a run id (run-...)"),
    targetWorkflow: z.string().min(1),
    targetRequestedBy: z.string(),
    /** The target's journal, as recorded. */
    entries: z.array(JournalEntry),
  })
  .strict();
export type RevertParams = z.infer<typeof RevertParams>;

/** The part of the target's journal one revert step puts back: only the effects of the kinds it handles. */
export function entriesOf(p: RevertParams, kinds: readonly JournalEntry["effects"][number]["kind"][]): JournalEntry[] {
  return p.entries.map((e) => ({ ...e, effects: e.effects.filter((f) => kinds.includes(f.kind)) })).filter((e) => e.effects.length > 0);
}

export const undoOfTarget = (p: RevertParams): Undo => undoOf(p.entries);
