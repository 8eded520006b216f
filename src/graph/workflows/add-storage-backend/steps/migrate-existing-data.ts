import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import type { CopyItem } from "../../../../tools/storage/copy.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { copyPlan } from "../copy.js";
import { bytes } from "../format.js";
import { PlacementRule } from "../placement.js";
import { currentPlan, DefineDataPlacementRules } from "./define-data-placement-rules.js";
import { IdentifyStorageRequirement } from "./identify-storage-requirement.js";
import { ProvisionStorageBackend } from "./provision-storage-backend.js";

const BATCH = 32;
const ATTEMPTS = 3;

export const MigrateExistingData = defineStep({
  name: "MigrateExistingData",
  description: "Copy the placed objects, streaming with bounded parallelism, each verified by size and hash; resumable; a failed object is retried, then reported",
  input: z.object({
    requirement: z.custom<z.infer<typeof IdentifyStorageRequirement.output>>(),
    rules: z.array(PlacementRule),
    fingerprint: z.string(),
    created: z.boolean(),
    location: z.string(),
  }),
  output: z.object({
    copyKey: z.string(),
    objects: z.number().int(),
    copied: z.number().int(),
    alreadyThere: z.number().int(),
    bytes: z.number(),
    retried: z.number().int(),
    verifiedBy: z.record(z.string(), z.number()),
  }),
  prepare: (view) => {
    const rules = view.output(DefineDataPlacementRules);
    const res = view.output(ProvisionStorageBackend).resource;
    return { requirement: view.output(IdentifyStorageRequirement), rules: rules.rules, fingerprint: rules.fingerprint, created: res.created, location: res.location };
  },
  async run(ctx, input) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const { plan } = await currentPlan(ctx, input.requirement, input.rules);
    if (plan.fingerprint !== input.fingerprint) {
      throw new AgentError("conflict", `the catalog changed since the placement was approved (plan ${plan.fingerprint}, approved ${input.fingerprint}): nothing was copied; run the request again to see the new effect`);
    }
    const items: CopyItem[] = plan.moves.map((m) => m.item);
    // Objects copied into a bucket the run only adopted are its own to delete on a rollback (by key, nothing else).
    const { key: copyKey } = await ctx.journal.intend("copy", input.created || items.length === 0 ? [] : [{
      kind: "resource", capability: "storage", id: null, resourceKind: "objects", description: `objects this run copied into ${input.location}`, created: true,
    }]);
    if (!ctx.cursor) throw new AgentError("unavailable", "this engine gives steps no durable cursor: a copy could not resume where it was, so nothing is copied");
    const cursor = await copyPlan(storage, items, {
      copyKey, batchSize: BATCH, concurrency: ctx.deploymentConfig.storage?.concurrency ?? 4, attempts: ATTEMPTS, totalBytes: plan.bytes,
      cursor: ctx.cursor, clock: ctx.adapters.clock,
      onRetry: (source, attempt, reason) => ctx.progress(`retrying ${source} (attempt ${attempt + 1} of ${ATTEMPTS}): ${reason}`),
      // Bytes are what a copy's time depends on: shown as done/total and rate in the terminal and the Slack progress message.
      progress: (p) => ctx.progress(p),
      stop: () => ctx.stopRequested(),
    });
    if (cursor.failed.length) {
      throw new AgentError("failed", `${cursor.failed.length} of ${items.length} object(s) could not be copied and verified: ${cursor.failed.slice(0, 5).map((f) => `${f.source}: ${f.reason}`).join("; ")}${cursor.failed.length > 5 ? "; ..." : ""}`);
    }
    const written = await storage.ledger.written(copyKey);
    await ctx.journal.done("copy", input.created || items.length === 0 ? [] : [{
      kind: "resource", capability: "storage", id: `copy:${copyKey}`, resourceKind: "objects", description: `${written.length} objects this run copied into ${input.location}`, created: true,
      deletes: `the ${written.length} objects this run copied into ${input.location} (nothing else in it)`,
    }]);
    const verifiedBy: Record<string, number> = {};
    for (const w of written) verifiedBy[w.verifiedBy] = (verifiedBy[w.verifiedBy] ?? 0) + 1;
    // Objects verified before a restart are in the ledger, not in this process's tally: counted as copied by this run.
    const alreadyThere = cursor.alreadyThere;
    const copied = Math.max(cursor.copied, written.length - alreadyThere);
    return {
      output: { copyKey, objects: items.length, copied, alreadyThere, bytes: cursor.bytes, retried: cursor.retried, verifiedBy },
      reason: `${items.length} objects verified (${copied} copied, ${alreadyThere} already there${cursor.resumed ? ", resumed" : ""}, ${cursor.retried} retries): ${Object.entries(verifiedBy).map(([k, v]) => `${v} by ${k}`).join(", ") || "nothing to copy"}`,
    };
  },
  gate: {
    // Moving deletes the sources (at the end, once the copies serve): the approval is a delete decision. Read from the
    // requirement the run settled on, never from the request's words.
    kind: (view) => (view.output(IdentifyStorageRequirement).move ? "delete" : "provision"),
    async describe(ctx, view) {
      const r = view.output(IdentifyStorageRequirement);
      const rules = view.output(DefineDataPlacementRules);
      const res = view.output(ProvisionStorageBackend).resource;
      const e = rules.effect;
      const price = r.backend.monthlyUsdPerGb;
      const monthly = price === null ? "price unknown" : `~$${((e.bytes / 1024 ** 3) * price).toFixed(4)}/month at $${price}/GB-month`;
      return {
        action: `Copy ${e.objects} objects (${bytes(e.bytes)}) of ${e.datasets} datasets to ${res.location}, each verified by size and hash${r.move ? `; once the copies serve (catalog updated, validated, routed, the watch window healthy), delete the ${e.objects} source objects` : ""}`,
        why: `${rules.rules.map((x) => x.id).join(", ")}: ${e.items} items, ${e.assets} assets move; ${e.staying} assets stay where they are. ${r.notes.join(" ")}`,
        risk: r.move
          ? `Irreversible at the end: the ${e.objects} source objects are deleted only after the copies are verified and the watch window is healthy; until then a rollback restores every href byte for byte. Storage: ${monthly}.`
          : `Low: copies only; the sources stay and the catalog is unchanged until UpdateCatalogReferences. Storage: ${monthly}.`,
        change: {
          resources: [{ kind: "objects", count: e.objects, bytes: e.bytes, to: res.location, action: r.move ? "move" : "copy" }],
          sections: [rules.table, { kind: "mapping", title: `First ${rules.sample.length} of ${e.objects} objects`, rows: rules.sample.map((s) => ({ from: s.from, to: s.to, transform: bytes(s.bytes) })) }],
        },
      };
    },
  },
});
