import { rollbackFromJournal } from "../../rollback.js";
import type { RunView, StepContext } from "../../step.js";

/**
 * The journal's rollback: every rule file, manifest, retention file and the Alertmanager config back byte for byte to
 * what this run found (one reload per service whose files it changed), each dashboard back to the version found (one
 * the run created deleted, one it deleted re-created). Nothing this run did not change is touched.
 */
export const rollbackObservability = (ctx: StepContext, _view: RunView) => rollbackFromJournal(ctx);
