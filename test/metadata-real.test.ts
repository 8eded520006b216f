import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../src/core/errors.js";
import { batchCopy } from "../src/graph/patterns/batch-copy.js";
import { requireVerified } from "../src/graph/workflows/modify-metadata-storage/steps/disable-old-store.js";
import { mismatchError } from "../src/graph/workflows/modify-metadata-storage/steps/validate-data-integrity.js";
import { RealMetadata } from "../src/tools/metadata/capability.js";
import { FilesMetadataStore } from "../src/tools/metadata/files.js";
import { PostgresMetadataStore } from "../src/tools/metadata/postgres.js";
import { sandboxItem } from "../src/tools/metadata/sandbox.js";
import { SqliteMetadataStore } from "../src/tools/metadata/sqlite.js";
import { catchUp, compareStores, sampleQueries } from "../src/tools/metadata/sync.js";
import type { MetaRecord, MetadataStore, RecordKey } from "../src/tools/metadata/types.js";
import { parseConfig } from "../src/config.js";
import { realAdapters } from "../src/providers/real.js";
import { OpLog } from "../src/store/oplog.js";
import { postgresTestDatabase } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "..");
const N = 3000;
const db = postgresTestDatabase("honua_w17");
const admin = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
let targetDb = "";
const urlOf = (name: string) => {
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
};
const memClock = () => {
  let t = Date.parse("2026-11-26T00:00:00Z");
  return { now: () => new Date(t), sleep: async (ms: number) => void (t += ms) };
};
const memCursor = () => {
  const m = new Map<string, string>();
  return { load: async (n: string) => m.get(n) ?? null, save: async (n: string, v: string) => void m.set(n, v) };
};

async function sql(url: string, text: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

/** Honua's catalog as the pgstac layout has it, beside tables that are not the catalog. */
async function honuaCatalog(url: string, n: number) {
  await sql(url, `CREATE TABLE public.features (fid serial PRIMARY KEY, name text)`);
  await sql(url, `CREATE TABLE public.collections (id text PRIMARY KEY, content jsonb)`);
  await sql(url, `CREATE TABLE public.stac_items (id text NOT NULL, collection text NOT NULL, content jsonb NOT NULL, datetime timestamptz, PRIMARY KEY (collection, id))`);
  const recs = Array.from({ length: n }, (_, i) => sandboxItem(i % 4, i));
  for (let i = 0; i < recs.length; i += 1000) {
    const part = recs.slice(i, i + 1000);
    await sql(url, `INSERT INTO public.stac_items (collection, id, content, datetime) SELECT c, i, j, (j->'properties'->>'datetime')::timestamptz FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(c, i, j)`, [part.map((r) => r.collection), part.map((r) => r.id), part.map((r) => JSON.stringify(r.content))]);
  }
}

/** Honua writing through the migration: inserts, updates and deletes on the source until stopped. */
function writer(url: string, seed: number) {
  let stop = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    let n = 0;
    try {
      while (!stop) {
        n++;
        const k = (seed * 7919 + n * 104729) % N;
        const op = n % 3;
        if (op === 0) {
          const r = sandboxItem(n % 4, 100_000 + seed * 10_000 + n);
          await c.query(`INSERT INTO public.stac_items (collection, id, content) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [r.collection, r.id, JSON.stringify(r.content)]);
        } else if (op === 1) {
          const r = sandboxItem(k % 4, k, n);
          await c.query(`UPDATE public.stac_items SET content = $3 WHERE collection = $1 AND id = $2`, [r.collection, r.id, JSON.stringify(r.content)]);
        } else {
          const r = sandboxItem((k + 1) % 4, k + 1);
          await c.query(`DELETE FROM public.stac_items WHERE collection = $1 AND id = $2`, [r.collection, r.id]);
        }
      }
    } finally {
      await c.end();
    }
    return n;
  })();
  return { stop: async () => { stop = true; return done; } };
}

async function copyAll(source: MetadataStore, target: MetadataStore, name: string, batchSize = 500, concurrency = 1) {
  return batchCopy<MetaRecord, RecordKey>({
    name, read: (a, l) => source.page(a, l), keyOf: (r) => ({ collection: r.collection, id: r.id }),
    write: (rs, mark) => target.upsert(rs, mark ?? undefined), targetMark: (n) => target.mark(n),
    cursor: memCursor(), clock: memClock(), total: await source.count(), batchSize, targetBatchMs: null, concurrency,
  });
}

describe("metadata stores on real PostgreSQL, SQLite and files", () => {
  const stores: MetadataStore[] = [];
  const keep = <T extends MetadataStore>(s: T): T => (stores.push(s), s);
  beforeAll(async () => {
    await honuaCatalog(db.url, N);
    targetDb = `${new URL(db.url).pathname.slice(1)}_new`;
  });
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await sql(admin, `DROP DATABASE IF EXISTS ${targetDb} WITH (FORCE)`);
  });

  it("finds Honua's catalog table in information_schema among other tables, with its datetime column", async () => {
    const s = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
    expect(await s.layout()).toMatchObject({ table: "public.stac_items", collection: "collection", id: "id", content: "content", datetime: "datetime", geometry: null });
    const m = await s.measure();
    expect(m.records).toBe(N);
    expect(m.collections.map((c) => c.records)).toEqual([750, 750, 750, 750]);
    await expect(new PostgresMetadataStore({ url: db.url, role: "source", table: "public.features" }).layout()).rejects.toThrow(/no STAC catalog table found.*public\.features has no such columns/);
  });

  it("PostgreSQL -> PostgreSQL (provisioned: database, schema, JSONB + GIN, PostGIS GiST): a writer inserts, updates and deletes throughout; counts and checksums match, no write lost", async () => {
    const source = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
    const target = keep(new PostgresMetadataStore({ url: urlOf(targetDb), role: "target", schema: "cat_a" }));
    expect((await target.plan()).creates).toBe(true);
    expect((await target.provision()).created).toBe(true);
    expect((await target.provision()).created).toBe(false);
    const idx = await sql(urlOf(targetDb), `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'cat_a' ORDER BY indexname`);
    expect(idx.map((r) => r.indexdef).join("\n")).toMatch(/USING gin \(content jsonb_path_ops\)[\s\S]*USING gist \(geometry\)/);
    await source.capture.start("cap_a");
    const w = writer(db.url, 1);
    const copied = await copyAll(source, target, "cap_a", 400);
    const mid = await catchUp(source, target, "cap_a");
    const writes = await w.stop();
    const end = await catchUp(source, target, "cap_a");
    expect(writes).toBeGreaterThan(20);
    expect(copied.done).toBe(true);
    expect(mid.applied + end.applied).toBeGreaterThan(0);
    const c = await compareStores(source, target, { rangeSize: 500 });
    expect(c.mismatches).toEqual([]);
    expect(c).toMatchObject({ ok: true, sourceCount: c.targetCount });
    expect(new Set(c.queries.map((q) => q.kind))).toEqual(new Set(["id", "collection", "bbox", "datetime", "text"]));
    expect(c.queries.every((q) => q.ok && q.source > 0)).toBe(true);
    await source.capture.stop("cap_a");
    expect(await source.capture.active("cap_a")).toBe(false);
  });

  it("a corrupted target record blocks the cutover and is named, located to its key range", async () => {
    const source = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
    const target = keep(new PostgresMetadataStore({ url: urlOf(targetDb), role: "target", schema: "cat_b" }));
    await target.provision();
    await copyAll(source, target, "cap_b", 1000);
    const victim = (await source.page(null, 1500)).at(-1)!;
    await sql(urlOf(targetDb), `UPDATE cat_b.items SET content = jsonb_set(content, '{properties,title}', '"tampered"') WHERE collection = $1 AND id = $2`, [victim.collection, victim.id]);
    const c = await compareStores(source, target, { rangeSize: 500 });
    expect(c.ok).toBe(false);
    expect(c.mismatches).toEqual([{ key: `${victim.collection}/${victim.id}`, problem: "content differs" }]);
    expect(c.badRanges).toHaveLength(1);
    expect(c.ranges).toBeGreaterThan(3);
    const e = mismatchError(c, "before moving 10% of reads");
    expect(e).toBeInstanceOf(AgentError);
    expect(e.message).toContain(`${victim.collection}/${victim.id} (content differs)`);
    expect(e.message).toMatch(/reads stay on the old store/);
  });

  it("a write that lands while the stores are walked is settled through capture, not reported; a corrupted record still is", async () => {
    const source = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
    const target = keep(new PostgresMetadataStore({ url: urlOf(targetDb), role: "target", schema: "cat_c" }));
    await target.provision();
    await source.capture.start("cap_c");
    await copyAll(source, target, "cap_c", 1000);
    await catchUp(source, target, "cap_c");
    const [first, second] = await source.page(null, 2);
    await sql(db.url, `UPDATE public.stac_items SET content = jsonb_set(content, '{properties,title}', '"edited in flight"') WHERE collection = $1 AND id = $2`, [first!.collection, first!.id]);
    await sql(urlOf(targetDb), `UPDATE cat_c.items SET content = jsonb_set(content, '{properties,title}', '"tampered"') WHERE collection = $1 AND id = $2`, [second!.collection, second!.id]);
    expect((await compareStores(source, target, { queries: [] })).mismatches.map((m) => m.key)).toEqual([`${first!.collection}/${first!.id}`, `${second!.collection}/${second!.id}`]);
    const settled = await compareStores(source, target, { queries: [], capture: "cap_c" });
    expect(settled.mismatches).toEqual([{ key: `${second!.collection}/${second!.id}`, problem: "content differs" }]);
    expect(settled.ok).toBe(false);
    await source.capture.stop("cap_c");
  });

  it("a child process killed -9 mid-copy resumes in another process: every record on the target, none inserted or rewritten twice", async () => {
    const total = await keep(new PostgresMetadataStore({ url: db.url, role: "source" })).count();
    for (const [i, killAfter] of [[1, 3], [2, 9]] as const) {
      const schema = `cat_kill${i}`;
      const target = keep(new PostgresMetadataStore({ url: urlOf(targetDb), role: "target", schema }));
      await target.provision();
      // Every write the target takes, logged by a trigger: an upsert replayed after the crash would show twice.
      await sql(urlOf(targetDb), `CREATE TABLE ${schema}.writes (op text, collection text, id text)`);
      await sql(urlOf(targetDb), `CREATE FUNCTION ${schema}.log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${schema}.writes VALUES (TG_OP, NEW.collection, NEW.id); RETURN NULL; END $$`);
      await sql(urlOf(targetDb), `CREATE TRIGGER log AFTER INSERT OR UPDATE ON ${schema}.items FOR EACH ROW EXECUTE FUNCTION ${schema}.log()`);
      const storePath = join(db.home, `agent-${i}.sqlite`);
      const args = [join(ROOT, "test/fixtures/metadata-copy-child.ts"), db.url, urlOf(targetDb), schema, storePath, "copy", "200"];
      const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      await new Promise<void>((res, rej) => {
        let lines = 0;
        child.stdout.on("data", (d: Buffer) => {
          lines += d.toString().split("\n").filter(Boolean).length;
          if (lines >= killAfter) child.kill("SIGKILL");
        });
        child.once("exit", (code, signal) => (signal === "SIGKILL" ? res() : rej(new Error(`child ended (${code}) before the kill: ${err}`))));
      });
      const atKill = Number((await sql(urlOf(targetDb), `SELECT count(*) AS n FROM ${schema}.items`))[0]!.n);
      expect(atKill).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(total);
      const out = await new Promise<string>((res, rej) => {
        const again = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
        let o = "";
        let e2 = "";
        again.stdout.on("data", (d: Buffer) => (o += d.toString()));
        again.stderr.on("data", (d: Buffer) => (e2 += d.toString()));
        again.once("exit", (code) => (code === 0 ? res(o) : rej(new Error(e2))));
      });
      expect(out.split("\n").filter(Boolean).at(-1)).toBe(`done ${total} true`);
      const writes = await sql(urlOf(targetDb), `SELECT op, count(*)::int AS n, count(DISTINCT (collection, id))::int AS keys FROM ${schema}.writes GROUP BY op`);
      expect(writes).toEqual([{ op: "INSERT", n: total, keys: total }]);
      const source = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
      expect((await compareStores(source, target, { queries: [] })).ok).toBe(true);
    }
  }, 120_000);

  it("SQLite -> a STAC catalog folder, then the folder as a source: its mtime/hash sweep captures edits and deletes, applied in order", async () => {
    const dir = join(db.home, "stac");
    const lite = keep(new SqliteMetadataStore({ path: join(db.home, "cat.sqlite") }));
    await lite.provision();
    await lite.upsert(Array.from({ length: 300 }, (_, i) => sandboxItem(i % 4, i)));
    const files = keep(new FilesMetadataStore({ path: dir, stateDir: join(db.home, "state") }));
    await files.provision();
    await copyAll(lite, files, "to-files", 64);
    expect((await compareStores(lite, files, { rangeSize: 100 })).ok).toBe(true);
    const cat = JSON.parse(readFileSync(join(dir, "catalog.json"), "utf8")) as { links: { rel: string }[] };
    expect(cat.links.filter((l) => l.rel === "child")).toHaveLength(4);
    // Now the folder is the source and SQLite the target; Honua edits, adds and removes item files meanwhile.
    const back = keep(new SqliteMetadataStore({ path: join(db.home, "back.sqlite") }));
    await back.provision();
    await files.capture.start("sweep");
    await copyAll(files, back, "sweep", 50);
    const edited = sandboxItem(1, 5, 7);
    await files.upsert([edited, sandboxItem(2, 9001)]);
    await files.remove([{ collection: sandboxItem(3, 7).collection, id: sandboxItem(3, 7).id }]);
    const r = await catchUp(files, back, "sweep");
    expect(r).toMatchObject({ upserts: 2, deletes: 1 });
    const c = await compareStores(files, back);
    expect(c.ok).toBe(true);
    expect((await back.get([edited]))[0]!.content).toEqual({ ...edited.content, id: edited.id, collection: edited.collection });
    expect(await catchUp(files, back, "sweep")).toMatchObject({ applied: 0 });
  });

  it("backups: pg_dump -Fc verified with pg_restore --list, the folder as tar.gz with a SHA-256 manifest; a retire is refused when the backup cannot be verified", async () => {
    const source = keep(new PostgresMetadataStore({ url: db.url, role: "source" }));
    const b = await source.backup(join(db.home, "backups"), "pg");
    expect(b).toMatchObject({ verified: true, format: "pg_dump custom (-Fc)", verifiedBy: "pg_restore --list lists TABLE DATA public.stac_items" });
    expect(b.records).toBeGreaterThan(2900);
    const files = keep(new FilesMetadataStore({ path: join(db.home, "stac"), stateDir: join(db.home, "state") }));
    const fb = await files.backup(join(db.home, "backups"), "files");
    expect(fb.verified).toBe(true);
    expect(fb.verifiedBy).toMatch(/files match the SHA-256 manifest/);
    // A pg_restore that cannot read the dump (a broken install): the backup is not verified, and the retire refuses.
    const bin = join(db.home, "broken-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "pg_restore"), "#!/bin/sh\necho 'pg_restore: error: input file does not appear to be a valid archive' >&2\nexit 1\n");
    chmodSync(join(bin, "pg_restore"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    let bad;
    try {
      bad = await source.backup(join(db.home, "backups"), "pg-bad");
    } finally {
      process.env.PATH = path;
    }
    expect(bad.verified).toBe(false);
    expect(() => requireVerified(bad, source.describe())).toThrow(/refused to retire .*stac_items.*not verified \(pg_restore --list failed: pg_restore: error: input file does not appear to be a valid archive\); the old store is untouched/);
    expect(await source.count()).toBeGreaterThan(2900);
  });

  it("bad input: a metadata section with a credential value, a batch size of zero, a target that is not configured — clear errors, nothing changed", async () => {
    expect(() => new RealMetadata({ store: "postgres", url: db.url, targets: [{ store: "postgres", url: db.url, honuaConnection: "postgres://u:secret@h/db" }] }, "local", { env: {}, cwd: db.home, stateDir: db.home }))
      .toThrow(/credentials are given by reference only/);
    const cap = new RealMetadata({ store: "postgres", url: db.url, targets: [{ store: "sqlite", path: "new.sqlite" }] }, "local", { env: {}, cwd: db.home, stateDir: db.home });
    expect(() => cap.target("opensearch")).toThrow(/no opensearch target in its metadata section \(targets: sqlite\).*node: https:\/\/search\.internal:9200, index: stac-items/);
    const source = keep(cap.source());
    const target = keep(cap.target("sqlite"));
    await expect(copyAll(source, target, "zero", 0)).rejects.toThrow(/batch size must be a positive whole number \(got 0\)/);
    expect((await target.plan()).creates).toBe(true);
    const qs = await sampleQueries(source, target);
    expect(qs.length).toBeGreaterThan(5);
  });

  it("a local deployment gets the metadata capability from its section; with no router splitting the STAC read paths, reads move whole (0 or 100%), recorded", async () => {
    const log = new OpLog(join(db.home, "ops.sqlite"));
    try {
      const { config } = parseConfig({ deployments: { x: {
        provider: "local", approvers: ["a"],
        metrics: { source: "probe", urls: ["http://127.0.0.1:9/stac"] },
        config: { kind: "envfile", path: "x.env" },
        metadata: { store: "postgres", url: "env:CATALOG_URL", targets: [{ store: "sqlite", path: "new-catalog.sqlite" }], backupDir: "backups" },
      } } }, "t", {});
      const a = realAdapters("x", config.deployments.x!, { log, env: { CATALOG_URL: db.url }, cwd: db.home });
      expect(a.metadata).toMatchObject({ sourceKind: "postgres", targets: ["sqlite"], splitReads: false, backupDir: join(db.home, "backups") });
      const source = keep(a.metadata!.source());
      expect(await source.count()).toBeGreaterThan(2900);
      expect(await a.traffic.share("metadata-reads")).toBe(0);
      await expect(a.traffic.setShare("metadata-reads", 10, "k1")).rejects.toThrow(/no router that splits metadata-reads.*move whole, 0 or 100%, not 10%/);
      await a.traffic.setShare("metadata-reads", 100, "k2");
      expect(await a.traffic.share("metadata-reads")).toBe(100);
    } finally {
      log.close();
    }
  });
});
