import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { Backup, type MetadataStore } from "../../../../tools/metadata/types.js";
import { catchUp, compareStores } from "../../../../tools/metadata/sync.js";
import { defineStep, type StepContext } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { AnalyzeCurrentMetadataStore } from "./analyze-current-metadata-store.js";
import { SelectNewMetadataStore, Selection } from "./select-new-metadata-store.js";

/** A backup that is not verified refuses the retire: nothing is removed. */
export function requireVerified(b: Backup, store: string): void {
  if (!b.verified) throw new AgentError("failed", `refused to retire ${store}: its backup at ${b.location} is not verified (${b.verifiedBy}); the old store is untouched`);
}

/**
 * The point of no return: the last captured writes applied and the stores proven equal, the old store backed up and
 * the backup verified, recorded as irreversible in the journal, then capture stopped and the old store removed.
 */
export async function retireOldStore(ctx: StepContext, source: MetadataStore, target: MetadataStore, capture: string, backupDir: string): Promise<{ backup: Backup; retired: string[] }> {
  await catchUp(source, target, capture);
  const sums = await compareStores(source, target, { queries: [], capture });
  if (sums.mismatchCount || sums.sourceCount !== sums.targetCount) {
    throw new AgentError("failed", `refused to retire ${source.describe()}: the new store differs (${sums.mismatchCount} mismatching record(s): ${sums.mismatches.slice(0, 5).map((m) => m.key).join(", ")}); nothing was removed`);
  }
  const backup = Backup.parse(JSON.parse(await ctx.remember("backup", JSON.stringify(await source.backup(backupDir, `${capture}-${source.kind}`)))));
  requireVerified(backup, source.describe());
  await ctx.journal.intend("retire", [{ kind: "irreversible", description: `${source.describe()} retired (${backup.records} records); backup ${backup.location} (${backup.format}, sha256 ${backup.sha256.slice(0, 16)}, ${backup.verifiedBy})` }]);
  await source.capture?.stop(capture);
  const retired = await source.retire();
  await ctx.journal.done("retire");
  return { backup, retired };
}

export const DisableOldStore = defineStep({
  name: "DisableOldStore",
  description: "Stop change capture and retire the old store, only after a verified backup (PostgreSQL: pg_dump -Fc checked with pg_restore --list; files: archive + SHA-256 manifest): the point of no return",
  input: z.object({ selection: Selection, source: z.string() }),
  output: z.object({ backup: Backup, retired: z.array(z.string()) }),
  prepare: (view) => ({ selection: view.output(SelectNewMetadataStore), source: view.output(AnalyzeCurrentMetadataStore).store.location }),
  async run(ctx, { selection: s }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const r = await retireOldStore(ctx, cap.source(), cap.target(s.target.kind), s.capture, cap.backupDir);
    ctx.progress(`backup ${r.backup.location} (${r.backup.bytes} bytes, ${r.backup.verifiedBy}); ${r.retired.join("; ")}`);
    return { output: r, reason: `${r.retired.join("; ")}; backup kept at ${r.backup.location}` };
  },
  gate: {
    kind: "delete",
    async describe(ctx, view) {
      const s = view.output(SelectNewMetadataStore);
      const a = view.output(AnalyzeCurrentMetadataStore);
      const cap = metadataOf(ctx.adapters, ctx.deployment);
      return {
        action: `Retire the old store ${a.store.location}: back it up to ${cap.backupDir}, verify the backup, stop change capture, remove it`,
        why: `Every read is on ${s.target.location} and the watch window was healthy. Writes captured until now are applied first and the stores compared once more.`,
        risk: `Irreversible: after this a rollback can no longer move reads back to ${a.store.location}; the verified backup (${a.store.kind === "postgres" ? "pg_dump -Fc, checked with pg_restore --list" : a.store.kind === "files" ? "tar.gz with a SHA-256 manifest, extracted and checked" : "a copy read back"}) is what restores it. Refused without a verified backup.`,
        change: { resources: [{ kind: `${a.store.kind} catalog`, name: a.store.location, action: "delete", records: a.records, backupTo: cap.backupDir }] },
      };
    },
  },
});
