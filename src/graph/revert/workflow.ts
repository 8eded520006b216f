import { cleanupLeftovers, rollbackFromJournal } from "../rollback.js";
import type { WorkflowDef } from "../step.js";
import { driftNow } from "./check.js";
import { REVERT_WORKFLOW, RevertParams, undoOfTarget } from "./params.js";
import { REVERT_STEPS, RestoreConfig } from "./steps.js";

/**
 * `revert-run`: a run of its own that undoes a finished run from that run's journal, newest first, behind the gates
 * that run passed: traffic, then config, then deleting what it created. Started only by `honua-agent revert RUN` (and
 * "revert it" from an approver); the planner never plans it.
 *
 * A rejection restores what this run itself changed (its own journal), except once traffic and config are back: a
 * rejected delete gate only keeps what the reverted run created.
 */
export const revertWorkflow: WorkflowDef = {
  id: REVERT_WORKFLOW,
  title: "Revert a finished run",
  params: RevertParams,
  steps: REVERT_STEPS,
  preflight: async (_deployment, adapters, params) => {
    const drift = await driftNow(adapters, undoOfTarget(RevertParams.parse(params)));
    return { inPlace: null, refuse: drift.length ? `the deployment changed since the run: ${drift.join("; ")}` : null, notes: [] };
  },
  rollback: async (ctx, view) => {
    if (view.maybeOutput(RestoreConfig)) return { restored: [], leftovers: [] };
    // What the traffic router built belongs to the reverted run's change, back in place now: it is not offered for deletion.
    const r = await rollbackFromJournal(ctx);
    return { ...r, leftovers: [] };
  },
  cleanup: cleanupLeftovers,
};
