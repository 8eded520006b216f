import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { catchUp } from "../../../../tools/metadata/sync.js";
import type { MetaRecord, RecordKey } from "../../../../tools/metadata/types.js";
import { batchCopy } from "../../../patterns/batch-copy.js";
import { defineStep } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { ProvisionNewStore } from "./provision-new-store.js";
import { SelectNewMetadataStore, Selection } from "./select-new-metadata-store.js";

/** The batch time the batch size adapts to, on the deployment's clock. */
const TARGET_BATCH_MS = 2000;

export const MigrateMetadataIncrementally = defineStep({
  name: "MigrateMetadataIncrementally",
  description: "Capture every source write from now on, copy in keyset batches (resumable, cursor saved per batch, upserts by key), then apply the captured writes",
  input: z.object({ selection: Selection, location: z.string() }),
  output: z.object({
    total: z.number().int(),
    copied: z.number().int(),
    batches: z.number().int(),
    batchSize: z.number().int(),
    ratePerSecond: z.number().nullable(),
    resumed: z.boolean(),
    capture: z.object({ name: z.string(), method: z.string(), applied: z.number().int(), upserts: z.number().int(), deletes: z.number().int(), watermark: z.number() }),
  }),
  prepare: (view) => ({ selection: view.output(SelectNewMetadataStore), location: view.output(ProvisionNewStore).location }),
  async run(ctx, { selection: s, location }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const source = cap.source();
    const target = cap.target(s.target.kind);
    const capture = source.capture;
    if (!capture) throw new AgentError("unavailable", `${source.describe()} has no change capture in this version: a copy while Honua writes would lose writes, so nothing is copied`);
    if (!ctx.cursor) throw new AgentError("unavailable", "this engine gives steps no durable cursor: a batch copy could not resume, so nothing is copied");
    // Capture starts before the first batch: every write from here on reaches the target, whatever the copy has read.
    await ctx.journal.intend("capture", [{ kind: "restore", capability: "metadata", target: `capture:${s.capture}`, before: "off", after: "on" }]);
    await capture.start(s.capture);
    await ctx.journal.done("capture");
    const total = await source.count();
    const concurrency = 1;
    const copied = await batchCopy<MetaRecord, RecordKey>({
      name: s.capture,
      read: (after, limit) => source.page(after, limit),
      keyOf: (r) => ({ collection: r.collection, id: r.id }),
      write: (records, mark) => target.upsert(records, mark ?? undefined),
      targetMark: (name) => target.mark(name),
      cursor: ctx.cursor,
      clock: ctx.adapters.clock,
      total,
      batchSize: s.batchSize,
      targetBatchMs: TARGET_BATCH_MS,
      concurrency,
      progress: ({ done, total, unit, rate }) => ctx.progress({ done, total, unit, rate }),
      stop: () => ctx.stopRequested(),
    });
    const c = await catchUp(source, target, s.capture);
    ctx.progress(`applied ${c.applied} captured writes (${c.upserts} upserts, ${c.deletes} deletes) to ${location}`);
    const seconds = copied.elapsedMs / 1000;
    return {
      output: {
        total, copied: copied.copied, batches: copied.batches, batchSize: copied.batchSize, ratePerSecond: seconds > 0 ? Math.round(copied.copied / seconds) : null, resumed: copied.resumed,
        capture: { name: s.capture, method: capture.method, applied: c.applied, upserts: c.upserts, deletes: c.deletes, watermark: c.watermark },
      },
      reason: `${copied.copied} records in ${copied.batches} batches${copied.resumed ? " (resumed)" : ""}; ${c.applied} captured writes applied`,
    };
  },
});
