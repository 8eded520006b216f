import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import type { Effect } from "../../../../core/journal.js";
import { ApplyOutcome, ddlId, type Op } from "../../../../tools/database/types.js";
import { IMAGE_KEY, imageWithVersion } from "../../../../tools/config/k8s.js";
import { defineStep, type RunView, type StepContext } from "../../../step.js";
import { databaseOf } from "../design.js";
import { sqlSection } from "../safety.js";
import { hasDrop } from "../../planned.js";
import { BackupDatabase } from "./backup-database.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";

/** How many times a human may send the remaining statements back for another round of tries. */
export const MAX_ROUNDS = 3;

const OpRun = z.object({ statement: z.number().int(), op: z.number().int(), sql: z.string(), status: z.enum(["done", "pending"]), result: ApplyOutcome.nullable() });
export const Applied = z.object({ round: z.number().int().min(1), ops: z.array(OpRun), pending: z.number().int().min(0), lockTimeouts: z.number().int().min(0) });
export type Applied = z.infer<typeof Applied>;

const rounds = (view: RunView): Applied[] =>
  view.state.steps.filter((s) => s.name === "ApplySchemaChanges" && s.status === "done").map((s) => Applied.parse(s.output));

/** One round, plus one more each time a round ended with statements that could not get their lock (each behind its own gate). */
function stagesOf(view: RunView): number[] {
  const done = rounds(view);
  const last = done.at(-1);
  const n = Math.min(MAX_ROUNDS, done.length + (last && last.pending > 0 ? 1 : 0));
  return Array.from({ length: Math.max(1, n) }, (_, i) => i + 1);
}

/** What the journal records before an operation runs: how the rollback (or the delete gate) undoes it. */
function effectsOf(op: Op, id: string | null): Effect[] {
  switch (op.inverse.kind) {
    case "drop":
      return [{ kind: "resource", capability: "database", id, resourceKind: op.inverse.resourceKind, description: op.inverse.description, created: true, deletes: op.inverse.deletes }];
    case "restore":
      return [{ kind: "restore", capability: "database", target: id ?? "", before: op.inverse.sql, after: op.sql }];
    case "impossible":
      return [{ kind: "irreversible", description: `${op.sql}: ${op.inverse.why}` }];
  }
}

export const ApplySchemaChanges = defineStep({
  name: "ApplySchemaChanges",
  description: "Run each statement in its own session with lock_timeout and statement_timeout, CONCURRENTLY outside a transaction, lock timeouts retried with backoff and jitter; an INVALID index is dropped and rebuilt",
  input: z.object({ safety: Safety, previous: Applied.nullable() }),
  output: Applied,
  stages: stagesOf,
  stagesArePercent: false,
  prepare: (view) => ({ safety: view.output(ValidateMigrationSafety), previous: rounds(view).at(-1) ?? null }),
  async run(ctx, { safety, previous }, stage) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const round = stage ?? 1;
    const o = { ...db.options, progress: (m: string) => ctx.progress(m) };
    const ops: z.infer<typeof OpRun>[] = [];
    let blocked: string | null = null;
    let lockTimeouts = 0;
    for (const [i, st] of safety.statements.entries()) {
      for (const [j, op] of st.ops.entries()) {
        const carried = previous?.ops.find((x) => x.statement === i && x.op === j && x.status === "done");
        if (carried) {
          ops.push(carried);
          continue;
        }
        if (blocked) {
          ops.push({ statement: i, op: j, sql: op.sql, status: "pending", result: null });
          continue;
        }
        const name = `op:${i}.${j}`;
        // Write-ahead: the rollback learns what this operation may have done even if the process dies inside it.
        const { key } = await ctx.journal.intend(name, effectsOf(op, op.inverse.kind === "restore" ? ddlId(ctx.idempotencyKey(name)) : null));
        ctx.progress(`${i + 1}.${j + 1}: ${op.sql}`);
        const r = await db.apply(op, key, o);
        lockTimeouts += r.lockTimeouts;
        if (r.outcome === "lock-busy") {
          await ctx.journal.done(name);
          blocked = `${op.sql}: ${r.note ?? "lock not granted"}`;
          ops.push({ statement: i, op: j, sql: op.sql, status: "pending", result: r });
          continue;
        }
        await ctx.journal.done(name, op.inverse.kind === "drop" && r.outcome !== "already" ? effectsOf(op, ddlId(key)) : []);
        ops.push({ statement: i, op: j, sql: op.sql, status: "done", result: r });
      }
    }
    const pending = ops.filter((x) => x.status === "pending").length;
    const output = { round, ops, pending, lockTimeouts };
    if (!blocked) return { output, reason: `${ops.length} operation(s): ${ops.map((x) => x.result?.outcome ?? "carried").join(", ")}` };
    if (round >= MAX_ROUNDS) throw new AgentError("failed", `${pending} operation(s) never got their lock in ${round} rounds (${blocked}); what ran is rolled back`);
    return {
      output,
      verdict: "inconclusive",
      reason: `${blocked}. ${pending} operation(s) not run; nothing waits in PostgreSQL's lock queue. Approve to try them again (behind another ${"provision"} gate) once the blocking session is gone, or reject to roll back what ran`,
    };
  },
  gate: {
    kind: (view) => (view.maybeOutput(ValidateMigrationSafety)?.destructive ?? hasDrop(view) ? "delete" : "provision"),
    async describe(ctx, view, stage) {
      const safety = view.output(ValidateMigrationSafety);
      const backup = view.output(BackupDatabase);
      const prev = rounds(view).at(-1);
      const retry = (stage ?? 1) > 1 && prev;
      const irreversible = safety.statements.flatMap((s) => s.ops).filter((o) => o.inverse.kind === "impossible" && o.expect.kind.startsWith("no-"));
      return {
        action: retry
          ? `Try the ${prev.pending} remaining operation(s) on ${ctx.deployment} again (round ${stage} of ${MAX_ROUNDS})`
          : `Apply ${safety.statements.length} schema change(s) on ${ctx.deployment}'s database${safety.rewrites ? ` (${safety.rewrites} rewritten to a safe form)` : ""}`,
        why: `${databaseOf(ctx.adapters, ctx.deployment).describe()}; backup ${backup.location} (${backup.verifiedBy}).${safety.warnings.length ? ` ${safety.warnings.join("; ")}.` : ""}${retry ? "" : await rolloutNote(ctx)}`,
        risk: irreversible.length
          ? `Destructive: ${irreversible.map((o) => o.sql).join("; ")}. This cannot be undone by a rollback; only the backup has the data.`
          : `Low: each statement takes its lock for at most ${db(ctx).options.lockTimeoutMs} ms of waiting, then gives up and retries; writes continue during index builds. Rollback runs the inverses shown.`,
        change: { sections: [sqlSection(safety.statements)] },
      };
    },
  },
});

const db = (ctx: { adapters: Parameters<typeof databaseOf>[0]; deployment: string }) => databaseOf(ctx.adapters, ctx.deployment);

/** What approving also leads to: the Honua version the change needs, rolled out by UpdateApplicationCode. */
async function rolloutNote(ctx: StepContext): Promise<string> {
  const version = db(ctx).honuaVersion;
  if (!version) return "";
  const from = (await ctx.adapters.config.read())[IMAGE_KEY];
  if (from === undefined) return ` Honua ${version} is needed after it; this deployment's config holds no image to roll out, so the run will stop for you to deploy it.`;
  const to = imageWithVersion(from, version);
  if (to === from) return ` Honua ${version} already runs.`;
  const how = ctx.adapters.config.imageRollout?.() ?? null;
  return how ? ` Then Honua is rolled out: ${from} -> ${to} (${how}).` : ` Honua ${version} (${to}) is needed after it and nothing is configured to roll it out: the run will stop for you to deploy it.`;
}
