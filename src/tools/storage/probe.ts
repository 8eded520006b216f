import { createHash, randomBytes } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { HonuaReader, ObjectStore, ProbeReading } from "./types.js";

/** Passes bytes through while counting them and hashing them (SHA-256 and MD5). */
export class Digest extends Transform {
  bytes = 0;
  private readonly sha = createHash("sha256");
  private readonly md5 = createHash("md5");
  private out: { sha256: string; md5: string } | null = null;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.sha.update(chunk);
    this.md5.update(chunk);
    cb(null, chunk);
  }
  result(): { sha256: string; md5: string } {
    this.out ??= { sha256: this.sha.digest("hex"), md5: this.md5.digest("hex") };
    return this.out;
  }
}

/** Reads a stream to its end, returning its size and hashes (nothing kept in memory). */
export async function digestOf(body: Readable): Promise<{ bytes: number; sha256: string; md5: string }> {
  const d = new Digest();
  await pipeline(body, d, async function* (src) {
    for await (const _ of src) void _;
  });
  return { bytes: d.bytes, ...d.result() };
}

const p95 = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)]!.toFixed(1));
};

/** Timed full reads of `keys` from a real store: latency (p95), throughput, errors. */
export async function measuredProbe(store: ObjectStore, keys: readonly string[]): Promise<ProbeReading> {
  const ms: number[] = [];
  let bytes = 0;
  let busy = 0;
  let errors = 0;
  for (const key of keys) {
    const t0 = performance.now();
    try {
      const d = await digestOf(await store.read(key));
      const took = performance.now() - t0;
      ms.push(took);
      bytes += d.bytes;
      busy += took;
    } catch {
      errors++;
    }
  }
  return { backend: store.backend, reads: keys.length, errors, p95Ms: p95(ms), throughputBps: busy > 0 ? Math.round(bytes / (busy / 1000)) : null };
}

export interface ConnectivityCheck {
  operation: "write" | "list" | "read" | "delete";
  ok: boolean;
  detail: string;
  ms: number;
}

/** Proves list, read, write and delete with one probe object under `prefix`, removed afterwards even when a step fails. */
export async function connectivityProbe(store: ObjectStore, prefix: string, name: string): Promise<ConnectivityCheck[]> {
  const key = `${prefix}.honua-agent-probe/${name}`;
  const body = randomBytes(4096);
  const want = createHash("sha256").update(body).digest("hex");
  const out: ConnectivityCheck[] = [];
  const timed = async (operation: ConnectivityCheck["operation"], f: () => Promise<string>) => {
    const t0 = performance.now();
    try {
      out.push({ operation, ok: true, detail: await f(), ms: Number((performance.now() - t0).toFixed(1)) });
    } catch (e) {
      out.push({ operation, ok: false, detail: e instanceof Error ? e.message : String(e), ms: Number((performance.now() - t0).toFixed(1)) });
    }
  };
  try {
    await timed("write", async () => {
      const info = await store.write(key, Readable.from([body]), body.length, { contentType: "application/octet-stream" });
      if (info.size !== body.length) throw new Error(`wrote ${body.length} bytes, the store holds ${info.size}`);
      return `${body.length} bytes to ${store.hrefOf(key)}`;
    });
    await timed("list", async () => {
      let cursor: string | null = null;
      for (let page = 0; page < 20; page++) {
        const r = await store.list(`${prefix}.honua-agent-probe/`, cursor, 100);
        if (r.objects.some((o) => o.key === key)) return `listed under ${prefix}.honua-agent-probe/`;
        if (!r.next) break;
        cursor = r.next;
      }
      throw new Error(`the probe object is not listed under ${prefix}.honua-agent-probe/`);
    });
    await timed("read", async () => {
      const d = await digestOf(await store.read(key));
      if (d.sha256 !== want) throw new Error(`read back ${d.bytes} bytes with SHA-256 ${d.sha256.slice(0, 12)}, wrote ${want.slice(0, 12)}`);
      return `read back, SHA-256 matches`;
    });
  } finally {
    await timed("delete", async () => {
      await store.remove(key);
      if (await store.head(key)) throw new Error("the probe object is still there after the delete");
      return "deleted";
    });
  }
  return out;
}

/** Honua's STAC and tile paths over HTTP. */
export class HttpHonuaReader implements HonuaReader {
  constructor(private readonly base: string, private readonly timeoutMs = 10_000) {}
  describe(): string {
    return `Honua at ${this.base}`;
  }
  private url(path: string): string {
    return `${this.base.replace(/\/$/, "")}${path}`;
  }
  async item(collection: string, item: string): Promise<{ status: number; body: unknown }> {
    const r = await fetch(this.url(`/stac/collections/${encodeURIComponent(collection)}/items/${encodeURIComponent(item)}`), { signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON: kept as text for the message */
    }
    return { status: r.status, body };
  }
  async tile(collection: string, z: number, x: number, y: number): Promise<{ status: number; bytes: number }> {
    const r = await fetch(this.url(`/ogc/tiles/collections/${encodeURIComponent(collection)}/tiles/WebMercatorQuad/${z}/${y}/${x}`), { signal: AbortSignal.timeout(this.timeoutMs) });
    return { status: r.status, bytes: (await r.arrayBuffer()).byteLength };
  }
}
