import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import { compareKeys, evaluate, keyText } from "./records.js";
import type { Backup, Change, ChangeCapture, MetaRecord, MetadataStore, Provisioning, RecordKey, SampleQuery, StoreMeasure } from "./types.js";

const run = promisify(execFile);
const Link = z.object({ rel: z.string(), href: z.string() }).passthrough();
const Node = z.object({ links: z.array(Link).default([]) }).passthrough();

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const safe = (s: string) => encodeURIComponent(s).replace(/\./g, "%2E");

/** Writes a file so a reader never sees half of it (write aside, then rename). */
function writeAtomic(path: string, body: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, body);
  renameSync(tmp, path);
}

interface Entry {
  key: RecordKey;
  path: string;
}

/**
 * A static STAC catalog folder: `catalog.json` -> `child` links to collections -> `item` links to item JSON files
 * (relative hrefs). As a target, items go to `<collection>/items/<id>.json` and each collection's links are rewritten
 * once per batch. Change capture is a modification-time/size sweep with a SHA-256 of each changed file, snapshotted in
 * `stateDir` (never inside the catalog).
 */
export class FilesMetadataStore implements MetadataStore {
  readonly kind = "files" as const;
  readonly supports = { text: true, spatial: true, datetime: true };
  private readonly root: string;

  constructor(private readonly o: { path: string; stateDir: string }) {
    this.root = resolve(o.path);
  }

  describe(): string {
    return `STAC catalog folder ${this.root}`;
  }

  private readJson(path: string): unknown {
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new AgentError("failed", `${relative(this.root, path) || path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Every item of the catalog with its file, in key order, by following the catalog's links. */
  private index(): Entry[] {
    const cat = join(this.root, "catalog.json");
    if (!existsSync(cat)) return [];
    const out: Entry[] = [];
    const catalog = Node.parse(this.readJson(cat));
    for (const child of catalog.links.filter((l) => l.rel === "child")) {
      const cpath = resolve(this.root, child.href);
      if (!existsSync(cpath)) continue;
      const col = Node.extend({ id: z.string() }).parse(this.readJson(cpath));
      for (const it of col.links.filter((l) => l.rel === "item")) {
        const ipath = resolve(dirname(cpath), it.href);
        if (!existsSync(ipath)) continue;
        const idFromFile = decodeURIComponent(ipath.split("/").at(-1)!.replace(/\.json$/, ""));
        out.push({ key: { collection: col.id, id: idFromFile }, path: ipath });
      }
    }
    // The item file's own id wins over its name.
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  private load(e: Entry): MetaRecord | null {
    if (!existsSync(e.path)) return null;
    const content = this.readJson(e.path) as Record<string, unknown>;
    const id = typeof content.id === "string" ? content.id : e.key.id;
    return { collection: e.key.collection, id, content };
  }

  async count(): Promise<number> {
    return this.index().length;
  }

  async measure(): Promise<StoreMeasure> {
    const idx = this.index();
    const by = new Map<string, number>();
    let bytes = 0;
    for (const e of idx) {
      by.set(e.key.collection, (by.get(e.key.collection) ?? 0) + 1);
      bytes += statSync(e.path).size;
    }
    return { records: idx.length, bytes, collections: [...by].map(([id, records]) => ({ id, records })), queryMix: null };
  }

  async page(after: RecordKey | null, limit: number): Promise<MetaRecord[]> {
    const idx = this.index().filter((e) => !after || compareKeys(e.key, after) > 0).slice(0, limit);
    return idx.map((e) => this.load(e)).filter((r): r is MetaRecord => r !== null);
  }

  async get(keys: readonly RecordKey[]): Promise<MetaRecord[]> {
    const want = new Set(keys.map(keyText));
    return this.index().filter((e) => want.has(keyText(e.key))).map((e) => this.load(e)).filter((r): r is MetaRecord => r !== null);
  }

  private itemPath(k: RecordKey): string {
    return join(this.root, safe(k.collection), "items", `${safe(k.id)}.json`);
  }

  private collectionPath(c: string): string {
    return join(this.root, safe(c), "collection.json");
  }

  /** Rewrites the catalog's and the collections' links to the item files present. */
  private relink(collections: Iterable<string>): void {
    const catPath = join(this.root, "catalog.json");
    const cat = (existsSync(catPath) ? this.readJson(catPath) : { type: "Catalog", stac_version: "1.0.0", id: "honua", description: "Honua catalog", links: [] }) as { links: z.infer<typeof Link>[] };
    for (const c of collections) {
      const cpath = this.collectionPath(c);
      const col = (existsSync(cpath) ? this.readJson(cpath) : { type: "Collection", stac_version: "1.0.0", id: c, description: c, license: "proprietary", extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[null, null]] } }, links: [] }) as { links: z.infer<typeof Link>[] };
      const dir = join(dirname(cpath), "items");
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".json")).sort() : [];
      col.links = [...col.links.filter((l) => l.rel !== "item"), ...files.map((f) => ({ rel: "item", href: `./items/${f}`, type: "application/geo+json" }))];
      writeAtomic(cpath, JSON.stringify(col, null, 2));
      const href = `./${safe(c)}/collection.json`;
      if (!cat.links.some((l) => l.rel === "child" && resolve(this.root, l.href) === cpath)) cat.links.push({ rel: "child", href });
    }
    writeAtomic(catPath, JSON.stringify(cat, null, 2));
  }

  async upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }): Promise<void> {
    for (const r of records) writeAtomic(this.itemPath(r), JSON.stringify({ ...r.content, id: r.id, collection: r.collection }, null, 2));
    this.relink(new Set(records.map((r) => r.collection)));
    if (mark) this.setMark(mark);
  }

  private marksPath(): string {
    return join(this.o.stateDir, `marks-${sha(this.root).slice(0, 12)}.json`);
  }

  private setMark(mark: { name: string; value: string }): void {
    const p = this.marksPath();
    const m = existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as Record<string, string>) : {};
    m[mark.name] = mark.value;
    writeAtomic(p, JSON.stringify(m));
  }

  async mark(name: string): Promise<string | null> {
    const p = this.marksPath();
    return existsSync(p) ? ((JSON.parse(readFileSync(p, "utf8")) as Record<string, string>)[name] ?? null) : null;
  }

  async remove(keys: readonly RecordKey[], mark?: { name: string; value: string }): Promise<void> {
    const idx = new Map(this.index().map((e) => [keyText(e.key), e.path]));
    for (const k of keys) rmSync(idx.get(keyText(k)) ?? this.itemPath(k), { force: true });
    this.relink(new Set(keys.map((k) => k.collection)));
    if (mark) this.setMark(mark);
  }

  async query(q: SampleQuery): Promise<RecordKey[]> {
    return evaluate(await this.page(null, Number.MAX_SAFE_INTEGER), q);
  }

  async plan(): Promise<{ creates: boolean; details: string[] }> {
    const exists = existsSync(join(this.root, "catalog.json"));
    return { creates: !exists, details: [exists ? `${this.root}/catalog.json exists: adopted` : `create ${this.root}/catalog.json (a static STAC catalog; items at <collection>/items/<id>.json)`] };
  }

  async provision(): Promise<Provisioning> {
    const exists = existsSync(join(this.root, "catalog.json"));
    if (!exists) this.relink([]);
    return { created: !exists, details: [exists ? `adopted ${this.root}` : `created ${this.root}/catalog.json`] };
  }

  async deprovision(): Promise<void> {
    rmSync(this.root, { recursive: true, force: true });
  }

  private snapshotPath(name: string, n: number): string {
    return join(this.o.stateDir, `capture-${sha(`${this.root}\u0000${name}`).slice(0, 16)}-${n}.json`);
  }

  private scan(prev: Record<string, { mtimeMs: number; size: number; sha: string }>): Record<string, { mtimeMs: number; size: number; sha: string }> {
    const out: Record<string, { mtimeMs: number; size: number; sha: string }> = {};
    for (const e of this.index()) {
      const st = statSync(e.path);
      const k = JSON.stringify([e.key.collection, e.key.id]);
      const p = prev[k];
      out[k] = p && p.mtimeMs === st.mtimeMs && p.size === st.size ? p : { mtimeMs: st.mtimeMs, size: st.size, sha: sha(readFileSync(e.path)) };
    }
    return out;
  }

  readonly capture: ChangeCapture = {
    method: "a modification-time/size sweep of the item files, SHA-256 of each changed one",
    start: async (name) => {
      mkdirSync(this.o.stateDir, { recursive: true });
      if (!existsSync(this.snapshotPath(name, 0))) writeAtomic(this.snapshotPath(name, 0), JSON.stringify(this.scan({})));
    },
    changes: async (name, after, _limit) => {
      const prevPath = this.snapshotPath(name, after);
      if (!existsSync(prevPath)) throw new AgentError("failed", `change capture ${name} on ${this.root} has no sweep ${after}: it was never started or its state in ${this.o.stateDir} was removed`);
      const prev = JSON.parse(readFileSync(prevPath, "utf8")) as Record<string, { mtimeMs: number; size: number; sha: string }>;
      const now = this.scan(prev);
      const changes: Change[] = [];
      let seq = 0;
      for (const [k, v] of Object.entries(now)) if (prev[k]?.sha !== v.sha) changes.push({ seq: ++seq, op: "upsert", ...this.keyOf(k) });
      for (const k of Object.keys(prev)) if (!now[k]) changes.push({ seq: ++seq, op: "delete", ...this.keyOf(k) });
      if (!changes.length) return { changes, next: after };
      writeAtomic(this.snapshotPath(name, after + 1), JSON.stringify(now));
      rmSync(this.snapshotPath(name, after - 1), { force: true });
      return { changes, next: after + 1 };
    },
    stop: async (name) => {
      if (!existsSync(this.o.stateDir)) return;
      const prefix = `capture-${sha(`${this.root}\u0000${name}`).slice(0, 16)}-`;
      for (const f of readdirSync(this.o.stateDir)) if (f.startsWith(prefix)) rmSync(join(this.o.stateDir, f), { force: true });
    },
    active: async (name) => existsSync(this.o.stateDir) && readdirSync(this.o.stateDir).some((f) => f.startsWith(`capture-${sha(`${this.root}\u0000${name}`).slice(0, 16)}-`)),
  };

  private keyOf(k: string): RecordKey {
    const [collection, id] = JSON.parse(k) as [string, string];
    return { collection, id };
  }

  /** A tar.gz of the folder with a SHA-256 manifest inside; verified by extracting it elsewhere and checking every hash. */
  async backup(dir: string, name: string): Promise<Backup> {
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, f.name);
        if (f.isDirectory()) walk(p);
        else if (f.isFile() && !f.name.endsWith(".tmp")) files.push(relative(this.root, p));
      }
    };
    walk(this.root);
    files.sort();
    const manifest = Object.fromEntries(files.map((f) => [f, sha(readFileSync(join(this.root, f)))]));
    const manifestName = ".honua-backup-manifest.json";
    const stage = mkdtempSync(join(tmpdir(), "honua-files-backup-"));
    writeFileSync(join(stage, manifestName), JSON.stringify(manifest, null, 2));
    const archive = join(dir, `${name}.tar.gz`);
    try {
      await run("tar", ["-czf", archive, "-C", this.root, ...files, "-C", stage, manifestName]);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
    const check = mkdtempSync(join(tmpdir(), "honua-files-verify-"));
    let verified = false;
    let verifiedBy: string;
    try {
      await run("tar", ["-xzf", archive, "-C", check]);
      const m = JSON.parse(readFileSync(join(check, manifestName), "utf8")) as Record<string, string>;
      const bad = Object.entries(m).filter(([f, h]) => !existsSync(join(check, f)) || sha(readFileSync(join(check, f))) !== h);
      verified = bad.length === 0 && Object.keys(m).length === files.length;
      verifiedBy = verified ? `extracted and checked: ${files.length} files match the SHA-256 manifest` : `${bad.length} of ${files.length} files do not match the manifest (${bad.slice(0, 3).map(([f]) => f).join(", ")})`;
    } catch (e) {
      verifiedBy = `the archive could not be extracted: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      rmSync(check, { recursive: true, force: true });
    }
    return { location: archive, format: "tar.gz + SHA-256 manifest", bytes: statSync(archive).size, sha256: sha(readFileSync(archive)), records: this.index().length, verified, verifiedBy };
  }

  async retire(): Promise<string[]> {
    const n = this.index().length;
    rmSync(this.root, { recursive: true, force: true });
    return [`removed ${this.root} (${n} items)`];
  }

  async close(): Promise<void> {}
}
