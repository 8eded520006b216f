import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderSection } from "../src/core/sections.js";
import { analyze } from "../src/tools/database/analyze.js";
import { PgDatabase, sessionTag } from "../src/tools/database/real.js";
import { DatabaseSection } from "../src/tools/database/section.js";
import type { Op } from "../src/tools/database/types.js";
import { planStatements, sqlSection } from "../src/graph/workflows/upgrade-database-schema/safety.js";
import { OpLog } from "../src/store/oplog.js";
import { seedPostgis, startWriter } from "./fixtures/postgis.js";
import { postgresTestDatabase, tempHome } from "./helpers.js";

const pgdb = postgresTestDatabase("honua_w19");
const ROWS = 300_000;

describe("database capability on real PostgreSQL + PostGIS", () => {
  const t = tempHome();
  let log: OpLog;
  let db: PgDatabase;
  let admin: pg.Client;
  const opts = (over: Partial<DatabaseSection> = {}) => DatabaseSection.parse({ url: "env:W19_URL", lockTimeoutMs: 200, retries: { attempts: 3, baseMs: 20, maxMs: 100 }, backup: { dir: t.home + "/backups" }, ...over });
  const make = (over: Partial<DatabaseSection> = {}) => new PgDatabase(opts(over), log, "lab", { W19_URL: pgdb.url }, t.home, null, undefined, () => 0.5);
  const applyOpts = (d: PgDatabase) => ({ ...d.options });

  beforeAll(async () => {
    await seedPostgis(pgdb.url, ROWS);
    log = new OpLog(t.home + "/ops.sqlite");
    db = make();
    admin = new pg.Client({ connectionString: pgdb.url });
    await admin.connect();
  }, 120_000);
  afterAll(async () => {
    await admin?.end();
    log?.close();
    t.cleanup();
  });

  const one = async (sql: string): Promise<Op> => {
    const [a] = await analyze(sql, await db.introspect());
    expect(a!.ops).toHaveLength(1);
    return a!.ops[0]!;
  };

  it("reads tables, sizes, indexes, constraints and PostGIS from the catalogs", async () => {
    const s = await db.introspect();
    const f = s.tables.find((x) => x.name === "features")!;
    expect(f.rows).toBeGreaterThan(ROWS * 0.9);
    expect(f.bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(f.columns.map((c) => c.name)).toEqual(["id", "layer_id", "geom", "properties"]);
    expect(f.columns.find((c) => c.name === "geom")!.type).toBe("geometry(Point,4326)");
    expect(f.constraints.map((c) => c.name)).toContain("features_pkey");
    expect(s.indexes.find((i) => i.name === "features_pkey")).toMatchObject({ valid: true, method: "btree", columns: ["id"] });
    expect(s.extensions.map((e) => e.name)).toContain("postgis");
    expect(s.availableExtensions).toContain("postgis_raster");
    expect(s.serverVersion).toMatch(/^1[5-9]/);
  });

  it("unsafe DDL is rewritten and shown: CONCURRENTLY, CHECK NOT VALID + VALIDATE for SET NOT NULL, NOT VALID + VALIDATE for a foreign key, a volatile default flagged", async () => {
    const planned = await planStatements(db, [
      { sql: "CREATE INDEX ON features USING gist (geom)", source: "user" },
      { sql: "ALTER TABLE layers ALTER COLUMN title SET NOT NULL", source: "user" },
      { sql: "ALTER TABLE features ADD CONSTRAINT features_layer_fk FOREIGN KEY (layer_id) REFERENCES layers (id)", source: "user" },
      { sql: "ALTER TABLE features ADD COLUMN uid uuid DEFAULT gen_random_uuid()", source: "user" },
    ]);
    const [idx, nn, fk, vol] = planned;
    expect(idx!.rewritten).toBe("CREATE INDEX CONCURRENTLY features_geom_idx ON features USING gist (geom)");
    expect(idx!.strongestLock).toBe("SHARE UPDATE EXCLUSIVE");
    expect(idx!.lock).toMatch(/the original took SHARE \(writes blocked\)/);
    expect(idx!.squawkOriginal.map((f) => f.rule)).toContain("require-concurrent-index-creation");
    expect(idx!.squawkRewritten.map((f) => f.rule)).not.toContain("require-concurrent-index-creation");
    expect(nn!.ops.map((o) => o.sql)).toEqual([
      'ALTER TABLE "public"."layers" ADD CONSTRAINT "layers_title_not_null" CHECK ("title" IS NOT NULL) NOT VALID',
      'ALTER TABLE "public"."layers" VALIDATE CONSTRAINT "layers_title_not_null"',
      'ALTER TABLE "public"."layers" ALTER COLUMN "title" SET NOT NULL',
      'ALTER TABLE "public"."layers" DROP CONSTRAINT IF EXISTS "layers_title_not_null"',
    ]);
    expect(fk!.ops.map((o) => o.sql)).toEqual([
      "ALTER TABLE features ADD CONSTRAINT features_layer_fk FOREIGN KEY (layer_id) REFERENCES layers (id) NOT VALID",
      'ALTER TABLE "public"."features" VALIDATE CONSTRAINT "features_layer_fk"',
    ]);
    expect(vol!.notes.join(" ")).toMatch(/volatile default gen_random_uuid\(\): PostgreSQL rewrites all of public\.features/);
    const shown = renderSection(sqlSection(planned)).lines.join("\n");
    expect(shown).toContain("(you gave: CREATE INDEX ON features USING gist (geom))");
    expect(shown).toContain("lock: SHARE UPDATE EXCLUSIVE on public.features");
    expect(shown).toMatch(/undo: DROP INDEX CONCURRENTLY IF EXISTS "public"."features_geom_idx"/);
  });

  it("malformed and unknown statements are refused with the reason; nothing runs", async () => {
    const s = await db.introspect();
    await expect(analyze("CREAT INDEX oops ON features (geom)", s)).rejects.toThrow(/does not parse .*syntax error at or near "CREAT"/);
    await expect(analyze("UPDATE features SET layer_id = 1", s)).rejects.toThrow(/Update is not a schema change this agent runs/);
    await expect(analyze("ALTER TABLE features ALTER COLUMN layer_id TYPE bigint", s)).rejects.toThrow(/type change rewrites the table/);
    await expect(analyze("DROP TABLE layers CASCADE", s)).rejects.toThrow(/CASCADE/);
    await expect(analyze("CREATE INDEX ON nowhere (x)", s)).rejects.toThrow(/no such table/);
    expect(await db.introspect()).toEqual({ ...s, at: expect.any(String) });
  });

  it("a writer inserting continuously during CREATE INDEX CONCURRENTLY on 300k rows: zero failed writes, writes land during the build, the index is valid", async () => {
    const op = await one("CREATE INDEX features_props_idx ON features USING gin (properties)");
    const writer = startWriter(pgdb.url, `INSERT INTO features (layer_id, geom, properties) VALUES (7, ST_SetSRID(ST_MakePoint(1, 2), 4326), '{"w": 1}')`);
    const before = Number((await admin.query(`SELECT count(*) AS n FROM features WHERE properties = '{"w": 1}'`)).rows[0].n);
    const r = await db.apply(op, "run-w:ApplySchemaChanges:0:op:0.0", applyOpts(db));
    const during = Number((await admin.query(`SELECT count(*) AS n FROM features WHERE properties = '{"w": 1}'`)).rows[0].n);
    const w = await writer.stop();
    expect(r.outcome).toBe("applied");
    expect(w.failed).toBe(0);
    expect(w.errors).toEqual([]);
    expect(during - before).toBeGreaterThan(0);
    const v = await admin.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'features_props_idx'::regclass`);
    expect(v.rows[0].indisvalid).toBe(true);
    // Replay with the same key: the recorded result, nothing run again.
    expect(await db.apply(op, "run-w:ApplySchemaChanges:0:op:0.0", applyOpts(db))).toEqual(r);
  }, 120_000);

  it("a lock held by another session: retried with backoff, then given up (lock-busy) without queueing writers behind it", async () => {
    const holder = new pg.Client({ connectionString: pgdb.url });
    await holder.connect();
    await holder.query("BEGIN");
    // Writers still get ROW EXCLUSIVE past this lock; an ALTER TABLE waiting for ACCESS EXCLUSIVE would queue them all.
    await holder.query("LOCK TABLE layers IN SHARE UPDATE EXCLUSIVE MODE");
    const writer = startWriter(pgdb.url, `INSERT INTO layers (name) VALUES ('w')`);
    const op = await one("ALTER TABLE layers ADD COLUMN last_modified timestamptz");
    const progress: string[] = [];
    const r = await db.apply(op, "run-l:ApplySchemaChanges:0:op:0.0", { ...applyOpts(db), progress: (m) => progress.push(m) });
    const waiting = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [sessionTag("run-l:ApplySchemaChanges:0:op:0.0")]);
    const w = await writer.stop();
    await holder.query("ROLLBACK");
    await holder.end();
    expect(r).toMatchObject({ outcome: "lock-busy", attempts: 3, lockTimeouts: 3 });
    expect(progress.filter((p) => /lock not granted within 200 ms/.test(p))).toHaveLength(3);
    expect(waiting.rows[0].n).toBe(0);
    expect(w.failed).toBe(0);
    expect(w.ok).toBeGreaterThan(0);
    expect((await db.introspect()).tables.find((x) => x.name === "layers")!.columns.map((c) => c.name)).not.toContain("last_modified");
    // Once the lock is free, the next round runs it.
    expect((await db.apply(op, "run-l:ApplySchemaChanges:1:op:0.0", applyOpts(db))).outcome).toBe("applied");
  }, 60_000);

  it("a CONCURRENTLY build that gives up waiting for an old transaction gives up after its retries; the INVALID index it left is named, offered to the delete gate, and rebuilt by the next round", async () => {
    const old = new pg.Client({ connectionString: pgdb.url });
    await old.connect();
    await old.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    await old.query("SELECT count(*) FROM layers");
    const op = await one("CREATE INDEX layers_title_idx ON layers (title)");
    let r: Awaited<ReturnType<typeof db.apply>>;
    let left: boolean[];
    try {
      r = await db.apply(op, "run-o:ApplySchemaChanges:0:op:0.0", applyOpts(db));
      left = (await admin.query(`SELECT i.indisvalid AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'layers_title_idx'`)).rows.map((x) => x.v as boolean);
    } finally {
      await old.query("ROLLBACK");
      await old.end();
    }
    // Each try waited at most lock_timeout for the old transaction, then gave up; the timed-out build's INVALID
    // index cannot be dropped while that transaction lasts either, and is named for the next round.
    expect(r).toMatchObject({ outcome: "lock-busy", attempts: 3, lockTimeouts: 3 });
    expect(left).toEqual([false]);
    expect(r.note).toMatch(/INVALID index the timed-out build left .* the next round \(or the rollback's delete gate\) drops it/);
    expect(await db.provisioned("run-o:ApplySchemaChanges:0:op:0.0")).toMatchObject({ id: "ddl:run-o:ApplySchemaChanges:0:op:0.0" });
    // Once it has ended, the next round drops the INVALID index and builds a valid one.
    expect((await db.apply(op, "run-o:ApplySchemaChanges:1:op:0.0", applyOpts(db))).outcome).toBe("repaired");
    expect((await admin.query(`SELECT i.indisvalid AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'layers_title_idx'`)).rows.map((x) => x.v as boolean)).toEqual([true]);
  }, 60_000);

  it("an INVALID index (a forced one) is dropped and rebuilt; a valid one is kept", async () => {
    await admin.query(`CREATE INDEX layers_name_idx ON layers (name)`);
    await admin.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'layers_name_idx'::regclass`);
    const op = await one("CREATE INDEX layers_name_idx ON layers (name)");
    const oid = async () => Number((await admin.query(`SELECT 'layers_name_idx'::regclass::oid AS o`)).rows[0].o);
    const first = await oid();
    const r = await db.apply(op, "run-i:ApplySchemaChanges:0:op:0.0", applyOpts(db));
    expect(r.outcome).toBe("repaired");
    expect((await admin.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'layers_name_idx'::regclass`)).rows[0].indisvalid).toBe(true);
    const rebuilt = await oid();
    expect(rebuilt).not.toBe(first);
    const again = await db.apply(op, "run-i2:ApplySchemaChanges:0:op:0.0", applyOpts(db));
    expect(again.outcome).toBe("already");
    expect(await oid()).toBe(rebuilt);
  });

  it("backup: pg_dump -Fc verified with pg_restore --list; Honua's BackupCommand is honoured and a failing one aborts", async () => {
    const b = await db.backup("run-b:BackupDatabase:0");
    expect(b.mode).toBe("schema");
    expect(b.entries).toBeGreaterThan(5);
    expect(b.verifiedBy).toMatch(/^pg_restore --list: \d+ entries$/);
    const cfg = (cmd: string) => ({ read: async () => ({ Database__MigrationSafety__BackupCommand: cmd }), apply: async () => undefined });
    const honua = new PgDatabase(opts(), log, "lab", { W19_URL: pgdb.url }, t.home, cfg('pg_dump -Fc --schema-only -f "$HONUA_BACKUP_FILE" "$DATABASE_URL"'));
    const hb = await honua.backup("run-b2:BackupDatabase:0");
    expect(hb.command).toMatch(/^Database__MigrationSafety__BackupCommand: pg_dump/);
    expect(hb.entries).toBe(b.entries);
    const failing = new PgDatabase(opts(), log, "lab", { W19_URL: pgdb.url }, t.home, cfg("exit 3"));
    await expect(failing.backup("run-b3:BackupDatabase:0")).rejects.toThrow(/Honua's backup command failed, so nothing was changed/);
  }, 60_000);

  it("EXPLAIN names the index a query uses; restore and deprovision run only the inverses this adapter recorded", async () => {
    const op = await one("CREATE INDEX features_geom_idx ON features USING gist (geom)");
    await db.apply(op, "run-e:ApplySchemaChanges:0:op:0.0", applyOpts(db));
    const e = await db.explain("SELECT count(*) FROM features WHERE geom && ST_MakeEnvelope(0, 0, 1, 1, 4326)");
    expect(e.indexes).toContain("features_geom_idx");
    expect(await db.provisioned("run-e:ApplySchemaChanges:0:op:0.0")).toMatchObject({ id: "ddl:run-e:ApplySchemaChanges:0:op:0.0" });
    await expect(db.deprovision("ddl:someone-else", "k")).rejects.toThrow(/not a change honua-agent made/);
    await db.deprovision("ddl:run-e:ApplySchemaChanges:0:op:0.0", "run-e:cleanup:0:x");
    expect((await db.introspect()).indexes.map((i) => i.name)).not.toContain("features_geom_idx");
  }, 60_000);
});
