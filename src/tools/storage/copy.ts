import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import { Digest, digestOf } from "./probe.js";
import { BackendTarget, type CopyRecord, type ObjectInfo, type ObjectStore, type StorageCapability } from "./types.js";

/** One object to copy: from the href the catalog holds to a key of the new backend. */
export const CopyItem = z.object({ source: z.string(), target: BackendTarget, key: z.string(), contentType: z.string().nullable() });
export type CopyItem = z.infer<typeof CopyItem>;

/** What copying a list of objects did: copied, found already there and verified, bytes written, retries, failures (never skipped in silence). */
export const CopyTally = z.object({
  copied: z.number().int().nonnegative(),
  alreadyThere: z.number().int().nonnegative(),
  bytes: z.number().nonnegative(),
  retried: z.number().int().nonnegative(),
  failed: z.array(z.object({ source: z.string(), reason: z.string() })),
});
export type CopyTally = z.infer<typeof CopyTally>;

export interface CopyOptions {
  /** The idempotency key of the copy: what it verified is recorded under it, so a resumed copy writes nothing twice. */
  copyKey: string;
  batchSize: number;
  concurrency: number;
  /** Attempts per object before it is reported as failed. */
  attempts: number;
  onRetry?(source: string, attempt: number, reason: string): void;
}

/** A copy whose bytes did not arrive as read: the object is deleted again and the copy retried. */
export class CorruptCopy extends AgentError {
  constructor(message: string) {
    super("failed", message);
  }
}

/**
 * Verifies `dest` holds exactly what was read: the size, and the store's own checksum (x-amz-checksum-sha256, a
 * single-part ETag, Azure's Content-MD5) where it keeps one, else a SHA-256 of the object read back.
 */
export async function verify(dest: ObjectStore, key: string, info: ObjectInfo | null, want: { bytes: number; sha256: string; md5: string }): Promise<{ ok: boolean; how: string; detail: string }> {
  if (!info) return { ok: false, how: "head", detail: `${dest.hrefOf(key)} is not there` };
  if (info.size !== want.bytes) return { ok: false, how: "size", detail: `${dest.hrefOf(key)} holds ${info.size} bytes, ${want.bytes} were read` };
  if (info.checksum) {
    const expected = info.checksum.algorithm === "sha256" ? want.sha256 : want.md5;
    const how = `size + the store's ${info.checksum.algorithm.toUpperCase()}`;
    return info.checksum.hex === expected ? { ok: true, how, detail: "" } : { ok: false, how, detail: `${dest.hrefOf(key)}: the store's ${info.checksum.algorithm} is ${info.checksum.hex}, the source's ${expected}` };
  }
  const back = await digestOf(await dest.read(key));
  const how = "size + SHA-256 read back";
  return back.sha256 === want.sha256 && back.bytes === want.bytes ? { ok: true, how, detail: "" } : { ok: false, how, detail: `${dest.hrefOf(key)} reads back with SHA-256 ${back.sha256}, the source's is ${want.sha256}` };
}

/** Copies one object (or finds it already there and verified), recording it; throws when it could not be verified. */
async function copyOne(storage: StorageCapability, item: CopyItem, copyKey: string, done: ReadonlySet<string>): Promise<{ record: CopyRecord; copied: boolean }> {
  const src = storage.resolve(item.source);
  if (!src) throw new AgentError("failed", `${item.source} is on no configured backend`);
  const dest = storage.store(item.target);
  const destHref = dest.hrefOf(item.key);
  const there = await dest.head(item.key);
  if (there) {
    // Written before a crash (or by an earlier attempt): verified against the source, never written twice.
    const head = await src.store.head(src.key);
    if (head && head.size === there.size) {
      const want = await digestOf(await src.store.read(src.key));
      const v = await verify(dest, item.key, there, want);
      if (v.ok) {
        const record = { source: item.source, dest: destHref, size: want.bytes, sha256: want.sha256, verifiedBy: v.how };
        if (!done.has(item.source)) await storage.ledger.record(copyKey, record);
        return { record, copied: false };
      }
    }
  }
  const head = await src.store.head(src.key);
  if (!head) throw new AgentError("failed", `${item.source} does not exist`);
  const digest = new Digest();
  const body = (await src.store.read(src.key)).pipe(digest);
  const info = await dest.write(item.key, body, head.size, { contentType: item.contentType });
  const want = { bytes: digest.bytes, ...digest.result() };
  if (want.bytes !== head.size) {
    await dest.remove(item.key);
    throw new CorruptCopy(`${item.source}: ${want.bytes} bytes read, ${head.size} listed`);
  }
  const v = await verify(dest, item.key, info, want);
  if (!v.ok) {
    await dest.remove(item.key);
    throw new CorruptCopy(`hash mismatch: ${v.detail}`);
  }
  const record = { source: item.source, dest: destHref, size: want.bytes, sha256: want.sha256, verifiedBy: v.how };
  await storage.ledger.record(copyKey, record);
  return { record, copied: true };
}

/** Runs `f` over `xs` with at most `n` at once, in order of start. */
async function pool<T, R>(xs: readonly T[], n: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, xs.length) }, async () => {
    while (i < xs.length) {
      const at = i++;
      out[at] = await f(xs[at]!);
    }
  }));
  return out;
}

/**
 * Copies `items` (one batch of a copy), `concurrency` at a time, each streamed through a hash, written, and verified;
 * an object that fails is retried (`attempts`) and then reported, never dropped. Idempotent: an item the ledger has
 * under `copyKey` is not touched again, and one found at the destination is verified instead of written. Where a copy
 * is between batches is batchCopy's cursor (the add-storage-backend workflow's copyPlan).
 */
export async function copyObjects(storage: StorageCapability, items: readonly CopyItem[], o: CopyOptions): Promise<CopyTally> {
  const recorded = new Set((await storage.ledger.written(o.copyKey)).map((r) => r.source));
  let retried = 0;
  const results = await pool(items, o.concurrency, async (item) => {
    if (recorded.has(item.source)) return { ok: true as const, copied: false, bytes: 0 };
    let last = "";
    for (let attempt = 1; attempt <= o.attempts; attempt++) {
      try {
        const r = await copyOne(storage, item, o.copyKey, recorded);
        return { ok: true as const, copied: r.copied, bytes: r.copied ? r.record.size : 0 };
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        if (attempt < o.attempts) {
          retried++;
          o.onRetry?.(item.source, attempt, last);
        }
      }
    }
    return { ok: false as const, source: item.source, reason: `${last} (after ${o.attempts} attempts)` };
  });
  return {
    copied: results.filter((r) => r.ok && r.copied).length,
    alreadyThere: results.filter((r) => r.ok && !r.copied).length,
    bytes: results.reduce((a, r) => a + (r.ok ? r.bytes : 0), 0),
    retried,
    failed: results.flatMap((r) => (r.ok ? [] : [{ source: r.source, reason: r.reason }])),
  };
}
