import { createHash } from "node:crypto";
import { z } from "zod";
import { bboxOf, compareKeys, datetimeOf, keyText, recordDigest, textOf } from "./records.js";
import type { MetaRecord, MetadataStore, RecordKey, SampleQuery } from "./types.js";

/**
 * Applies captured source changes to the target after watermark `after`, until none are left: each changed key is read
 * from the source as it is now and upserted, or deleted on the target when the source no longer has it. Reading the
 * current state makes the result the source's latest, whatever order the changes come in, and a replay harmless.
 */
export async function applyChanges(source: MetadataStore, target: MetadataStore, name: string, after: number, o: { limit?: number; maxRounds?: number } = {}): Promise<{ applied: number; upserts: number; deletes: number; next: number }> {
  const capture = source.capture;
  if (!capture) throw new Error(`${source.describe()} has no change capture`);
  let next = after;
  let applied = 0;
  let upserts = 0;
  let deletes = 0;
  for (let round = 0; round < (o.maxRounds ?? 1000); round++) {
    const got = await capture.changes(name, next, o.limit ?? 1000);
    const keys = new Map<string, RecordKey>();
    for (const c of got.changes) keys.set(keyText(c), { collection: c.collection, id: c.id });
    if (keys.size) {
      const list = [...keys.values()];
      const now = await source.get(list);
      const present = new Set(now.map(keyText));
      const gone = list.filter((k) => !present.has(keyText(k)));
      if (now.length) await target.upsert(now);
      if (gone.length) await target.remove(gone);
      upserts += now.length;
      deletes += gone.length;
      applied += got.changes.length;
    }
    const moved = got.next !== next;
    next = got.next;
    if (!got.changes.length && !moved) break;
    if (!got.changes.length) break;
  }
  return { applied, upserts, deletes, next };
}

export const Mismatch = z.object({ key: z.string(), problem: z.enum(["missing on the target", "not on the source", "content differs"]) });
export type Mismatch = z.infer<typeof Mismatch>;

export const RangeSum = z.object({ from: z.string(), to: z.string(), sourceCount: z.number().int(), targetCount: z.number().int(), sourceDigest: z.string(), targetDigest: z.string(), ok: z.boolean() });

export const QueryCheck = z.object({ query: z.string(), kind: z.string(), source: z.number().int(), target: z.number().int(), ok: z.boolean(), detail: z.string() });

export const Comparison = z.object({
  sourceCount: z.number().int(),
  targetCount: z.number().int(),
  ranges: z.number().int(),
  badRanges: z.array(RangeSum),
  mismatches: z.array(Mismatch),
  /** All mismatches found (the list above is capped). */
  mismatchCount: z.number().int(),
  queries: z.array(QueryCheck),
  ok: z.boolean(),
});
export type Comparison = z.infer<typeof Comparison>;

/** Reads a store in key order, page by page. */
async function* walk(store: MetadataStore, pageSize: number): AsyncGenerator<MetaRecord> {
  let after: RecordKey | null = null;
  for (;;) {
    const page = await store.page(after, pageSize);
    yield* page;
    if (page.length < pageSize) return;
    after = page.at(-1)!;
  }
}

/**
 * Counts and checksums per key range (every `rangeSize` keys of the source make a range, the target's keys between
 * the same bounds fall into it), merged in key order, so a mismatch is located to its range and named by key.
 */
export async function checksums(source: MetadataStore, target: MetadataStore, o: { rangeSize?: number; pageSize?: number; cap?: number } = {}): Promise<Omit<Comparison, "queries" | "ok">> {
  const rangeSize = o.rangeSize ?? 1000;
  const cap = o.cap ?? 50;
  const a = walk(source, o.pageSize ?? 1000);
  const b = walk(target, o.pageSize ?? 1000);
  let x = await a.next();
  let y = await b.next();
  const mismatches: Mismatch[] = [];
  let mismatchCount = 0;
  const bad: z.infer<typeof RangeSum>[] = [];
  let ranges = 0;
  let sourceCount = 0;
  let targetCount = 0;
  let range = { from: "", to: "", s: 0, t: 0, hs: createHash("sha256"), ht: createHash("sha256"), bad: false };
  const close = () => {
    if (range.s === 0 && range.t === 0) return;
    ranges++;
    const sd = range.hs.digest("hex").slice(0, 16);
    const td = range.ht.digest("hex").slice(0, 16);
    if (range.bad || sd !== td) bad.push({ from: range.from, to: range.to, sourceCount: range.s, targetCount: range.t, sourceDigest: sd, targetDigest: td, ok: false });
    range = { from: "", to: "", s: 0, t: 0, hs: createHash("sha256"), ht: createHash("sha256"), bad: false };
  };
  const miss = (key: string, problem: Mismatch["problem"]) => {
    mismatchCount++;
    range.bad = true;
    if (mismatches.length < cap) mismatches.push({ key, problem });
  };
  const note = (k: string) => {
    if (!range.from) range.from = k;
    range.to = k;
  };
  while (!x.done || !y.done) {
    const c = x.done ? 1 : y.done ? -1 : compareKeys(x.value, y.value);
    if (c <= 0 && !x.done) {
      const k = keyText(x.value);
      note(k);
      const d = recordDigest(x.value);
      range.hs.update(d);
      range.s++;
      sourceCount++;
      if (c === 0 && !y.done) {
        const e = recordDigest(y.value);
        range.ht.update(e);
        range.t++;
        targetCount++;
        if (d !== e) miss(k, "content differs");
        y = await b.next();
      } else miss(k, "missing on the target");
      x = await a.next();
      if (range.s >= rangeSize) close();
    } else if (!y.done) {
      const k = keyText(y.value);
      note(k);
      range.ht.update(recordDigest(y.value));
      range.t++;
      targetCount++;
      miss(k, "not on the source");
      y = await b.next();
    }
  }
  close();
  return { sourceCount, targetCount, ranges, badRanges: bad.slice(0, cap), mismatches, mismatchCount };
}

const describeQuery = (q: SampleQuery): string => {
  switch (q.kind) {
    case "id":
      return `item ${q.collection}/${q.id}`;
    case "collection":
      return `collection ${q.collection} (first ${q.limit})`;
    case "bbox":
      return `bbox ${q.bbox.map((n) => n.toFixed(3)).join(",")}`;
    case "datetime":
      return `datetime ${q.from.slice(0, 10)}..${q.to.slice(0, 10)}`;
    case "text":
      return `free text "${q.text}"`;
  }
};

/** Sampled reads from the source's own records: ids spread over the keys, each collection, a bbox, a time range, a word. */
export async function sampleQueries(source: MetadataStore, target: MetadataStore, o: { limit?: number; seedRecords?: number } = {}): Promise<SampleQuery[]> {
  const limit = o.limit ?? 50;
  const recs = await source.page(null, o.seedRecords ?? 200);
  if (!recs.length) return [];
  const spread = [recs[0]!, recs[Math.floor(recs.length / 2)]!, recs.at(-1)!];
  const out: SampleQuery[] = spread.map((r) => ({ kind: "id", collection: r.collection, id: r.id }));
  const m = await source.measure();
  for (const c of m.collections.slice(0, 5)) out.push({ kind: "collection", collection: c.id, limit });
  const withBox = recs.find((r) => bboxOf(r.content));
  if (withBox && source.supports.spatial && target.supports.spatial) {
    const b = bboxOf(withBox.content)!;
    out.push({ kind: "bbox", bbox: [b[0] - 0.5, b[1] - 0.5, b[2] + 0.5, b[3] + 0.5], limit });
  }
  const withTime = recs.find((r) => datetimeOf(r.content));
  if (withTime && source.supports.datetime && target.supports.datetime) {
    const t = Date.parse(datetimeOf(withTime.content)!);
    out.push({ kind: "datetime", from: new Date(t - 30 * 86_400_000).toISOString(), to: new Date(t + 30 * 86_400_000).toISOString(), limit });
  }
  const word = recs.map((r) => textOf(r.content).toLowerCase().split(/[^\p{L}\p{N}]+/u).find((w) => w.length >= 4)).find((w) => w);
  if (word && source.supports.text && target.supports.text) out.push({ kind: "text", text: word, limit });
  return out;
}

/** The same reads on both stores, results compared as key lists. */
export async function compareQueries(source: MetadataStore, target: MetadataStore, queries: readonly SampleQuery[]): Promise<z.infer<typeof QueryCheck>[]> {
  const out: z.infer<typeof QueryCheck>[] = [];
  for (const q of queries) {
    const [s, t] = await Promise.all([source.query(q), target.query(q)]);
    const sk = s.map(keyText);
    const tk = t.map(keyText);
    const missing = sk.filter((k) => !tk.includes(k));
    const extra = tk.filter((k) => !sk.includes(k));
    const ok = missing.length === 0 && extra.length === 0;
    out.push({ query: describeQuery(q), kind: q.kind, source: s.length, target: t.length, ok, detail: ok ? `${s.length} results, the same` : `${missing.length ? `missing ${missing.slice(0, 3).join(", ")}` : ""}${missing.length && extra.length ? "; " : ""}${extra.length ? `extra ${extra.slice(0, 3).join(", ")}` : ""}` });
  }
  return out;
}

/**
 * Writes that land while the stores are walked show as mismatches that are only in flight. With `capture`, the
 * captured writes are applied once more and each mismatching key is compared again on its own: only the keys that
 * still differ count (a corrupted record stays; a write in flight does not).
 */
async function settle(source: MetadataStore, target: MetadataStore, sums: Omit<Comparison, "queries" | "ok">, capture: string): Promise<Omit<Comparison, "queries" | "ok">> {
  if (sums.mismatchCount === 0 || sums.mismatchCount > sums.mismatches.length) return sums;
  await catchUp(source, target, capture);
  const keys = sums.mismatches.map((m) => {
    const i = m.key.indexOf("/");
    return { collection: m.key.slice(0, i), id: m.key.slice(i + 1) };
  });
  const [a, b] = await Promise.all([source.get(keys), target.get(keys)]);
  const da = new Map(a.map((r) => [keyText(r), recordDigest(r)]));
  const db = new Map(b.map((r) => [keyText(r), recordDigest(r)]));
  const still = sums.mismatches.flatMap((m): Mismatch[] => {
    const x = da.get(m.key);
    const y = db.get(m.key);
    if (x === y) return [];
    return [{ key: m.key, problem: x === undefined ? "not on the source" : y === undefined ? "missing on the target" : "content differs" }];
  });
  if (still.length === sums.mismatches.length) return sums;
  const [sourceCount, targetCount] = await Promise.all([source.count(), target.count()]);
  const inRange = (r: z.infer<typeof RangeSum>) => still.some((m) => m.key >= r.from && m.key <= r.to);
  return { ...sums, sourceCount, targetCount, mismatches: still, mismatchCount: still.length, badRanges: sums.badRanges.filter(inRange) };
}

/** Counts, checksums per key range and the sampled reads: the whole comparison, `ok` only when all agree. */
export async function compareStores(source: MetadataStore, target: MetadataStore, o: { rangeSize?: number; queries?: readonly SampleQuery[]; capture?: string } = {}): Promise<Comparison> {
  const walked = await checksums(source, target, { rangeSize: o.rangeSize ?? 1000 });
  const sums = o.capture ? await settle(source, target, walked, o.capture) : walked;
  const queries = await compareQueries(source, target, o.queries ?? (await sampleQueries(source, target)));
  const ok = sums.mismatchCount === 0 && sums.sourceCount === sums.targetCount && queries.every((q) => q.ok);
  return { ...sums, queries, ok };
}

/** The target mark that holds how far captured changes have been applied. */
export const watermarkName = (capture: string): string => `${capture}:applied`;

/**
 * Brings the target up to the source's latest committed writes: applies every captured change after the watermark
 * kept on the target, then moves the watermark. A crash in between applies the same changes again, harmlessly.
 */
export async function catchUp(source: MetadataStore, target: MetadataStore, capture: string): Promise<{ applied: number; upserts: number; deletes: number; watermark: number }> {
  const after = Number((await target.mark(watermarkName(capture))) ?? "0");
  const r = await applyChanges(source, target, capture, after);
  if (r.next !== after) await target.upsert([], { name: watermarkName(capture), value: String(r.next) });
  return { applied: r.applied, upserts: r.upserts, deletes: r.deletes, watermark: r.next };
}
