import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { Database } from "better-sqlite3";
import { AgentError } from "../../core/errors.js";
import type { TwinContext } from "../twins.js";
import { SANDBOX_TWINS } from "../twins.js";
import { assetsOfItem } from "./catalog.js";
import { priceOfBackend } from "./prices.js";
import {
  STORAGE_ROUTING, CopyRecord, Provisioned, parseAssetTarget, type BackendInfo, type BackendKind, type BackendTarget, type CatalogAsset, type HonuaReader, type HrefChange,
  type Inspection, type ObjectInfo, type ObjectStore, type ProbeReading, type SettingState, type StacCatalog, type StorageCapability, type StorageSettings,
} from "./types.js";


const PRIMARY_DIR = "/data/rasters";

function tables(db: Database): void {
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS storage_containers (deployment TEXT NOT NULL, backend TEXT NOT NULL, container TEXT NOT NULL, owner TEXT NOT NULL, created_key TEXT, faulty INTEGER NOT NULL DEFAULT 0, settings TEXT NOT NULL, deleted_at TEXT, PRIMARY KEY (deployment, backend, container));
      CREATE TABLE IF NOT EXISTS storage_objects (deployment TEXT NOT NULL, backend TEXT NOT NULL, container TEXT NOT NULL, key TEXT NOT NULL, body BLOB NOT NULL, md5 TEXT NOT NULL, content_type TEXT, modified TEXT NOT NULL, PRIMARY KEY (deployment, backend, container, key));
      CREATE TABLE IF NOT EXISTS storage_items (deployment TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL, PRIMARY KEY (deployment, collection, id));
      CREATE TABLE IF NOT EXISTS storage_ledger (deployment TEXT NOT NULL, copy_key TEXT NOT NULL, source TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (deployment, copy_key, source));
      CREATE TABLE IF NOT EXISTS storage_ops (deployment TEXT NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL, PRIMARY KEY (deployment, key, op));
    `);
  }).immediate();
}

/** Deterministic bytes for a seeded object: the same seed and key always give the same raster. */
function bytesFor(seed: number, key: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update(`${seed}:${key}`).digest();
  for (let i = 0; i < size; i += 32) {
    block.copy(out, i, 0, Math.min(32, size - i));
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

interface SeedCollection {
  id: string;
  items: number;
  /** Days before the sandbox's start of the first item; each next one a step later. */
  ageDays: number;
  stepDays: number;
  regions: string[];
  assets: { key: string; type: string; kb: number }[];
  requestsPerDay: number;
}

const COLLECTIONS: SeedCollection[] = [
  { id: "imagery-2024", items: 10, ageDays: 60, stepDays: 5, regions: ["eu", "eu", "us"], assets: [{ key: "data", type: "image/tiff; application=geotiff; profile=cloud-optimized", kb: 36 }, { key: "thumbnail", type: "image/png", kb: 6 }], requestsPerDay: 5200 },
  { id: "imagery-2019", items: 8, ageDays: 2500, stepDays: 30, regions: ["eu", "us"], assets: [{ key: "data", type: "image/tiff; application=geotiff; profile=cloud-optimized", kb: 28 }], requestsPerDay: 4 },
  { id: "dem", items: 6, ageDays: 700, stepDays: 40, regions: ["us"], assets: [{ key: "data", type: "image/tiff; application=geotiff", kb: 40 }], requestsPerDay: 300 },
  { id: "scans-1998", items: 6, ageDays: 10_000, stepDays: 60, regions: ["eu"], assets: [{ key: "data", type: "image/tiff", kb: 20 }], requestsPerDay: 0 },
];
const BBOX: Record<string, number[]> = { eu: [8.5, 47.3, 8.6, 47.4], us: [-122.5, 37.7, -122.4, 37.8] };

/** The sandbox's backends: the deployment's disk (Honua's Local storage now) and one of each kind it can add. */
function sandboxBackends(deployment: string): BackendInfo[] {
  const keys = (kind: BackendKind, region: string | null) => (c: string): Record<string, string> => {
    switch (kind) {
      case "filesystem":
        return { FileStorage__Provider: "Local", FileStorage__LocalStorage__BasePath: c };
      case "s3":
        return { FileStorage__Provider: "AwsS3", FileStorage__AwsS3__BucketName: c, FileStorage__AwsS3__Region: region ?? "us-east-1" };
      case "gcs":
        return { FileStorage__Provider: "AwsS3", FileStorage__AwsS3__BucketName: c, FileStorage__AwsS3__Region: "auto", FileStorage__AwsS3__ServiceUrl: "https://storage.googleapis.com", FileStorage__AwsS3__ForcePathStyle: "true" };
      case "azure-blob":
        return { FileStorage__Provider: "AzureBlob", FileStorage__AzureBlob__ContainerName: c, FileStorage__AzureBlob__ConnectionString: `env:HONUA_${deployment.toUpperCase()}_AZURE_STORAGE` };
    }
  };
  const b = (name: string, kind: BackendKind, container: string, region: string | null, notes: string[] = []): BackendInfo => ({
    name, kind, container, region, prefix: "", provider: kind === "filesystem" ? "Local" : kind === "azure-blob" ? "AzureBlob" : "AwsS3", honuaKeys: keys(kind, region), notes,
    monthlyUsdPerGb: kind === "filesystem" ? (name === "primary" ? 0.1 : 0.08) : priceOfBackend(kind, undefined, undefined),
    anyRegion: kind !== "filesystem",
  });
  return [
    b("primary", "filesystem", PRIMARY_DIR, null),
    b("nfs", "filesystem", "/mnt/rasters", null),
    b("s3", "s3", `honua-${deployment}-rasters`, "us-east-1", ["Honua reads AWS credentials through the SDK chain of its own environment"]),
    b("gcs", "gcs", `honua-${deployment}-gcs`, "auto", ["GCS through its S3-compatible XML API: Honua needs the HMAC key as AWS credentials in its environment"]),
    b("azure", "azure-blob", "rasters", "westeurope"),
  ];
}

const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");
const ACCOUNT = (d: string) => `honua${d.replace(/[^a-z0-9]/gi, "").toLowerCase()}`;

/** One sandbox bucket, container or directory, in SQLite. */
class SandboxStore implements ObjectStore {
  readonly location: string;
  constructor(private readonly db: Database, private readonly deployment: string, readonly backend: string, readonly kind: BackendKind, readonly container: string, private readonly now: () => string) {
    this.location = this.base().replace(/\/$/, "");
  }
  private base(): string {
    switch (this.kind) {
      case "filesystem":
        return `file://${this.container}/`;
      case "s3":
        return `s3://${this.container}/`;
      case "gcs":
        return `gs://${this.container}/`;
      case "azure-blob":
        return `https://${ACCOUNT(this.deployment)}.blob.core.windows.net/${this.container}/`;
    }
  }
  hrefOf(key: string): string {
    return this.base() + key;
  }
  keyOf(href: string): string | null {
    return href.startsWith(this.base()) ? href.slice(this.base().length) : null;
  }
  private row(key: string) {
    return this.db.prepare(`SELECT key, length(body) AS size, md5, modified FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ? AND key = ?`).get(this.deployment, this.backend, this.container, key) as { key: string; size: number; md5: string; modified: string } | undefined;
  }
  private info(r: { key: string; size: number; md5: string; modified: string }): ObjectInfo {
    return { key: r.key, size: r.size, checksum: this.kind === "filesystem" ? null : { algorithm: "md5", hex: r.md5 }, lastModified: r.modified };
  }
  private live(): boolean {
    return this.db.prepare(`SELECT 1 FROM storage_containers WHERE deployment = ? AND backend = ? AND container = ? AND deleted_at IS NULL`).get(this.deployment, this.backend, this.container) !== undefined;
  }
  private need(): void {
    if (!this.live()) throw new AgentError("not-found", `${this.location} does not exist in the sandbox`);
  }
  async list(prefix: string, cursor: string | null, limit: number) {
    this.need();
    const rows = this.db.prepare(`SELECT key, length(body) AS size, md5, modified FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ? AND key >= ? AND key > ? ORDER BY key LIMIT ?`)
      .all(this.deployment, this.backend, this.container, prefix, cursor ?? "", limit) as { key: string; size: number; md5: string; modified: string }[];
    const objects = rows.filter((r) => r.key.startsWith(prefix)).map((r) => this.info(r));
    return { objects, next: rows.length === limit ? rows.at(-1)!.key : null };
  }
  async head(key: string) {
    this.need();
    const r = this.row(key);
    return r ? this.info(r) : null;
  }
  async read(key: string): Promise<Readable> {
    this.need();
    const r = this.db.prepare(`SELECT body FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ? AND key = ?`).get(this.deployment, this.backend, this.container, key) as { body: Buffer } | undefined;
    if (!r) throw new AgentError("not-found", `${this.hrefOf(key)} does not exist`);
    return Readable.from([r.body]);
  }
  async write(key: string, body: Readable, size: number, o: { contentType?: string | null } = {}) {
    this.need();
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
    const b = Buffer.concat(parts);
    if (b.length !== size) throw new AgentError("failed", `${this.hrefOf(key)}: ${b.length} bytes arrived, ${size} expected`);
    this.db.prepare(`INSERT INTO storage_objects (deployment, backend, container, key, body, md5, content_type, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (deployment, backend, container, key) DO UPDATE SET body = excluded.body, md5 = excluded.md5, content_type = excluded.content_type, modified = excluded.modified`)
      .run(this.deployment, this.backend, this.container, key, b, md5(b), o.contentType ?? null, this.now());
    return this.info(this.row(key)!);
  }
  async remove(key: string) {
    this.db.prepare(`DELETE FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ? AND key = ?`).run(this.deployment, this.backend, this.container, key);
  }
}

/** The sandbox's STAC items (JSON text per item; an href changes as one string, the rest of the item untouched). */
class SandboxCatalog implements StacCatalog {
  constructor(private readonly db: Database, private readonly deployment: string) {}
  describe() {
    return `the sandbox's STAC catalog of ${this.deployment}`;
  }
  async assets(): Promise<CatalogAsset[]> {
    const rows = this.db.prepare(`SELECT collection, id, content FROM storage_items WHERE deployment = ? ORDER BY collection, id`).all(this.deployment) as { collection: string; id: string; content: string }[];
    return rows.flatMap((r) => assetsOfItem(r.collection, r.id, JSON.parse(r.content)));
  }
  private put(xs: readonly { collection: string; item: string; asset: string; href: string }[], guard: ((x: { collection: string; item: string; asset: string }, now: unknown) => void) | null): number {
    const get = this.db.prepare(`SELECT content FROM storage_items WHERE deployment = ? AND collection = ? AND id = ?`);
    const set = this.db.prepare(`UPDATE storage_items SET content = ? WHERE deployment = ? AND collection = ? AND id = ?`);
    let n = 0;
    this.db.transaction(() => {
      for (const x of xs) {
        const row = get.get(this.deployment, x.collection, x.item) as { content: string } | undefined;
        const item = row ? (JSON.parse(row.content) as { assets?: Record<string, { href?: string }> }) : null;
        const asset = item?.assets?.[x.asset];
        guard?.(x, asset?.href);
        if (!item || !asset || asset.href === x.href) continue;
        asset.href = x.href;
        set.run(JSON.stringify(item), this.deployment, x.collection, x.item);
        n++;
      }
    }).immediate();
    return n;
  }
  async rewrite(changes: readonly HrefChange[]): Promise<number> {
    const by = new Map(changes.map((c) => [`${c.collection}/${c.item}/${c.asset}`, c]));
    return this.put(changes.map((c) => ({ ...c, href: c.to })), (x, now) => {
      const c = by.get(`${x.collection}/${x.item}/${x.asset}`)!;
      if (now !== c.from && now !== c.to) throw new AgentError("conflict", `${x.collection}/${x.item} ${x.asset} is now ${JSON.stringify(now ?? null)}, the plan saw ${JSON.stringify(c.from)}: nothing was rewritten`);
    });
  }
  async restore(values: readonly { collection: string; item: string; asset: string; href: string }[]): Promise<number> {
    return this.put(values, null);
  }
}

const settingsOf = (kind: BackendKind, s: StorageSettings, created: boolean): SettingState[] => {
  const o = (x: boolean): SettingState["outcome"] => (created ? (x ? "set" : "unsupported") : "kept");
  const cloud = kind !== "filesystem";
  return [
    { setting: "versioning", wanted: s.versioning ? "Enabled" : "off", found: null, outcome: o(cloud && kind !== "azure-blob"), note: cloud ? (kind === "azure-blob" ? "blob versioning is a storage-account setting: not set" : null) : "a filesystem keeps no versions" },
    { setting: "encryption", wanted: s.encryption, found: null, outcome: o(cloud), note: cloud ? null : "the volume's encryption (not set by honua-agent)" },
    { setting: "public-access", wanted: "blocked", found: null, outcome: o(true), note: null },
    { setting: "lifecycle", wanted: s.lifecycle?.noncurrentExpireDays ? `old versions expire after ${s.lifecycle.noncurrentExpireDays} days` : "none", found: null, outcome: o(kind === "s3" || kind === "gcs"), note: null },
  ];
};

/** The sandbox twin of the storage capability: backends, objects, catalog and Honua's read paths, all in the sandbox's SQLite. */
export function sandboxStorage(ctx: TwinContext): StorageCapability {
  const db = ctx.world.db;
  const dep = ctx.deployment;
  const me = `sandbox-account-${dep}`;
  tables(db);
  const now = () => ctx.clock.now().toISOString();
  const seedOf = (): number => ctx.config.seed ?? 16;
  const ensureSeeded = () => {
    if (db.prepare(`SELECT 1 FROM storage_containers WHERE deployment = ? LIMIT 1`).get(dep)) return;
    db.transaction(() => {
      if (db.prepare(`SELECT 1 FROM storage_containers WHERE deployment = ? LIMIT 1`).get(dep)) return;
      const put = db.prepare(`INSERT INTO storage_containers (deployment, backend, container, owner, created_key, settings) VALUES (?, ?, ?, ?, NULL, '[]')`);
      put.run(dep, "primary", PRIMARY_DIR, me);
      // A bucket of this name exists in another team's account: asking for it is refused, never adopted.
      put.run(dep, "s3", "honua-shared-rasters", "sandbox-account-geodata-team");
      const start = ctx.clock.now().getTime();
      const obj = db.prepare(`INSERT INTO storage_objects (deployment, backend, container, key, body, md5, content_type, modified) VALUES (?, 'primary', ?, ?, ?, ?, ?, ?)`);
      const item = db.prepare(`INSERT INTO storage_items (deployment, collection, id, content) VALUES (?, ?, ?, ?)`);
      for (const c of COLLECTIONS) {
        for (let i = 0; i < c.items; i++) {
          const id = `${c.id}-${String(i + 1).padStart(3, "0")}`;
          const region = c.regions[i % c.regions.length]!;
          const datetime = new Date(start - (c.ageDays - i * c.stepDays) * 86_400_000).toISOString();
          const assets: Record<string, { href: string; type: string; roles: string[] }> = {};
          for (const a of c.assets) {
            const key = `${c.id}/${id}/${a.key}.${a.type.startsWith("image/png") ? "png" : "tif"}`;
            const body = bytesFor(seedOf(), key, a.kb * 1024 + ((i * 337) % 997));
            obj.run(dep, PRIMARY_DIR, key, body, md5(body), a.type, now());
            assets[a.key] = { href: `file://${PRIMARY_DIR}/${key}`, type: a.type, roles: [a.key === "data" ? "data" : "thumbnail"] };
          }
          const content = { type: "Feature", stac_version: "1.0.0", id, collection: c.id, bbox: BBOX[region], geometry: null, properties: { datetime, region }, assets, links: [] };
          item.run(dep, c.id, id, JSON.stringify(content));
        }
      }
    }).immediate();
  };
  ensureSeeded();
  const backends = sandboxBackends(dep);
  const backendOf = (name: string) => {
    const b = backends.find((x) => x.name === name);
    if (!b) throw new AgentError("bad-input", `the sandbox has no storage backend ${name}; it has ${backends.map((x) => x.name).join(", ")}`);
    return b;
  };
  const stores = new Map<string, SandboxStore>();
  const store = (t: BackendTarget): SandboxStore => {
    ensureSeeded();
    const id = `${t.backend}/${t.container}`;
    let s = stores.get(id);
    if (!s) stores.set(id, (s = new SandboxStore(db, dep, t.backend, backendOf(t.backend).kind, t.container, now)));
    return s;
  };
  const container = (t: BackendTarget) =>
    db.prepare(`SELECT owner, created_key, faulty, deleted_at FROM storage_containers WHERE deployment = ? AND backend = ? AND container = ?`).get(dep, t.backend, t.container) as { owner: string; created_key: string | null; faulty: number; deleted_at: string | null } | undefined;
  const once = <T>(key: string, op: string, f: () => T): T =>
    db.transaction((): T => {
      const prior = db.prepare(`SELECT result FROM storage_ops WHERE deployment = ? AND key = ? AND op = ?`).get(dep, key, op) as { result: string } | undefined;
      if (prior) return JSON.parse(prior.result) as T;
      const r = f();
      db.prepare(`INSERT INTO storage_ops (deployment, key, op, result) VALUES (?, ?, ?, ?)`).run(dep, key, op, JSON.stringify(r ?? null));
      return r;
    }).immediate();
  const inspect = async (t: BackendTarget, s: StorageSettings): Promise<Inspection> => {
    ensureSeeded();
    const c = container(t);
    const where = store(t).location;
    if (!c || c.deleted_at) return { exists: false, owner: null, refuse: null, creates: true, action: `Create ${t.kind === "filesystem" ? "directory" : t.kind === "azure-blob" ? "container" : "bucket"} ${where}${t.region ? ` in ${t.region}` : ""}`, settings: settingsOf(t.kind, s, true).map((x) => ({ ...x, outcome: x.outcome === "set" ? "planned" as const : x.outcome })) };
    if (c.owner !== me) return { exists: true, owner: c.owner, refuse: `${where} is owned by ${c.owner}, not by ${me} (the deployment's own account): honua-agent does not adopt someone else's bucket. Choose another name`, creates: false, action: "refuse", settings: [] };
    return { exists: true, owner: c.owner, refuse: null, creates: false, action: `Adopt existing ${where} (owner ${c.owner}); its settings are kept as they are`, settings: settingsOf(t.kind, s, false) };
  };
  const shareNow = (): number => (db.prepare(`SELECT percent FROM sandbox_traffic WHERE deployment = ? AND feature = ?`).get(dep, STORAGE_ROUTING) as { percent: number } | undefined)?.percent ?? 0;
  const noise = (k: string) => (createHash("sha256").update(`${seedOf()}:${k}`).digest()[0]! / 255) * 2 - 1;
  const honua: HonuaReader = {
    describe: () => `the sandbox's Honua (${dep})`,
    async item(collection, id) {
      const r = db.prepare(`SELECT content FROM storage_items WHERE deployment = ? AND collection = ? AND id = ?`).get(dep, collection, id) as { content: string } | undefined;
      return r ? { status: 200, body: JSON.parse(r.content) } : { status: 404, body: { code: "NotFound" } };
    },
    async tile(collection) {
      // Honua renders the tile from the collection's COGs: it fails when an asset's href does not resolve to an object.
      const rows = db.prepare(`SELECT id, content FROM storage_items WHERE deployment = ? AND collection = ?`).all(dep, collection) as { id: string; content: string }[];
      if (rows.length === 0) return { status: 404, bytes: 0 };
      for (const r of rows) {
        for (const a of assetsOfItem(collection, r.id, JSON.parse(r.content)).filter((x) => x.asset === "data")) {
          const at = cap.resolve(a.href);
          if (!at || !(await at.store.head(at.key).catch(() => null))) return { status: 502, bytes: 0 };
        }
      }
      return { status: 200, bytes: 18_000 + Math.round(2_000 * noise(collection)) };
    },
  };
  const cap: StorageCapability = {
    backends,
    store,
    resolve(href) {
      for (const s of stores.values()) {
        const key = s.keyOf(href);
        if (key !== null) return { store: s, key };
      }
      const rows = db.prepare(`SELECT backend, container FROM storage_containers WHERE deployment = ? AND deleted_at IS NULL`).all(dep) as { backend: string; container: string }[];
      for (const r of rows) {
        const b = backendOf(r.backend);
        const s = store({ backend: r.backend, kind: b.kind, container: r.container, region: b.region, prefix: "" });
        const key = s.keyOf(href);
        if (key !== null) return { store: s, key };
      }
      return null;
    },
    inspect,
    async provision(t, s, key) {
      if (ctx.faults.has("provision-failure")) throw new Error(`sandbox: the ${t.kind} backend cannot be created for ${dep} (injected fault provision-failure)`);
      return Provisioned.parse(once(key, "provision", () => {
        const c = container(t);
        const mine = c?.created_key === key;
        if (c && !c.deleted_at && !mine) {
          if (c.owner !== me) throw new AgentError("conflict", `${store(t).location} is owned by ${c.owner}, not by ${me}: honua-agent does not adopt someone else's bucket`);
          return { id: `${t.backend}/${t.container}`, target: t, location: store(t).location, created: false, owner: c.owner, settings: settingsOf(t.kind, s, false) };
        }
        const faulty = [...ctx.faults.keys()].some((f) => f !== "provision-failure") ? 1 : 0;
        db.prepare(`INSERT INTO storage_containers (deployment, backend, container, owner, created_key, faulty, settings) VALUES (?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (deployment, backend, container) DO UPDATE SET owner = excluded.owner, created_key = excluded.created_key, faulty = excluded.faulty, settings = excluded.settings, deleted_at = NULL`)
          .run(dep, t.backend, t.container, me, key, faulty, JSON.stringify(s));
        return { id: `${t.backend}/${t.container}`, target: t, location: store(t).location, created: true, owner: me, settings: settingsOf(t.kind, s, true) };
      }));
    },
    async provisioned(key) {
      const r = db.prepare(`SELECT backend, container FROM storage_containers WHERE deployment = ? AND created_key = ? AND deleted_at IS NULL`).get(dep, key) as { backend: string; container: string } | undefined;
      return r ? { id: `${r.backend}/${r.container}`, description: `sandbox ${r.backend} ${r.container}` } : null;
    },
    async deprovision(id, key) {
      once(key, "deprovision", () => {
        if (id.startsWith("copy:")) {
          const recs = (db.prepare(`SELECT record FROM storage_ledger WHERE deployment = ? AND copy_key = ?`).all(dep, id.slice(5)) as { record: string }[]).map((r) => CopyRecord.parse(JSON.parse(r.record)));
          for (const r of recs) {
            const at = cap.resolve(r.dest);
            if (at) db.prepare(`DELETE FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ? AND key = ?`).run(dep, at.store.backend, at.store.container, at.key);
          }
          return recs.length;
        }
        const [backend, ...rest] = id.split("/");
        const c = db.prepare(`SELECT created_key FROM storage_containers WHERE deployment = ? AND backend = ? AND container = ?`).get(dep, backend, rest.join("/")) as { created_key: string | null } | undefined;
        if (!c?.created_key) throw new AgentError("forbidden", `${id} was not created by honua-agent: it is not deleted`);
        db.prepare(`DELETE FROM storage_objects WHERE deployment = ? AND backend = ? AND container = ?`).run(dep, backend, rest.join("/"));
        db.prepare(`UPDATE storage_containers SET deleted_at = ? WHERE deployment = ? AND backend = ? AND container = ?`).run(now(), dep, backend, rest.join("/"));
        return 1;
      });
    },
    async restore(target, value, key) {
      await cap.restoreAll([{ target, value }], key);
    },
    async restoreAll(items) {
      await cap.catalog.restore(items.map((i) => {
        const t = parseAssetTarget(i.target);
        if (!t) throw new AgentError("failed", `storage cannot restore ${i.target}`);
        return { ...t, href: i.value };
      }), "");
    },
    catalog: new SandboxCatalog(db, dep),
    ledger: {
      async record(copyKey, r) {
        db.prepare(`INSERT INTO storage_ledger (deployment, copy_key, source, record) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`).run(dep, copyKey, r.source, JSON.stringify(r));
      },
      async written(copyKey) {
        return (db.prepare(`SELECT record FROM storage_ledger WHERE deployment = ? AND copy_key = ? ORDER BY source`).all(dep, copyKey) as { record: string }[]).map((r) => CopyRecord.parse(JSON.parse(r.record)));
      },
    },
    honua,
    async access() {
      return Object.fromEntries(COLLECTIONS.map((c) => [c.id, c.requestsPerDay]));
    },
    async probe(s, keys): Promise<ProbeReading> {
      // Simulated timings (the sandbox has no network): each kind its own latency, a faulty new backend slower or failing
      // once the routing share reaches the fault's share; `no-data` makes the reads time out.
      const c = container({ backend: s.backend, kind: s.kind, container: s.container, region: null, prefix: "" });
      const shows = (f: "latency-regression" | "error-spike" | "no-data") => c?.faulty === 1 && ctx.faults.has(f) && shareNow() >= (ctx.faults.get(f) ?? 1);
      if (shows("no-data")) return { backend: s.backend, reads: keys.length, errors: keys.length, p95Ms: null, throughputBps: null };
      const base = { filesystem: 9, s3: 48, gcs: 52, "azure-blob": 55 }[s.kind];
      const minute = Math.floor(ctx.clock.now().getTime() / 60_000);
      const p95 = base * (1 + 0.08 * noise(`${s.backend}:${minute}`)) * (shows("latency-regression") ? 3.2 : 1);
      const errors = shows("error-spike") ? Math.ceil(keys.length * 0.3) : 0;
      const bps = ({ filesystem: 400, s3: 90, gcs: 85, "azure-blob": 80 }[s.kind] * 1024 * 1024) / (shows("latency-regression") ? 3 : 1);
      return { backend: s.backend, reads: keys.length, errors, p95Ms: keys.length ? Number(p95.toFixed(1)) : null, throughputBps: keys.length ? Math.round(bps) : null };
    },
  };
  return cap;
}

SANDBOX_TWINS.push((ctx) => ({ storage: sandboxStorage(ctx) }));
