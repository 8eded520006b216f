import type { Clock } from "../../../core/clock.js";
import { AgentError } from "../../../core/errors.js";
import type { Progress } from "../../../core/progress.js";
import { copyObjects, type CopyItem, type CopyOptions, type CopyTally } from "../../../tools/storage/copy.js";
import type { StorageCapability } from "../../../tools/storage/types.js";
import { batchCopy, type CursorStore } from "../../patterns/batch-copy.js";

export interface PlanCopyOptions extends CopyOptions {
  batchSize: number;
  /** Where the copy is between batches, durable in the agent's store for a step (batchCopy's cursor, named by `copyKey`). */
  cursor: CursorStore;
  clock: Clock;
  totalBytes?: number | null;
  /** Bytes done of the plan's bytes, after every batch. */
  progress?(p: Progress): void;
  stop?(): Promise<string | null>;
}

export interface PlanCopy extends CopyTally {
  objects: number;
  batches: number;
  resumed: boolean;
}

interface Indexed {
  i: number;
  item: CopyItem;
}

/**
 * Copies a placement plan with batchCopy: keyset batches over the plan (by position, checked against the source
 * href, so a cursor from another plan is refused), the cursor saved after every batch, each batch's objects copied
 * and verified by copyObjects. At the end every object the ledger does not hold as verified is reported as failed,
 * including one that failed before a restart: nothing the cursor passed is skipped in silence.
 */
export async function copyPlan(storage: StorageCapability, plan: readonly CopyItem[], o: PlanCopyOptions): Promise<PlanCopy> {
  const tally: CopyTally = { copied: 0, alreadyThere: 0, bytes: 0, retried: 0, failed: [] };
  const reasons = new Map<string, string>();
  const before = (await storage.ledger.written(o.copyKey)).reduce((a, r) => a + r.size, 0);
  const totalBytes = o.totalBytes ?? null;
  const copied = await batchCopy<Indexed, { i: number; source: string }>({
    name: o.copyKey,
    read: async (after, limit) => {
      if (after !== null && plan[after.i]?.source !== after.source) {
        throw new AgentError("conflict", `the copy's saved place (${after.source}, object ${after.i + 1}) is not in this plan: the plan changed since the copy started; nothing more was copied`);
      }
      const from = after === null ? 0 : after.i + 1;
      return plan.slice(from, from + limit).map((item, j) => ({ i: from + j, item }));
    },
    keyOf: (x) => ({ i: x.i, source: x.item.source }),
    write: async (batch) => {
      const t = await copyObjects(storage, batch.map((x) => x.item), o);
      tally.copied += t.copied;
      tally.alreadyThere += t.alreadyThere;
      tally.bytes += t.bytes;
      tally.retried += t.retried;
      for (const f of t.failed) reasons.set(f.source, f.reason);
    },
    cursor: o.cursor,
    clock: o.clock,
    total: plan.length,
    batchSize: o.batchSize,
    targetBatchMs: null,
    concurrency: 1,
    unit: "objects",
    progress: ({ rate, done }) => {
      const bytes = before + tally.bytes;
      // Bytes are what a copy's time depends on; the rate is objects/s scaled by the mean object size so far.
      const perObject = done > 0 ? bytes / done : 0;
      o.progress?.({ done: bytes, total: Math.max(totalBytes ?? bytes, bytes), unit: "bytes", rate: Math.round(rate * perObject) });
    },
    stop: o.stop,
  });
  const written = new Set((await storage.ledger.written(o.copyKey)).map((r) => r.source));
  tally.failed = plan.filter((x) => !written.has(x.source)).map((x) => ({ source: x.source, reason: reasons.get(x.source) ?? "not verified at the destination (it failed before the copy was resumed)" }));
  return { ...tally, objects: plan.length, batches: copied.batches, resumed: copied.resumed };
}
