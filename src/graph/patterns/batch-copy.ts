import { z } from "zod";
import type { Clock } from "../../core/clock.js";
import { AgentError } from "../../core/errors.js";
import type { Progress, ProgressUnit } from "../../core/progress.js";

/** Where a batch copy has got to: the last key copied (keyset), counts, the batch size it adapted to. Saved after every batch. */
export const CopyCursor = z.object({
  after: z.unknown().nullable(),
  copied: z.number().int().nonnegative(),
  batches: z.number().int().nonnegative(),
  batchSize: z.number().int().positive(),
  /** Copy time so far on the injected clock, across restarts. */
  elapsedMs: z.number().nonnegative(),
  done: z.boolean(),
});
export type CopyCursor = z.infer<typeof CopyCursor>;

/** The structured progress a step reports (`ctx.progress`): records per second on the injected clock, 0 before any time passed. */
export type CopyProgress = Progress;

/** Durable cursor storage (the agent's store through the step context). */
export interface CursorStore {
  load(name: string): Promise<string | null>;
  save(name: string, value: string): Promise<void>;
}

export interface BatchCopyOptions<R, K> {
  /** The cursor's name within the step. */
  name: string;
  /** Keyset reads: the next `limit` records after `after` (null: from the start), in key order. Never OFFSET. */
  read(after: K | null, limit: number): Promise<R[]>;
  keyOf(record: R): K;
  /**
   * Upserts the batch by key. `mark` is the cursor after this batch: a target with transactions stores it with the
   * records (a crash leaves both or neither); it is passed only when batches are written one at a time.
   */
  write(records: R[], mark: { name: string; value: string } | null): Promise<void>;
  /** The cursor a target stored with its last batch, if any: at least as far as the agent's store (same transaction). */
  targetMark?(name: string): Promise<string | null>;
  cursor: CursorStore;
  clock: Clock;
  /** Records to copy, for progress (an estimate while writers keep writing). */
  total: number;
  batchSize: number;
  /** The batch time the size adapts to (read + write of one batch); null keeps the size fixed. */
  targetBatchMs: number | null;
  minBatch?: number;
  maxBatch?: number;
  /** Batches written at once (reads stay in key order); 1 writes each batch with its cursor in one transaction. */
  concurrency: number;
  unit?: ProgressUnit;
  progress?(p: CopyProgress & { batchSize: number; batches: number }): void;
  /** Asked between batches: a reason stops the copy at a batch boundary (the cursor is saved). */
  stop?(): Promise<string | null>;
}

const START = (batchSize: number): CopyCursor => ({ after: null, copied: 0, batches: 0, batchSize, elapsedMs: 0, done: false });

/** The next batch size: scaled toward the target batch time, at most doubling or halving per batch. */
export function adaptBatch(size: number, elapsedMs: number, targetMs: number | null, min: number, max: number): number {
  if (targetMs === null || elapsedMs <= 0) return size;
  const scaled = Math.round(size * Math.min(2, Math.max(0.5, targetMs / elapsedMs)));
  return Math.min(max, Math.max(min, scaled));
}

/**
 * Copies records in keyset order in batches, resumable: the cursor is saved durably after every batch, so a process
 * killed at any point resumes from the last saved batch in another process. Writes are upserts by key, so a batch
 * replayed after a crash (written, cursor not yet saved) changes nothing. With `concurrency` > 1, reads stay in order
 * and up to that many batch writes run at once; the cursor only moves past batches that all finished.
 */
export async function batchCopy<R, K>(o: BatchCopyOptions<R, K>): Promise<CopyCursor & { resumed: boolean }> {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new AgentError("bad-input", `batch size must be a positive whole number (got ${o.batchSize})`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new AgentError("bad-input", `concurrency must be a positive whole number (got ${o.concurrency})`);
  const min = o.minBatch ?? Math.max(1, Math.floor(o.batchSize / 10));
  const max = o.maxBatch ?? o.batchSize * 10;
  const parse = (v: string | null): CopyCursor | null => (v === null ? null : CopyCursor.parse(JSON.parse(v)));
  const saved = parse(await o.cursor.load(o.name));
  const marked = o.targetMark ? parse(await o.targetMark(o.name)) : null;
  let cur: CopyCursor = [saved, marked].filter((c): c is CopyCursor => c !== null).sort((a, b) => b.copied - a.copied)[0] ?? START(o.batchSize);
  const resumed = saved !== null || marked !== null;
  if (cur.done) return { ...cur, resumed };
  if (marked && (!saved || marked.copied > saved.copied)) await o.cursor.save(o.name, JSON.stringify(marked));
  const unit: ProgressUnit = o.unit ?? "records";
  const report = () => o.progress?.({ done: cur.copied, total: Math.max(o.total, cur.copied), unit, rate: cur.elapsedMs > 0 ? Math.round((cur.copied / cur.elapsedMs) * 1000) : 0, batchSize: cur.batchSize, batches: cur.batches });

  type InFlight = { next: CopyCursor; write: Promise<void> };
  const inflight: InFlight[] = [];
  let after = cur.after as K | null;
  let size = cur.batchSize;
  let projected = cur;
  /** Waits for the oldest write and moves the saved cursor past it. */
  const settle = async () => {
    const f = inflight.shift()!;
    await f.write;
    cur = f.next;
    await o.cursor.save(o.name, JSON.stringify(cur));
    report();
  };
  try {
    for (;;) {
      const stop = await o.stop?.();
      if (stop) {
        while (inflight.length) await settle();
        throw new AgentError("failed", `copy stopped after ${cur.copied} ${unit} (${stop}); the cursor is saved and a resume continues from there`);
      }
      const t0 = o.clock.now().getTime();
      const requested = size;
      const batch = await o.read(after, requested);
      if (batch.length === 0) break;
      after = o.keyOf(batch.at(-1)!);
      const next: CopyCursor = { after, copied: projected.copied + batch.length, batches: projected.batches + 1, batchSize: size, elapsedMs: projected.elapsedMs, done: false };
      const single = o.concurrency === 1;
      const write = o.write(batch, single ? { name: o.name, value: JSON.stringify(next) } : null);
      if (single) {
        await write;
        const elapsed = o.clock.now().getTime() - t0;
        next.elapsedMs += Math.max(0, elapsed);
        next.batchSize = adaptBatch(size, elapsed, o.targetBatchMs, min, max);
        cur = next;
        await o.cursor.save(o.name, JSON.stringify(cur));
        report();
        size = cur.batchSize;
        projected = cur;
      } else {
        write.catch(() => undefined); // awaited in settle; a failure surfaces there
        inflight.push({ next, write });
        projected = next;
        if (inflight.length >= o.concurrency) await settle();
        const elapsed = o.clock.now().getTime() - t0;
        projected.elapsedMs += Math.max(0, elapsed);
        size = adaptBatch(size, elapsed, o.targetBatchMs, min, max);
        projected.batchSize = size;
      }
      // A short page is the end of the keys as they are now (later writes reach the target through change capture).
      if (batch.length < requested) break;
    }
    while (inflight.length) await settle();
  } catch (e) {
    await Promise.allSettled(inflight.map((f) => f.write));
    throw e;
  }
  cur = { ...cur, done: true };
  await o.cursor.save(o.name, JSON.stringify(cur));
  report();
  return { ...cur, resumed };
}
