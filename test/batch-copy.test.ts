import { describe, expect, it } from "vitest";
import { adaptBatch, batchCopy } from "../src/graph/patterns/batch-copy.js";

/** Keys 0..n-1 in order; each read and write advances a simulated clock by its cost, so batch times are known. */
function world(n: number, msPerRecord: number) {
  let t = 0;
  const clock = { now: () => new Date(t), sleep: async (ms: number) => void (t += ms) };
  const target = new Map<number, number>();
  const writes: number[] = [];
  const reads: { after: number | null; limit: number }[] = [];
  const cursor = new Map<string, string>();
  return {
    clock, target, writes, reads, cursor,
    read: async (after: number | null, limit: number) => {
      reads.push({ after, limit });
      const from = after === null ? 0 : after + 1;
      return Array.from({ length: Math.max(0, Math.min(limit, n - from)) }, (_, i) => from + i);
    },
    write: async (rs: number[]) => {
      t += rs.length * msPerRecord;
      for (const r of rs) {
        writes.push(r);
        target.set(r, r);
      }
    },
    store: { load: async (k: string) => cursor.get(k) ?? null, save: async (k: string, v: string) => void cursor.set(k, v) },
  };
}

describe("batchCopy (keyset, adaptive, resumable)", () => {
  it("adapts the batch size toward the target batch time on the injected clock, at most doubling or halving per batch", async () => {
    expect(adaptBatch(1000, 4000, 2000, 10, 10_000)).toBe(500);
    expect(adaptBatch(1000, 500, 2000, 10, 10_000)).toBe(2000);
    expect(adaptBatch(1000, 0, 2000, 10, 10_000)).toBe(1000);
    const w = world(20_000, 4); // 4 ms a record: 500 records make the 2 s target
    const r = await batchCopy({ name: "c", read: w.read, keyOf: (x) => x, write: w.write, cursor: w.store, clock: w.clock, total: 20_000, batchSize: 2000, targetBatchMs: 2000, concurrency: 1 });
    expect(r).toMatchObject({ copied: 20_000, done: true, batchSize: 500 });
    expect(w.reads.slice(0, 3).map((x) => x.limit)).toEqual([2000, 1000, 500]);
    // Keyset: every read starts after the last key of the one before; no record written twice, none skipped.
    for (let i = 1; i < w.reads.length; i++) expect(w.reads[i]!.after).toBe(w.reads.slice(0, i).reduce((a, x) => a + x.limit, 0) - 1);
    expect(w.writes).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it("with concurrency 3, writes overlap but the saved cursor only passes batches that all finished; a stop mid-way resumes where it was", async () => {
    const w = world(5000, 1);
    let batches = 0;
    const stop = async () => (++batches === 4 ? "cancel requested by alice" : null);
    await expect(batchCopy({ name: "c", read: w.read, keyOf: (x) => x, write: w.write, cursor: w.store, clock: w.clock, total: 5000, batchSize: 500, targetBatchMs: null, concurrency: 3, stop }))
      .rejects.toThrow(/copy stopped after 1500 records \(cancel requested by alice\); the cursor is saved/);
    expect(JSON.parse(w.cursor.get("c")!)).toMatchObject({ copied: 1500, after: 1499, done: false });
    const r = await batchCopy({ name: "c", read: w.read, keyOf: (x) => x, write: w.write, cursor: w.store, clock: w.clock, total: 5000, batchSize: 500, targetBatchMs: null, concurrency: 3 });
    expect(r).toMatchObject({ copied: 5000, resumed: true, done: true });
    expect(w.writes).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    // A finished copy asked again does nothing.
    const again = await batchCopy({ name: "c", read: w.read, keyOf: (x) => x, write: w.write, cursor: w.store, clock: w.clock, total: 5000, batchSize: 500, targetBatchMs: null, concurrency: 3 });
    expect(again).toMatchObject({ done: true, copied: 5000 });
    expect(w.writes).toHaveLength(5000);
  });

  it("a bad concurrency is refused before anything is read", async () => {
    const w = world(10, 1);
    await expect(batchCopy({ name: "c", read: w.read, keyOf: (x) => x, write: w.write, cursor: w.store, clock: w.clock, total: 10, batchSize: 5, targetBatchMs: null, concurrency: 0 })).rejects.toThrow(/concurrency must be a positive whole number/);
    expect(w.reads).toEqual([]);
  });
});
