import type { AgentConfig } from "../../config.js";
import { AgentError } from "../../core/errors.js";
import type { JournalEntry, Undo } from "../../core/journal.js";
import { TERMINAL, type RunStatus } from "../../core/records.js";
import type { ChangeSection, ConfigChange } from "../../core/sections.js";
import type { AgentStore, RunRow } from "../../store/store.js";
import { sameSetting, settingValue } from "../../tools/config/keys.js";
import type { DeploymentAdapters } from "../../tools/types.js";
import { approverList, identity, isApprover, type Actor } from "../gates.js";
import { REVERT_WORKFLOW, RevertParams, undoOfTarget } from "./params.js";

/** What a revert needs to check a run: the store, the config, the deployment's adapters and where a run stands now. */
export interface RevertDeps {
  config: AgentConfig;
  store: AgentStore;
  adaptersFor(deployment: string): DeploymentAdapters;
  /** The run's status as the engine reports it (a run nobody drives is `interrupted`, not `running`). */
  statusOf(run: string): Promise<{ status: RunStatus; outcome: string | null }>;
}

export interface RevertPlan {
  plan: { workflow: typeof REVERT_WORKFLOW; deployment: string; params: RevertParams };
  /** What will be put back, as the gate cards show it. */
  traffic: { feature: string; from: number; to: number }[];
  config: ConfigChange[];
  sections: ChangeSection[];
  /** What the target created, offered for deletion behind the delete gate. */
  created: { id: string | null; kind: string; description: string }[];
}

/** A target the revert would put back, and the value it must hold now (what the target left). */
type Target = { what: string; matches(e: JournalEntry["effects"][number]): boolean };

/** The revert step after which a revert's restores stand even when it ends rejected (see the workflow's rollback). */
const RESTORE_CONFIG = "RestoreConfig";

const shareName = (feature: string) => `traffic share ${feature}`;

/**
 * What differs from what the target run left: each config key and traffic share it changed must still hold the
 * target's last value. Read from the adapters now; a replayed step passes `acceptRestored` (a value already put back).
 */
export async function driftNow(adapters: DeploymentAdapters, undo: Undo, acceptRestored = false): Promise<string[]> {
  const out: string[] = [];
  for (const s of undo.steps) {
    if (s.kind === "share") {
      const now = await adapters.traffic.share(s.feature);
      if (now !== s.from && !(acceptRestored && now === s.to)) out.push(`${shareName(s.feature)} is ${now}% now; the run left it at ${s.from}%`);
    } else if (s.kind === "config") {
      const values = await adapters.config.read();
      for (const c of s.changes) {
        const now = settingValue(values, c.key) ?? null;
        if (now !== c.before && !(acceptRestored && now === c.after)) out.push(`config key ${c.key} ${now === null ? "is unset now" : "holds another value now"}; the run left it ${c.before === null ? "unset" : "set"}`);
      }
    }
  }
  return out;
}

/** The targets of the undo, matched against other runs' journals (a config key in any spelling). */
function targetsOf(undo: Undo): Target[] {
  const out: Target[] = [];
  for (const s of undo.steps) {
    if (s.kind === "share") out.push({ what: shareName(s.feature), matches: (f) => f.kind === "share" && f.feature === s.feature });
    else if (s.kind === "config") for (const c of s.changes) out.push({ what: `config key ${c.key}`, matches: (f) => f.kind === "config" && sameSetting(f.key, c.key) });
    else out.push({ what: `${s.capability} ${s.target}`, matches: (f) => f.kind === "restore" && f.capability === s.capability && f.target === s.target });
  }
  return out;
}

const refused = (code: "conflict" | "stale" | "forbidden" | "bad-input", run: string, why: string) =>
  new AgentError(code, `cannot revert ${run}: ${why}; nothing was started`);

/**
 * Checks that `run` can be reverted by `actor` and returns the revert's plan, or throws with the reason. Nothing is
 * changed either way. Refused: an unknown run; an actor who may not approve on its deployment; a run that has not
 * finished, or ended other than done (rolled back, cancelled, rejected, failed); a run already reverted; a journal with
 * a point of no return; a deployment changed since (a later run's journal touched the same key or share, or the value
 * read now is not what the run left).
 */
export async function planRevert(deps: RevertDeps, run: string, actor: Actor): Promise<RevertPlan> {
  if (!/^run-[0-9a-z-]+$/.test(run)) throw new AgentError("bad-input", `"${run.slice(0, 80)}" is not a run id (run-...); nothing was started`);
  const row = await deps.store.getRun(run);
  if (!row) throw new AgentError("not-found", `unknown run ${run}; nothing was started`);
  const who = identity(actor);
  if (!isApprover(deps.config, row.deployment, who)) {
    throw refused("forbidden", run, `${who.user} may not approve on ${row.deployment}, and a revert changes it: ask one of its approvers (${approverList(deps.config, row.deployment)})`);
  }
  const { status, outcome } = await deps.statusOf(run);
  if (!TERMINAL.includes(status)) {
    throw refused("conflict", run, `it has not finished (${status}): cancel or roll it back instead (honua-agent cancel ${run} | honua-agent rollback ${run})`);
  }
  if (status !== "done") {
    const how = status === "failed" ? "it failed and was rolled back then" : `it was already ${status === "cancelled" ? "cancelled and rolled back" : status === "rejected" ? "rejected and rolled back" : "rolled back"}`;
    throw refused("stale", run, `${how}${outcome ? ` (${outcome})` : ""}; there is nothing of it left to revert`);
  }
  const later = (await deps.store.listRuns()).filter((r) => r.deployment === row.deployment && r.run !== run && r.startedAt >= row.startedAt);
  for (const r of later.filter((r) => r.workflow === REVERT_WORKFLOW)) {
    const p = RevertParams.safeParse(r.params);
    if (!p.success || p.data.target !== run) continue;
    const s = await deps.statusOf(r.run);
    if (s.status === "done") throw refused("stale", run, `it was already reverted by ${r.run}`);
    if (!TERMINAL.includes(s.status)) throw refused("conflict", run, `a revert of it is already under way: ${r.run} (${s.status})`);
  }
  const entries = await deps.store.journal(run);
  const params = RevertParams.parse({ target: run, targetWorkflow: row.workflow, targetRequestedBy: row.requestedBy, entries });
  const undo = undoOfTarget(params);
  const noReturn = entries.flatMap((e) => e.effects.flatMap((f) => (f.kind === "irreversible" ? [`${e.step}: ${f.description}`] : [])));
  if (noReturn.length) throw refused("conflict", run, `its journal marks a point of no return (${noReturn.join("; ")}), which a revert cannot restore`);
  const created = undo.resources.filter((r) => r.created);
  if (undo.steps.length === 0 && created.length === 0) throw refused("bad-input", run, "its journal records no change a revert could put back");

  const changedBy: string[] = [];
  for (const t of targetsOf(undo)) {
    const toucher = await newestToucher(deps.store, later, t);
    if (toucher) changedBy.push(`${t.what} was changed since by run ${toucher.run} (${toucher.workflow}, ${toucher.status})`);
  }
  if (changedBy.length) throw refused("conflict", run, `the deployment changed since: ${changedBy.join("; ")}`);
  const drift = await driftNow(deps.adaptersFor(row.deployment), undo);
  if (drift.length) throw refused("conflict", run, `the deployment changed since, outside honua-agent: ${drift.join("; ")}`);

  const traffic = undo.steps.flatMap((s) => (s.kind === "share" ? [{ feature: s.feature, from: s.from, to: s.to }] : []));
  const config = undo.steps.flatMap((s) => (s.kind === "config" ? s.changes : []));
  return {
    plan: { workflow: REVERT_WORKFLOW, deployment: row.deployment, params },
    traffic,
    config,
    sections: revertSections(params),
    created: created.map((r) => ({ id: r.id, kind: r.resourceKind, description: r.description })),
  };
}

/**
 * The newest later run whose change of `t` stands: one that finished done, or a revert that put traffic and config back
 * (its restores stay when its delete gate is rejected). A later run that was rolled back put back what it found; the
 * values read now tell if it did not.
 */
async function newestToucher(store: AgentStore, later: readonly RunRow[], t: Target): Promise<RunRow | undefined> {
  for (const r of later) {
    if (r.status !== "done" && r.workflow !== REVERT_WORKFLOW) continue;
    const journal = await store.journal(r.run);
    if (r.status !== "done" && !journal.some((e) => e.step === RESTORE_CONFIG && e.done)) continue;
    if (journal.some((e) => e.effects.some((f) => t.matches(f)))) return r;
  }
  return undefined;
}

/** The typed sections of a revert's plan and cards: shares, capability settings and what the run created. */
export function revertSections(p: RevertParams): ChangeSection[] {
  const undo = undoOfTarget(p);
  const out: ChangeSection[] = [];
  const shares = undo.steps.flatMap((s) => (s.kind === "share" ? [[s.feature, s.from, s.to] as [string, number, number]] : []));
  if (shares.length) out.push({ kind: "table", title: `Traffic put back as ${p.target} found it`, columns: ["feature", "now %", "back to %"], rows: shares });
  const restores = undo.steps.flatMap((s) => (s.kind === "restore" ? [[s.capability, s.target, s.from, s.to] as [string, string, string, string]] : []));
  if (restores.length) out.push({ kind: "table", title: "Settings put back", columns: ["capability", "setting", "now", "back to"], rows: restores });
  const created = undo.resources.filter((r) => r.created);
  if (created.length) {
    out.push({
      kind: "table", title: `Left by ${p.target}, offered for deletion behind a delete gate`, columns: ["id", "kind", "what", "deleting destroys"],
      rows: created.map((r) => [r.id ?? "(not reported; asked of the adapter)", r.resourceKind, r.description, r.deletes ?? `${r.description} and everything in it`]),
    });
  }
  return out;
}
