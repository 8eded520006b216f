import { dirname, join } from "node:path";
import { AgentError } from "../../core/errors.js";
import type { TwinContext } from "../twins.js";
import { SANDBOX_TWINS } from "../twins.js";
import { readPathOf } from "./capability.js";
import { SqliteMetadataStore } from "./sqlite.js";
import { METADATA_READS, MetadataStoreKind, type MetaRecord, type MetadataCapability, type MetadataStore, type SampleQuery } from "./types.js";

const TABLE = "metadata_items";
const COLLECTIONS = [
  { id: "landsat-c2l2", words: ["landsat", "surface", "reflectance"], box: [8.2, 47.1, 8.9, 47.6] },
  { id: "sentinel-2-l2a", words: ["sentinel", "multispectral", "imagery"], box: [-122.6, 37.6, -122.2, 37.9] },
  { id: "dem-30m", words: ["elevation", "terrain", "model"], box: [10.0, 46.0, 11.0, 47.0] },
  { id: "parcels", words: ["cadastral", "parcel", "boundaries"], box: [2.2, 48.8, 2.5, 48.95] },
];
const SIZE: Record<string, number> = { prod: 2400, staging: 600 };
const BASE_DAY = Date.UTC(2024, 0, 1);

/** A deterministic STAC item: the same deployment, collection and number always give the same record. */
export function sandboxItem(collection: number, n: number, version = 0): MetaRecord {
  const c = COLLECTIONS[collection % COLLECTIONS.length]!;
  const dx = ((n * 7919) % 1000) / 1000;
  const dy = ((n * 104729) % 1000) / 1000;
  const w = c.box[0]! + dx * (c.box[2]! - c.box[0]!) * 0.9;
  const s = c.box[1]! + dy * (c.box[3]! - c.box[1]!) * 0.9;
  const e = w + 0.02;
  const nn = s + 0.02;
  const id = `${c.id}-${String(n).padStart(6, "0")}`;
  return {
    collection: c.id,
    id,
    content: {
      type: "Feature",
      stac_version: "1.0.0",
      id,
      collection: c.id,
      bbox: [w, s, e, nn],
      geometry: { type: "Polygon", coordinates: [[[w, s], [e, s], [e, nn], [w, nn], [w, s]]] },
      properties: {
        datetime: new Date(BASE_DAY + n * 3_600_000 * 7).toISOString(),
        title: `${c.words[0]} scene ${n}${version ? ` (revision ${version})` : ""}`,
        description: `${c.words.join(" ")} tile ${n}`,
        keywords: c.words,
      },
      assets: { data: { href: `file:///data/rasters/${c.id}/${id}.tif`, type: "image/tiff; application=geotiff; profile=cloud-optimized" } },
      links: [],
    },
  };
}

/** Simulated read latency per store kind (ms): the sandbox has no network. */
const BASE_MS: Record<MetadataStoreKind, number> = { postgres: 18, sqlite: 9, files: 26, elasticsearch: 11, opensearch: 12 };

function sandboxMetadata(ctx: TwinContext): MetadataCapability {
  const db = ctx.world.db;
  const dep = ctx.deployment;
  const shareNow = (): number => (db.prepare(`SELECT percent FROM sandbox_traffic WHERE deployment = ? AND feature = ?`).get(dep, METADATA_READS) as { percent: number } | undefined)?.percent ?? 0;
  const source = new SqliteMetadataStore({ db, table: TABLE, kind: "postgres", scope: { deployment: dep, store: "current" }, label: `sandbox ${dep} PostgreSQL catalog (honua.stac_items)` });
  const seed = async () => {
    await source.provision();
    if ((await source.count()) > 0 || (await source.mark("sandbox-seeded")) !== null) return;
    const n = SIZE[dep] ?? 600;
    const recs: MetaRecord[] = [];
    for (let i = 0; i < n; i++) recs.push(sandboxItem(i % COLLECTIONS.length, i));
    await source.upsert(recs, { name: "sandbox-seeded", value: String(n) });
  };
  // Honua keeps writing while the copy runs: after each copied batch the sandbox's Honua updates, adds and deletes an item.
  let writes = 0;
  const honuaWrites = async () => {
    writes++;
    const n = (SIZE[dep] ?? 600) + writes;
    const at = (writes * 37) % (SIZE[dep] ?? 600);
    await source.upsert([sandboxItem(n % COLLECTIONS.length, n), sandboxItem(at % COLLECTIONS.length, at, writes)]);
    const gone = sandboxItem((at + 11) % COLLECTIONS.length, at + 11);
    await source.remove([{ collection: gone.collection, id: gone.id }]);
  };
  const targets = new Map<MetadataStoreKind, MetadataStore>();
  const target = (kind: MetadataStoreKind): MetadataStore => {
    let t = targets.get(kind);
    if (!t) {
      const inner = new SqliteMetadataStore({ db, table: TABLE, kind, scope: { deployment: dep, store: `new-${kind}` }, label: `sandbox ${dep} ${kind} catalog (new)` });
      const faulty = (): boolean => ctx.faults.has("provision-failure");
      t = Object.assign(Object.create(inner) as SqliteMetadataStore, {
        async provision() {
          if (faulty()) throw new AgentError("failed", `sandbox: provisioning the ${kind} catalog failed (HONUA_SANDBOX_FAULTS=provision-failure); nothing was created`);
          return inner.provision();
        },
        async upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }) {
          await inner.upsert(records, mark);
          if (mark && (await source.capture.active(mark.name))) await honuaWrites();
        },
      });
      targets.set(kind, t);
    }
    return t;
  };
  const cap: MetadataCapability = {
    sourceKind: "postgres",
    targets: MetadataStoreKind.options,
    splitReads: true,
    backupDir: join(dirname(db.name), "metadata-backups", dep),
    async ready() {
      await seed();
    },
    source: () => source,
    target,
    readPath: (kind) => readPathOf(kind, kind === "postgres" ? `env:HONUA_${dep.toUpperCase()}_NEW_CATALOG_URL` : undefined),
    async probe(store, queries: readonly SampleQuery[]) {
      const isNew = store !== source;
      const shows = (f: "latency-regression" | "error-spike" | "no-data") => isNew && ctx.faults.has(f) && shareNow() >= (ctx.faults.get(f) ?? 1);
      if (shows("no-data")) return { p95Ms: null, errors: queries.length, reads: queries.length };
      const minute = Math.floor(ctx.clock.now().getTime() / 60_000);
      const jitter = 1 + 0.05 * Math.sin(minute);
      const p95 = BASE_MS[store.kind] * jitter * (shows("latency-regression") ? 3.5 : 1);
      return { p95Ms: Number(p95.toFixed(1)), errors: shows("error-spike") ? Math.ceil(queries.length * 0.3) : 0, reads: queries.length };
    },
    async deprovision(id) {
      const kind = MetadataStoreKind.parse(id.replace(/^target:/, ""));
      await target(kind).deprovision();
    },
    async restore(t, value) {
      if (!t.startsWith("capture:") || value !== "off") throw new AgentError("failed", `metadata cannot restore ${t} to ${value}`);
      await source.capture.stop(t.slice("capture:".length));
    },
  };
  return cap;
}

SANDBOX_TWINS.push((ctx) => ({ metadata: sandboxMetadata(ctx) }));
