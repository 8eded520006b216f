import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { Effect, JournalEntry } from "../../core/journal.js";
import { cleanupLeftovers, rollbackFromJournal } from "../rollback.js";
import { defineStep, type GateDescription, type Leftover, type RunView, type StepContext } from "../step.js";
import { driftNow, revertSections } from "./check.js";
import { RevertParams, entriesOf, undoOfTarget } from "./params.js";

const LeftoverSchema = z.object({ id: z.string(), kind: z.string(), description: z.string(), deletes: z.string().optional(), capability: z.string().optional() });
const Restored = z.object({ restored: z.array(z.string()), leftovers: z.array(LeftoverSchema) });

const paramsOf = (view: RunView): RevertParams => RevertParams.parse(view.params);

/** The step's context with the target's journal (only the part this step puts back) as the one a rollback reads. */
const readingTarget = (ctx: StepContext, entries: JournalEntry[]): StepContext => ({ ...ctx, journal: { ...ctx.journal, entries: async () => entries } });

/**
 * Puts back one part of the target's journal through the rollback's own code, after recording in this run's journal
 * what it replaces (so a rejection later in this run, or a revert of this revert, restores it again). A value already
 * put back (a replay after a crash) is left alone; one that changed since the check stops the step.
 */
async function putBack(ctx: StepContext, p: RevertParams, kinds: Effect["kind"][]): Promise<z.infer<typeof Restored>> {
  const part = entriesOf(p, kinds);
  const undo = undoOfTarget({ ...p, entries: part });
  if (undo.steps.length === 0) return { restored: [], leftovers: [] };
  const drift = await driftNow(ctx.adapters, undo, true);
  if (drift.length) throw new AgentError("conflict", `the deployment changed since the revert was checked: ${drift.join("; ")}; nothing more is put back`);
  const mine: Effect[] = undo.steps.flatMap((s): Effect[] =>
    s.kind === "share" ? [{ kind: "share", feature: s.feature, before: s.from, after: s.to }]
    : s.kind === "config" ? s.changes.map((c): Effect => ({ kind: "config", key: c.key, before: c.before, after: c.after }))
    : [{ kind: "restore", capability: s.capability, target: s.target, before: s.from, after: s.to }]);
  await ctx.journal.intend(null, mine);
  const r = await rollbackFromJournal(readingTarget(ctx, part));
  await ctx.journal.done(null);
  return { restored: r.restored, leftovers: r.leftovers };
}

export const CheckDeployment = defineStep({
  name: "CheckDeployment",
  description: "Check that every key and share the run changed still holds what it left",
  input: RevertParams,
  output: z.object({ target: z.string(), checked: z.number().int() }),
  prepare: paramsOf,
  run: async (ctx, p) => {
    const undo = undoOfTarget(p);
    const drift = await driftNow(ctx.adapters, undo);
    if (drift.length) throw new AgentError("conflict", `the deployment changed since ${p.target}: ${drift.join("; ")}; nothing was put back`);
    const checked = undo.steps.reduce((n, s) => n + (s.kind === "config" ? s.changes.length : 1), 0);
    ctx.progress(`${checked} value(s) still as ${p.target} left them`);
    return { output: { target: p.target, checked } };
  },
});

export const RestoreTraffic = defineStep({
  name: "RestoreTraffic",
  description: "Move each traffic share the run moved back to what it found",
  input: RevertParams,
  output: Restored,
  prepare: paramsOf,
  run: async (ctx, p) => ({ output: await putBack(ctx, p, ["share"]) }),
  gate: {
    kind: "traffic",
    describe: async (_ctx, view): Promise<GateDescription> => {
      const p = paramsOf(view);
      const shares = undoOfTarget({ ...p, entries: entriesOf(p, ["share"]) }).steps.flatMap((s) => (s.kind === "share" ? [s] : []));
      const sections = revertSections({ ...p, entries: entriesOf(p, ["share"]) });
      if (shares.length === 0) {
        return { action: `Revert ${p.target}: no traffic moves back (the run moved none)`, why: `Reverting ${p.target} (${p.targetWorkflow}).`, risk: "Nothing changes at this gate; approving goes on to the config.", change: { traffic: null } };
      }
      return {
        action: `Revert ${p.target}: move traffic back as it found it (${shares.map((s) => `${s.feature} ${s.from}% -> ${s.to}%`).join(", ")})`,
        why: `Undo of ${p.target} (${p.targetWorkflow}, requested by ${p.targetRequestedBy}), newest change first: traffic before config.`,
        risk: "Requests go back to the path they used before the run; what serves the new path keeps running until the delete gate. Rejecting leaves everything as it is.",
        change: { traffic: { from: shares[0]!.from, to: shares[0]!.to }, sections },
      };
    },
  },
});

export const RestoreConfig = defineStep({
  name: "RestoreConfig",
  description: "Put each config key and capability setting the run changed back to what it found",
  input: RevertParams,
  output: Restored,
  prepare: paramsOf,
  run: async (ctx, p) => ({ output: await putBack(ctx, p, ["config", "restore"]) }),
  gate: {
    kind: "provision",
    describe: async (_ctx, view): Promise<GateDescription> => {
      const p = paramsOf(view);
      const part = { ...p, entries: entriesOf(p, ["config", "restore"]) };
      const undo = undoOfTarget(part);
      const config = undo.steps.flatMap((s) => (s.kind === "config" ? s.changes : []));
      const restores = undo.steps.filter((s) => s.kind === "restore").length;
      if (undo.steps.length === 0) {
        return { action: `Revert ${p.target}: no config to put back (the run changed none)`, why: `Reverting ${p.target} (${p.targetWorkflow}).`, risk: "Nothing changes at this gate.", change: { config: [] } };
      }
      return {
        action: `Revert ${p.target}: put ${config.length} config key(s)${restores ? ` and ${restores} setting(s)` : ""} back to what the run found`,
        why: `Undo of ${p.target} (${p.targetWorkflow}), from its journal: each key back to the value recorded before the run first changed it.`,
        risk: "Honua reloads its config; whatever the run's change served stops being used. Rejecting puts the traffic this revert moved back where the run left it.",
        change: { config, sections: revertSections(part) },
      };
    },
  },
});

export const ListLeftovers = defineStep({
  name: "ListLeftovers",
  description: "List what the run created (and the traffic router built for it) to offer for deletion",
  input: z.object({ params: RevertParams, routed: z.array(LeftoverSchema) }),
  output: z.object({ leftovers: z.array(LeftoverSchema) }),
  prepare: (view) => ({ params: paramsOf(view), routed: view.output(RestoreTraffic).leftovers }),
  run: async (ctx, input) => {
    // The rollback's own reading of what a run created (an id reported, or asked of the capability by its key).
    const created = await rollbackFromJournal(readingTarget(ctx, entriesOf(input.params, ["resource"])));
    const seen = new Set<string>();
    const leftovers: Leftover[] = [...input.routed, ...created.leftovers].filter((l) => !seen.has(`${l.kind}:${l.id}`) && seen.add(`${l.kind}:${l.id}`));
    return { output: { leftovers } };
  },
});

export const RemoveCreated = defineStep({
  name: "RemoveCreated",
  description: "Delete what the run created, now that nothing uses it",
  input: z.array(LeftoverSchema),
  output: z.object({ deleted: z.array(z.string()) }),
  prepare: (view) => view.output(ListLeftovers).leftovers,
  run: async (ctx, leftovers) => {
    if (leftovers.length === 0) return { output: { deleted: [] } };
    // A deletion cannot be undone: a revert of this run must say so instead of pretending to restore it.
    await ctx.journal.intend(null, [{ kind: "irreversible", description: `deleted ${leftovers.map((l) => l.description).join("; ")}` }]);
    await cleanupLeftovers(ctx, leftovers);
    await ctx.journal.done(null);
    return { output: { deleted: leftovers.map((l) => l.id) } };
  },
  gate: {
    kind: "delete",
    describe: async (_ctx, view): Promise<GateDescription> => {
      const p = paramsOf(view);
      const leftovers = view.output(ListLeftovers).leftovers;
      if (leftovers.length === 0) {
        return { action: `Revert ${p.target}: nothing to delete (the run created nothing that is still there)`, why: "Traffic and config are back.", risk: "Nothing is deleted.", change: { resources: [] } };
      }
      return {
        action: `Revert ${p.target}: delete ${leftovers.length} thing(s) it created: ${leftovers.map((l) => l.description).join("; ")}`,
        why: `Traffic and config are back as ${p.target} found them; what it created is no longer used but still costs money or memory.`,
        risk: `Irreversible: deletes ${leftovers.map((l) => l.deletes ?? `${l.description} and everything in it`).join("; ")}. Nothing the run did not create is touched. Reject to keep them: the restored traffic and config stay as they are.`,
        change: {
          resources: leftovers.map((l) => ({ id: l.id, kind: l.kind, action: "delete" })),
          sections: [{ kind: "table", title: `Left by ${p.target}`, columns: ["id", "kind", "what", "deleting destroys"], rows: leftovers.map((l) => [l.id, l.kind, l.description, l.deletes ?? `${l.description} and everything in it`]) }],
        },
      };
    },
  },
});

export const ReportRevert = defineStep({
  name: "ReportRevert",
  description: "Report what the revert put back and deleted",
  input: z.object({ target: z.string(), traffic: z.array(z.string()), config: z.array(z.string()), deleted: z.array(z.string()) }),
  output: z.object({ report: z.string() }),
  prepare: (view) => ({
    target: paramsOf(view).target,
    traffic: view.output(RestoreTraffic).restored,
    config: view.output(RestoreConfig).restored,
    deleted: view.output(RemoveCreated).deleted,
  }),
  run: async (_ctx, i) => ({
    output: {
      report: [
        `# Revert of ${i.target}`,
        `- traffic: ${i.traffic.join(", ") || "nothing to move back"}`,
        `- config: ${i.config.join(", ") || "nothing to put back"}`,
        `- deleted: ${i.deleted.join(", ") || "nothing"}`,
      ].join("\n"),
    },
  }),
});

export const REVERT_STEPS = [CheckDeployment, RestoreTraffic, RestoreConfig, ListLeftovers, RemoveCreated, ReportRevert];
