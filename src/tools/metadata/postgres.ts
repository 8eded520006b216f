import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { AgentError } from "../../core/errors.js";
import { ident } from "./records.js";
import type { Backup, Change, ChangeCapture, MetaRecord, MetadataStore, Provisioning, QueryMix, RecordKey, SampleQuery, StoreMeasure } from "./types.js";

const run = promisify(execFile);

/** Where the catalog sits in a PostgreSQL database: read from the database itself, never assumed. */
export interface PgLayout {
  table: string;
  collection: string;
  id: string;
  content: string;
  /** A PostGIS geometry column, if the table has one; else geometry is read from the content. */
  geometry: string | null;
  datetime: string | null;
  /** True when the key columns compare in byte order already (C collation), so keyset reads use the primary key. */
  byteOrder: boolean;
  /** PostGIS is installed in the database (else bbox reads compare the item's bbox numbers). */
  postgis: boolean;
}

const CONTENT_NAMES = ["content", "item", "data", "doc", "document", "json"];
const COLLECTION_NAMES = ["collection", "collection_id", "collectionid"];

/**
 * A STAC catalog in PostgreSQL. As a source it is Honua's own catalog table, found in information_schema (a table with
 * an id, a collection and a json/jsonb column; the pgstac layout `collection, id, content` among them). As a target it
 * is the layout this store provisions: `<schema>.items` with JSONB content, a GIN index on it, a PostGIS geometry with
 * a GiST index, a datetime index and a full-text index.
 */
export class PostgresMetadataStore implements MetadataStore {
  readonly kind = "postgres" as const;
  readonly supports = { text: true, spatial: true, datetime: true };
  private readonly pool: pg.Pool;
  private layoutCache: PgLayout | null = null;

  constructor(private readonly o: { url: string; table?: string; schema?: string; role: "source" | "target" }) {
    this.pool = new pg.Pool({ connectionString: o.url, max: 4 });
    this.pool.on("error", () => undefined);
  }

  private get targetTable(): string {
    return `${this.o.schema ?? "honua_catalog"}.items`;
  }

  describe(): string {
    const u = new URL(this.o.url);
    const where = `${u.hostname}:${u.port || 5432}${u.pathname}`;
    return `PostgreSQL ${where} table ${this.o.role === "target" ? this.targetTable : (this.o.table ?? this.layoutCache?.table ?? "(catalog)")}`;
  }

  /** The catalog table and its columns, from information_schema. */
  async layout(): Promise<PgLayout> {
    if (this.layoutCache) return this.layoutCache;
    const wanted = this.o.role === "target" ? this.targetTable : this.o.table;
    const cols = await this.pool.query<{ schema: string; table: string; column: string; type: string; udt: string; collation: string | null }>(
      `SELECT c.table_schema AS schema, c.table_name AS table, c.column_name AS column, c.data_type AS type, c.udt_name AS udt, c.collation_name AS collation
         FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
        ORDER BY c.table_schema, c.table_name, c.ordinal_position`,
    );
    type Col = (typeof cols.rows)[number];
    const byTable = new Map<string, Col[]>();
    for (const c of cols.rows) byTable.set(`${c.schema}.${c.table}`, [...(byTable.get(`${c.schema}.${c.table}`) ?? []), c]);
    const fit = (name: string): PgLayout | null => {
      const cs = byTable.get(name) ?? byTable.get(`public.${name}`);
      if (!cs) return null;
      const find = (names: string[], ok: (c: Col) => boolean = () => true) => names.map((n) => cs.find((c) => c.column === n && ok(c))).find((c) => c);
      const id = find(["id", "item_id"]);
      const collection = find(COLLECTION_NAMES);
      const content = find(CONTENT_NAMES, (c) => c.udt === "jsonb" || c.udt === "json");
      if (!id || !collection || !content) return null;
      const geometry = cs.find((c) => c.udt === "geometry")?.column ?? null;
      const datetime = cs.find((c) => (c.column === "datetime" || c.column === "start_datetime") && c.type.startsWith("timestamp"))?.column ?? null;
      const c = (x: { collation: string | null }) => x.collation === "C" || x.collation === "POSIX";
      return { table: `${cs[0]!.schema}.${cs[0]!.table}`, id: id.column, collection: collection.column, content: content.column, geometry, datetime, byteOrder: c(id) && c(collection), postgis: false };
    };
    let found: PgLayout | null = null;
    if (wanted) found = fit(wanted);
    else {
      const candidates = [...byTable.keys()].map(fit).filter((x): x is PgLayout => x !== null && !x.table.endsWith("honua_agent_changes"));
      if (candidates.length > 1) {
        const items = candidates.filter((x) => /items?$/.test(x.table));
        if (items.length !== 1) throw new AgentError("bad-input", `${this.describe()}: several tables look like a STAC catalog (${candidates.map((x) => x.table).join(", ")}); name one with metadata.table`);
        found = items[0]!;
      } else found = candidates[0] ?? null;
    }
    if (!found) {
      if (this.o.role === "target") throw new AgentError("failed", `${this.describe()} does not exist: provision it first`);
      throw new AgentError("bad-input", `${this.describe()}: no STAC catalog table found (a table with id, collection and a json/jsonb content column)${wanted ? `; ${wanted} has no such columns` : ""}`);
    }
    if (!found.byteOrder) {
      // The database's own collation may already compare bytes (C, POSIX, C.UTF-8): then the key index serves keyset reads.
      const db = await this.pool.query<{ c: string }>(`SELECT datcollate AS c FROM pg_database WHERE datname = current_database()`);
      found.byteOrder = /^(C|POSIX|C\.UTF-?8)$/i.test(db.rows[0]?.c ?? "");
    }
    found.postgis = (await this.q(`SELECT 1 FROM pg_extension WHERE extname = 'postgis'`)).length > 0;
    this.layoutCache = found;
    return found;
  }

  private async q<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query<T>(sql, params)).rows;
  }

  /** The key columns in byte order (COLLATE "C" only where the columns compare otherwise). */
  private keyCols(l: PgLayout): { c: string; i: string } {
    const k = (col: string) => (l.byteOrder ? ident(col) : `${ident(col)} COLLATE "C"`);
    return { c: k(l.collection), i: k(l.id) };
  }

  private geomExpr(l: PgLayout): string {
    if (l.geometry) return ident(l.geometry);
    const c = ident(l.content);
    return `coalesce(CASE WHEN jsonb_typeof(${c}->'geometry') = 'object' THEN ST_SetSRID(ST_GeomFromGeoJSON((${c}->'geometry')::text), 4326) END, ST_MakeEnvelope((${c}->'bbox'->>0)::float8, (${c}->'bbox'->>1)::float8, (${c}->'bbox'->>2)::float8, (${c}->'bbox'->>3)::float8, 4326))`;
  }

  private dtExpr(l: PgLayout): string {
    if (l.datetime) return ident(l.datetime);
    const v = `(${ident(l.content)}->'properties'->>'datetime')`;
    // Read-only on the source: no helper function is created there, a malformed datetime simply does not match.
    return `(CASE WHEN ${v} ~ '^\\d{4}-\\d{2}-\\d{2}' THEN ${v}::timestamptz END)`;
  }

  private tsExpr(l: PgLayout): string {
    const c = ident(l.content);
    return l.table === this.targetTable && this.o.role === "target"
      ? "search"
      : `to_tsvector('simple', coalesce(${c}->'properties'->>'title', '') || ' ' || coalesce(${c}->'properties'->>'description', '') || ' ' || coalesce(${c}->'properties'->>'keywords', ''))`;
  }

  async count(): Promise<number> {
    const l = await this.layout();
    return Number((await this.q<{ n: string }>(`SELECT count(*) AS n FROM ${ident(l.table)}`))[0]!.n);
  }

  async measure(): Promise<StoreMeasure> {
    const l = await this.layout();
    const t = (await this.q<{ n: string; b: string }>(`SELECT count(*) AS n, coalesce(sum(pg_column_size(${ident(l.content)})), 0) AS b FROM ${ident(l.table)}`))[0]!;
    const cols = await this.q<{ id: string; records: string }>(`SELECT ${ident(l.collection)} AS id, count(*) AS records FROM ${ident(l.table)} GROUP BY 1 ORDER BY 1`);
    return { records: Number(t.n), bytes: Number(t.b), collections: cols.map((c) => ({ id: c.id, records: Number(c.records) })), queryMix: await this.queryMix(l) };
  }

  /** The read mix on the catalog table from pg_stat_statements, where the extension is installed; else null. */
  private async queryMix(l: PgLayout): Promise<QueryMix | null> {
    const ext = await this.q(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`);
    if (!ext.length) return null;
    let rows: { query: string; calls: string }[];
    try {
      rows = await this.q<{ query: string; calls: string }>(`SELECT query, calls FROM pg_stat_statements WHERE query ILIKE $1 AND query ~* '^\\s*select'`, [`%${l.table.split(".").at(-1)}%`]);
    } catch {
      return null; // the extension is installed but not preloaded (shared_preload_libraries): no statistics
    }
    const shares: Record<string, number> = {};
    let calls = 0;
    for (const r of rows) {
      const s = r.query.toLowerCase();
      const kind = /@@|tsvector|tsquery|ilike/.test(s) ? "text" : /&&|st_intersects|st_makeenvelope/.test(s) ? "bbox" : /datetime/.test(s) ? "datetime" : /\bid\s*=/.test(s) ? "id" : "collection";
      shares[kind] = (shares[kind] ?? 0) + Number(r.calls);
      calls += Number(r.calls);
    }
    if (calls === 0) return { source: "pg_stat_statements (no reads of the catalog recorded yet)", shares: {}, calls: 0 };
    for (const k of Object.keys(shares)) shares[k] = Number((shares[k]! / calls).toFixed(4));
    return { source: "pg_stat_statements", shares, calls };
  }

  private toRecords(rows: { collection: string; id: string; content: Record<string, unknown> }[]): MetaRecord[] {
    return rows.map((r) => ({ collection: r.collection, id: r.id, content: r.content }));
  }

  private select(l: PgLayout): string {
    return `SELECT ${ident(l.collection)} AS collection, ${ident(l.id)} AS id, ${ident(l.content)}::jsonb AS content FROM ${ident(l.table)}`;
  }

  async page(after: RecordKey | null, limit: number): Promise<MetaRecord[]> {
    const l = await this.layout();
    const k = this.keyCols(l);
    const where = after ? `WHERE (${k.c}, ${k.i}) > ($1, $2)` : "";
    return this.toRecords(await this.q(`${this.select(l)} ${where} ORDER BY ${k.c}, ${k.i} LIMIT ${after ? "$3" : "$1"}`, after ? [after.collection, after.id, limit] : [limit]));
  }

  async get(keys: readonly RecordKey[]): Promise<MetaRecord[]> {
    if (!keys.length) return [];
    const l = await this.layout();
    return this.toRecords(await this.q(
      `${this.select(l)} WHERE (${ident(l.collection)}, ${ident(l.id)}) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [keys.map((k) => k.collection), keys.map((k) => k.id)],
    ));
  }

  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const out = await f(c);
      await c.query("COMMIT");
      return out;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  private marksTable(l: PgLayout): string {
    return `${l.table.split(".")[0]}.honua_agent_marks`;
  }

  private async setMark(c: pg.PoolClient, l: PgLayout, mark: { name: string; value: string } | undefined): Promise<void> {
    if (!mark) return;
    await c.query(`CREATE TABLE IF NOT EXISTS ${ident(this.marksTable(l))} (name text PRIMARY KEY, value text NOT NULL)`);
    await c.query(`INSERT INTO ${ident(this.marksTable(l))} (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [mark.name, mark.value]);
  }

  async upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }): Promise<void> {
    const l = await this.layout();
    const target = this.o.role === "target";
    const cols = [l.collection, l.id, l.content].map(ident);
    const extra = target ? ", geometry, datetime" : "";
    const exprs = target ? `, ${this.geomExprOn("c")}, honua_catalog_ts(c->'properties'->>'datetime')` : "";
    const set = [`${ident(l.content)} = excluded.${ident(l.content)}`, ...(target ? ["geometry = excluded.geometry", "datetime = excluded.datetime"] : [])].join(", ");
    await this.tx(async (c) => {
      if (records.length) {
        await c.query(
          `INSERT INTO ${ident(l.table)} (${cols.join(", ")}${extra})
           SELECT col, id, c${exprs} FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(col, id, c)
           ON CONFLICT (${ident(l.collection)}, ${ident(l.id)}) DO UPDATE SET ${set} WHERE ${ident(l.table.split(".").at(-1)!)}.${ident(l.content)} IS DISTINCT FROM excluded.${ident(l.content)}`,
          [records.map((r) => r.collection), records.map((r) => r.id), records.map((r) => JSON.stringify(r.content))],
        );
      }
      await this.setMark(c, l, mark);
    });
  }

  private geomExprOn(v: string): string {
    return `coalesce(CASE WHEN jsonb_typeof(${v}->'geometry') = 'object' THEN ST_SetSRID(ST_GeomFromGeoJSON((${v}->'geometry')::text), 4326) END, ST_MakeEnvelope((${v}->'bbox'->>0)::float8, (${v}->'bbox'->>1)::float8, (${v}->'bbox'->>2)::float8, (${v}->'bbox'->>3)::float8, 4326))`;
  }

  async mark(name: string): Promise<string | null> {
    const l = await this.layout();
    const has = await this.q(`SELECT to_regclass($1) AS r`, [this.marksTable(l)]);
    if (!(has[0] as { r: string | null }).r) return null;
    return (await this.q<{ value: string }>(`SELECT value FROM ${ident(this.marksTable(l))} WHERE name = $1`, [name]))[0]?.value ?? null;
  }

  async remove(keys: readonly RecordKey[], mark?: { name: string; value: string }): Promise<void> {
    const l = await this.layout();
    await this.tx(async (c) => {
      if (keys.length) {
        await c.query(`DELETE FROM ${ident(l.table)} WHERE (${ident(l.collection)}, ${ident(l.id)}) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, [keys.map((k) => k.collection), keys.map((k) => k.id)]);
      }
      await this.setMark(c, l, mark);
    });
  }

  async query(q: SampleQuery): Promise<RecordKey[]> {
    const l = await this.layout();
    const k = this.keyCols(l);
    const base = `SELECT ${ident(l.collection)} AS collection, ${ident(l.id)} AS id FROM ${ident(l.table)}`;
    const order = `ORDER BY ${k.c}, ${k.i}`;
    switch (q.kind) {
      case "id":
        return this.q(`${base} WHERE ${ident(l.collection)} = $1 AND ${ident(l.id)} = $2`, [q.collection, q.id]);
      case "collection":
        return this.q(`${base} WHERE ${ident(l.collection)} = $1 ${order} LIMIT $2`, [q.collection, q.limit]);
      case "bbox": {
        if (l.postgis) return this.q(`${base} WHERE ${this.geomExpr(l)} && ST_MakeEnvelope($1, $2, $3, $4, 4326) ${order} LIMIT $5`, [...q.bbox, q.limit]);
        const b = (i: number) => `(${ident(l.content)}->'bbox'->>${i})::float8`;
        return this.q(`${base} WHERE jsonb_typeof(${ident(l.content)}->'bbox') = 'array' AND ${b(0)} <= $3 AND ${b(2)} >= $1 AND ${b(1)} <= $4 AND ${b(3)} >= $2 ${order} LIMIT $5`, [...q.bbox, q.limit]);
      }
      case "datetime":
        return this.q(`${base} WHERE ${this.dtExpr(l)} BETWEEN $1::timestamptz AND $2::timestamptz ${order} LIMIT $3`, [q.from, q.to, q.limit]);
      case "text":
        return this.q(`${base} WHERE ${this.tsExpr(l)} @@ plainto_tsquery('simple', $1) ${order} LIMIT $2`, [q.text, q.limit]);
    }
  }

  private async databaseExists(): Promise<boolean> {
    const u = new URL(this.o.url);
    const admin = new URL(this.o.url);
    admin.pathname = "/postgres";
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    try {
      return (await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [decodeURIComponent(u.pathname.slice(1))])).rowCount === 1;
    } finally {
      await c.end();
    }
  }

  async plan(): Promise<{ creates: boolean; details: string[] }> {
    const db = decodeURIComponent(new URL(this.o.url).pathname.slice(1));
    const dbExists = await this.databaseExists();
    const exists = dbExists && (await this.q<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [this.targetTable]))[0]!.r !== null;
    const schema = this.o.schema ?? "honua_catalog";
    return {
      creates: !exists,
      details: exists
        ? [`${this.targetTable} exists in database ${db}: adopted as it is`]
        : [
            ...(dbExists ? [] : [`CREATE DATABASE ${db}`]),
            "CREATE EXTENSION IF NOT EXISTS postgis",
            `CREATE SCHEMA ${schema}`,
            `CREATE TABLE ${this.targetTable} (collection text COLLATE "C", id text COLLATE "C", content jsonb, geometry geometry(Geometry, 4326), datetime timestamptz, search tsvector GENERATED, PRIMARY KEY (collection, id))`,
            `CREATE INDEX ... USING gin (content jsonb_path_ops)`,
            `CREATE INDEX ... USING gist (geometry)`,
            `CREATE INDEX ... (datetime)`,
            `CREATE INDEX ... USING gin (search)`,
          ],
    };
  }

  async provision(): Promise<Provisioning> {
    const details: string[] = [];
    const db = decodeURIComponent(new URL(this.o.url).pathname.slice(1));
    let created = false;
    if (!(await this.databaseExists())) {
      const admin = new URL(this.o.url);
      admin.pathname = "/postgres";
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${ident(db)}`);
        details.push(`created database ${db}`);
        created = true;
      } catch (e) {
        if (!/already exists/.test(String(e))) throw e;
      } finally {
        await c.end();
      }
    }
    const schema = this.o.schema ?? "honua_catalog";
    const had = (await this.q<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [this.targetTable]))[0]!.r !== null;
    await this.tx(async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('honua-catalog-provision'))`);
      await c.query(`CREATE EXTENSION IF NOT EXISTS postgis`);
      await c.query(`CREATE OR REPLACE FUNCTION public.honua_catalog_ts(v text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN RETURN v::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END $$`);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${ident(this.targetTable)} (
        collection text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, content jsonb NOT NULL,
        geometry geometry(Geometry, 4326), datetime timestamptz,
        search tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(content->'properties'->>'title', '') || ' ' || coalesce(content->'properties'->>'description', '') || ' ' || coalesce(content->'properties'->>'keywords', ''))) STORED,
        PRIMARY KEY (collection, id))`);
      await c.query(`CREATE INDEX IF NOT EXISTS items_content_gin ON ${ident(this.targetTable)} USING gin (content jsonb_path_ops)`);
      await c.query(`CREATE INDEX IF NOT EXISTS items_geometry_gist ON ${ident(this.targetTable)} USING gist (geometry)`);
      await c.query(`CREATE INDEX IF NOT EXISTS items_datetime ON ${ident(this.targetTable)} (datetime)`);
      await c.query(`CREATE INDEX IF NOT EXISTS items_search_gin ON ${ident(this.targetTable)} USING gin (search)`);
    });
    if (!had) {
      created = true;
      details.push(`created ${this.targetTable} (JSONB content + GIN, PostGIS geometry + GiST, datetime, full-text GIN)`);
    } else details.push(`${this.targetTable} exists: adopted`);
    return { created, details };
  }

  async deprovision(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${ident(this.o.schema ?? "honua_catalog")} CASCADE`);
    this.layoutCache = null;
  }

  private changesTable(l: PgLayout): string {
    return `${l.table.split(".")[0]}.honua_agent_changes`;
  }

  private triggerName(name: string): string {
    return `honua_capture_${createHash("sha256").update(name).digest("hex").slice(0, 16)}`;
  }

  readonly capture: ChangeCapture = {
    method: "a row trigger (insert, update, delete) into honua_agent_changes, read up to the oldest transaction open in the database",
    start: async (name) => {
      const l = await this.layout();
      const ct = ident(this.changesTable(l));
      const schema = l.table.split(".")[0]!;
      await this.tx(async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(hashtext('honua-capture'))`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${ct} (seq bigserial PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), capture text NOT NULL, op text NOT NULL, collection text NOT NULL, id text NOT NULL)`);
        await c.query(`CREATE INDEX IF NOT EXISTS honua_agent_changes_xid ON ${ct} (capture, xid)`);
        // One function for every capture: the capture name and the key columns are the trigger's arguments.
        await c.query(`CREATE OR REPLACE FUNCTION ${ident(schema)}.honua_agent_capture() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
              INSERT INTO ${ct} (capture, op, collection, id) VALUES (TG_ARGV[0], 'delete', to_jsonb(OLD)->>TG_ARGV[1], to_jsonb(OLD)->>TG_ARGV[2]);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
              INSERT INTO ${ct} (capture, op, collection, id) VALUES (TG_ARGV[0], 'upsert', to_jsonb(NEW)->>TG_ARGV[1], to_jsonb(NEW)->>TG_ARGV[2]);
            END IF;
            RETURN NULL;
          END $$`);
        const exists = await c.query(`SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = $2::regclass`, [this.triggerName(name), l.table]);
        if (!exists.rowCount) {
          const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
          await c.query(`CREATE TRIGGER ${ident(this.triggerName(name))} AFTER INSERT OR UPDATE OR DELETE ON ${ident(l.table)} FOR EACH ROW EXECUTE FUNCTION ${ident(schema)}.honua_agent_capture(${lit(name)}, ${lit(l.collection)}, ${lit(l.id)})`);
        }
      });
    },
    changes: async (name, after, limit) => {
      const l = await this.layout();
      const ct = ident(this.changesTable(l));
      if (!(await this.q<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [this.changesTable(l)]))[0]!.r) return { changes: [], next: after };
      // Only transactions older than every one still open in this database are read: a write in flight can never land
      // behind the watermark. Transactions of other databases cannot write this table, so they do not hold it back.
      const c = await this.pool.connect();
      try {
        const h = (await c.query<{ h: string }>(`WITH s AS (SELECT pg_current_snapshot() AS snap)
          SELECT least(pg_snapshot_xmax(snap)::text::bigint, (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap) x
            WHERE EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = current_database() AND a.backend_xid = x::xid)))::text AS h FROM s`)).rows[0]!.h;
        const horizon = Number(h);
        const xids = (await c.query<{ x: string }>(`SELECT DISTINCT xid::text::bigint AS x FROM ${ct} WHERE capture = $1 AND xid >= $2::text::xid8 AND xid < $3::text::xid8 ORDER BY 1 LIMIT $4`, [name, String(after), h, limit])).rows.map((r) => Number(r.x));
        if (!xids.length) return { changes: [], next: Math.max(after, horizon) };
        const full = xids.length === limit;
        const upTo = full ? xids.at(-1)! + 1 : horizon;
        const rows = (await c.query<{ seq: string; op: "upsert" | "delete"; collection: string; id: string }>(
          `SELECT seq, op, collection, id FROM ${ct} WHERE capture = $1 AND xid >= $2::text::xid8 AND xid < $3::text::xid8 ORDER BY seq`, [name, String(after), String(upTo)],
        )).rows;
        return { changes: rows.map((r): Change => ({ seq: Number(r.seq), op: r.op, collection: r.collection, id: r.id })), next: upTo };
      } finally {
        c.release();
      }
    },
    stop: async (name) => {
      const l = await this.layout().catch(() => null);
      if (!l) return;
      await this.pool.query(`DROP TRIGGER IF EXISTS ${ident(this.triggerName(name))} ON ${ident(l.table)}`);
      if ((await this.q<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [this.changesTable(l)]))[0]!.r) {
        await this.pool.query(`DELETE FROM ${ident(this.changesTable(l))} WHERE capture = $1`, [name]);
      }
    },
    active: async (name) => {
      const l = await this.layout();
      return ((await this.pool.query(`SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgrelid = $2::regclass`, [this.triggerName(name), l.table])).rowCount ?? 0) > 0;
    },
  };

  /** `pg_dump -Fc` of the catalog table, verified with `pg_restore --list` (its table data must be listed). */
  async backup(dir: string, name: string): Promise<Backup> {
    const l = await this.layout();
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.dump`);
    const records = await this.count();
    try {
      await run("pg_dump", ["-Fc", "--no-owner", "-t", l.table, "-f", file, "-d", this.o.url], { maxBuffer: 16 * 1024 * 1024 });
    } catch (e) {
      throw new AgentError("failed", `pg_dump of ${l.table} failed (${String((e as { stderr?: string }).stderr ?? e).trim().split("\n")[0]}): nothing was retired`);
    }
    let verified = false;
    let verifiedBy: string;
    try {
      const { stdout } = await run("pg_restore", ["--list", file], { maxBuffer: 64 * 1024 * 1024 });
      const [schema, table] = l.table.split(".");
      verified = new RegExp(`TABLE DATA ${schema} ${table}\\b`).test(stdout);
      verifiedBy = verified ? `pg_restore --list lists TABLE DATA ${l.table}` : `pg_restore --list does not list TABLE DATA ${l.table}`;
    } catch (e) {
      verifiedBy = `pg_restore --list failed: ${String((e as { stderr?: string }).stderr ?? e).trim().split("\n")[0]}`;
    }
    return { location: file, format: "pg_dump custom (-Fc)", bytes: statSync(file).size, sha256: createHash("sha256").update(readFileSync(file)).digest("hex"), records, verified, verifiedBy };
  }

  async retire(): Promise<string[]> {
    const l = await this.layout();
    const n = await this.count();
    await this.pool.query(`DROP TABLE ${ident(l.table)}`);
    this.layoutCache = null;
    return [`dropped ${l.table} (${n} records)`];
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
