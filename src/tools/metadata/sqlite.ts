import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { AgentError } from "../../core/errors.js";
import { evaluate, ident } from "./records.js";
import type { Backup, Change, ChangeCapture, MetaRecord, MetadataStore, MetadataStoreKind, Provisioning, RecordKey, SampleQuery, StoreMeasure } from "./types.js";

type Row = { collection: string; id: string; content: string };
const SCAN = 5000;

/**
 * A catalog in SQLite: `table (collection, id, content JSON)`, keyed by (collection, id) in BINARY (byte) order.
 * `scope` keeps several stores in one table (the sandbox: a deployment and a store name per row). Change capture is a
 * trigger per statement kind into `<table>_changes`.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly supports = { text: true, spatial: true, datetime: true };
  private readonly db: Database.Database;
  private readonly own: boolean;
  private readonly t: string;
  private readonly marks: string;
  private readonly changesTable: string;
  private readonly where: string;
  private readonly scopeParams: string[];
  private readonly scopeCols: string;

  constructor(
    private readonly o: { path?: string; db?: Database.Database; table?: string; kind?: MetadataStoreKind; scope?: { deployment: string; store: string }; label?: string },
  ) {
    if (!o.db && !o.path) throw new AgentError("bad-input", "a sqlite metadata store needs a path");
    this.db = o.db ?? new Database(o.path!);
    this.own = !o.db;
    const table = o.table ?? "items";
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new AgentError("bad-input", `sqlite table name ${table}: letters, digits and _ only`);
    this.t = ident(table);
    this.marks = ident(`${table}_marks`);
    this.changesTable = ident(`${table}_changes`);
    this.where = o.scope ? "deployment = ? AND store = ?" : "1 = 1";
    this.scopeParams = o.scope ? [o.scope.deployment, o.scope.store] : [];
    this.scopeCols = o.scope ? "deployment TEXT NOT NULL, store TEXT NOT NULL, " : "";
  }

  get kind(): MetadataStoreKind {
    return this.o.kind ?? "sqlite";
  }

  describe(): string {
    return this.o.label ?? `SQLite ${this.o.path ?? "(sandbox)"} table ${this.t.replace(/"/g, "")}`;
  }

  private tableExists(): boolean {
    return this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(this.t.replace(/"/g, "")) !== undefined;
  }

  /** Scoped stores share one table: a scope exists once provisioned (a mark of its own). */
  private exists(): boolean {
    if (!this.tableExists()) return false;
    if (!this.o.scope) return true;
    return this.db.prepare(`SELECT 1 FROM ${this.marks} WHERE ${this.where} AND name = '__provisioned'`).get(...this.scopeParams) !== undefined;
  }

  private layout(): void {
    const pk = this.o.scope ? "deployment, store, collection, id" : "collection, id";
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ${this.t} (${this.scopeCols}collection TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL CHECK (json_valid(content)), PRIMARY KEY (${pk}));
      CREATE TABLE IF NOT EXISTS ${this.marks} (${this.scopeCols}name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (${this.o.scope ? "deployment, store, " : ""}name));
      CREATE TABLE IF NOT EXISTS ${this.changesTable} (seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment TEXT NOT NULL DEFAULT '', capture TEXT NOT NULL, op TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL);
    `);
  }

  async plan(): Promise<{ creates: boolean; details: string[] }> {
    const exists = this.exists();
    return { creates: !exists, details: [exists ? `table ${this.t} exists: adopted` : `create table ${this.t} (collection, id, content JSON), primary key (collection, id)`] };
  }

  async provision(): Promise<Provisioning> {
    const creates = !this.exists();
    this.db.transaction(() => {
      this.layout();
      if (this.o.scope) this.setMark({ name: "__provisioned", value: "1" });
    }).immediate();
    return { created: creates, details: [creates ? `created ${this.describe()}` : `adopted ${this.describe()}`] };
  }

  async deprovision(): Promise<void> {
    if (!this.tableExists()) return;
    if (this.o.scope) {
      this.db.transaction(() => {
        this.db.prepare(`DELETE FROM ${this.t} WHERE ${this.where}`).run(...this.scopeParams);
        this.db.prepare(`DELETE FROM ${this.marks} WHERE ${this.where}`).run(...this.scopeParams);
      }).immediate();
    } else {
      this.db.exec(`DROP TABLE IF EXISTS ${this.t}; DROP TABLE IF EXISTS ${this.marks}; DROP TABLE IF EXISTS ${this.changesTable};`);
    }
  }

  private rows(sql: string, params: unknown[]): MetaRecord[] {
    return (this.db.prepare(sql).all(...params) as Row[]).map((r) => ({ collection: r.collection, id: r.id, content: JSON.parse(r.content) as Record<string, unknown> }));
  }

  async count(): Promise<number> {
    if (!this.exists()) return 0;
    return (this.db.prepare(`SELECT count(*) AS n FROM ${this.t} WHERE ${this.where}`).get(...this.scopeParams) as { n: number }).n;
  }

  async measure(): Promise<StoreMeasure> {
    if (!this.exists()) return { records: 0, bytes: 0, collections: [], queryMix: null };
    const total = this.db.prepare(`SELECT count(*) AS n, coalesce(sum(length(CAST(content AS BLOB))), 0) AS b FROM ${this.t} WHERE ${this.where}`).get(...this.scopeParams) as { n: number; b: number };
    const cols = this.db.prepare(`SELECT collection AS id, count(*) AS records FROM ${this.t} WHERE ${this.where} GROUP BY collection ORDER BY collection`).all(...this.scopeParams) as { id: string; records: number }[];
    return { records: total.n, bytes: total.b, collections: cols, queryMix: null };
  }

  async page(after: RecordKey | null, limit: number): Promise<MetaRecord[]> {
    if (!this.exists()) return [];
    const cond = after ? `AND (collection, id) > (?, ?)` : "";
    return this.rows(`SELECT collection, id, content FROM ${this.t} WHERE ${this.where} ${cond} ORDER BY collection, id LIMIT ?`, [...this.scopeParams, ...(after ? [after.collection, after.id] : []), limit]);
  }

  async get(keys: readonly RecordKey[]): Promise<MetaRecord[]> {
    if (!this.exists() || keys.length === 0) return [];
    const stmt = this.db.prepare(`SELECT collection, id, content FROM ${this.t} WHERE ${this.where} AND collection = ? AND id = ?`);
    return keys.flatMap((k) => {
      const r = stmt.get(...this.scopeParams, k.collection, k.id) as Row | undefined;
      return r ? [{ collection: r.collection, id: r.id, content: JSON.parse(r.content) as Record<string, unknown> }] : [];
    });
  }

  private setMark(mark: { name: string; value: string } | undefined): void {
    if (!mark) return;
    const cols = this.o.scope ? "deployment, store, " : "";
    const qs = this.o.scope ? "?, ?, " : "";
    this.db.prepare(`INSERT INTO ${this.marks} (${cols}name, value) VALUES (${qs}?, ?) ON CONFLICT DO UPDATE SET value = excluded.value`).run(...this.scopeParams, mark.name, mark.value);
  }

  async upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }): Promise<void> {
    this.layoutIfMissing();
    const cols = this.o.scope ? "deployment, store, " : "";
    const qs = this.o.scope ? "?, ?, " : "";
    const pk = this.o.scope ? "deployment, store, collection, id" : "collection, id";
    const stmt = this.db.prepare(`INSERT INTO ${this.t} (${cols}collection, id, content) VALUES (${qs}?, ?, ?) ON CONFLICT (${pk}) DO UPDATE SET content = excluded.content WHERE content IS NOT excluded.content`);
    this.db.transaction(() => {
      for (const r of records) stmt.run(...this.scopeParams, r.collection, r.id, JSON.stringify(r.content));
      this.setMark(mark);
    }).immediate();
  }

  private layoutIfMissing(): void {
    if (!this.exists()) throw new AgentError("failed", `${this.describe()} does not exist: provision it first`);
  }

  async mark(name: string): Promise<string | null> {
    if (!this.exists()) return null;
    const r = this.db.prepare(`SELECT value FROM ${this.marks} WHERE ${this.where} AND name = ?`).get(...this.scopeParams, name) as { value: string } | undefined;
    return r?.value ?? null;
  }

  async remove(keys: readonly RecordKey[], mark?: { name: string; value: string }): Promise<void> {
    this.layoutIfMissing();
    const stmt = this.db.prepare(`DELETE FROM ${this.t} WHERE ${this.where} AND collection = ? AND id = ?`);
    this.db.transaction(() => {
      for (const k of keys) stmt.run(...this.scopeParams, k.collection, k.id);
      this.setMark(mark);
    }).immediate();
  }

  async query(q: SampleQuery): Promise<RecordKey[]> {
    if (!this.exists()) return [];
    if (q.kind === "id") return (await this.get([q])).map((r) => ({ collection: r.collection, id: r.id }));
    if (q.kind === "collection") {
      return (this.db.prepare(`SELECT collection, id FROM ${this.t} WHERE ${this.where} AND collection = ? ORDER BY collection, id LIMIT ?`).all(...this.scopeParams, q.collection, q.limit) as RecordKey[]);
    }
    // Spatial, time and text reads: SQLite has no index for them here, so the rows are scanned (keyset, in chunks).
    const out: RecordKey[] = [];
    let after: RecordKey | null = null;
    for (;;) {
      const page = await this.page(after, SCAN);
      out.push(...evaluate(page, { ...q, limit: Number.MAX_SAFE_INTEGER }));
      if (page.length < SCAN) break;
      after = page.at(-1)!;
    }
    return out.slice(0, q.limit);
  }

  readonly capture: ChangeCapture = {
    method: "SQLite triggers (insert, update, delete) into a change table",
    start: async (name) => {
      this.layout();
      const when = this.o.scope ? (row: string) => `WHEN ${row}.deployment = '${this.o.scope!.deployment.replace(/'/g, "''")}' AND ${row}.store = '${this.o.scope!.store.replace(/'/g, "''")}'` : () => "";
      const tn = (op: string) => ident(`honua_capture_${this.triggerName(name)}_${op}`);
      const lit = name.replace(/'/g, "''");
      // Scoped (the sandbox): each change row carries its deployment, so a sandbox reset clears it with the rest.
      const dep = (row: string) => (this.o.scope ? `${row}.deployment` : "''");
      this.db.transaction(() => {
        this.db.exec(`
          CREATE TRIGGER IF NOT EXISTS ${tn("ins")} AFTER INSERT ON ${this.t} ${when("NEW")} BEGIN INSERT INTO ${this.changesTable} (deployment, capture, op, collection, id) VALUES (${dep("NEW")}, '${lit}', 'upsert', NEW.collection, NEW.id); END;
          CREATE TRIGGER IF NOT EXISTS ${tn("upd")} AFTER UPDATE ON ${this.t} ${when("NEW")} BEGIN INSERT INTO ${this.changesTable} (deployment, capture, op, collection, id) VALUES (${dep("OLD")}, '${lit}', 'delete', OLD.collection, OLD.id); INSERT INTO ${this.changesTable} (deployment, capture, op, collection, id) VALUES (${dep("NEW")}, '${lit}', 'upsert', NEW.collection, NEW.id); END;
          CREATE TRIGGER IF NOT EXISTS ${tn("del")} AFTER DELETE ON ${this.t} ${when("OLD")} BEGIN INSERT INTO ${this.changesTable} (deployment, capture, op, collection, id) VALUES (${dep("OLD")}, '${lit}', 'delete', OLD.collection, OLD.id); END;
        `);
      }).immediate();
    },
    changes: async (name, after, limit) => {
      const has = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(this.changesTable.replace(/"/g, ""));
      if (!has) return { changes: [], next: after };
      // SQLite commits one writer at a time, so sequence order is commit order: the last sequence read is the watermark.
      const changes = this.db.prepare(`SELECT seq, op, collection, id FROM ${this.changesTable} WHERE capture = ? AND seq > ? ORDER BY seq LIMIT ?`).all(name, after, limit) as Change[];
      return { changes, next: changes.at(-1)?.seq ?? after };
    },
    stop: async (name) => {
      this.db.transaction(() => {
        for (const op of ["ins", "upd", "del"]) this.db.exec(`DROP TRIGGER IF EXISTS ${ident(`honua_capture_${this.triggerName(name)}_${op}`)}`);
        if (this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(this.changesTable.replace(/"/g, ""))) {
          this.db.prepare(`DELETE FROM ${this.changesTable} WHERE capture = ?`).run(name);
        }
      }).immediate();
    },
    active: async (name) => this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?`).get(`honua_capture_${this.triggerName(name)}_ins`) !== undefined,
  };

  private triggerName(name: string): string {
    return createHash("sha256").update(name).digest("hex").slice(0, 16);
  }

  async backup(dir: string, name: string): Promise<Backup> {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.sqlite`);
    rmSync(file, { force: true });
    const out = new Database(file);
    let records = 0;
    try {
      out.exec(`CREATE TABLE items (collection TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL, PRIMARY KEY (collection, id))`);
      const ins = out.prepare(`INSERT INTO items (collection, id, content) VALUES (?, ?, ?)`);
      let after: RecordKey | null = null;
      for (;;) {
        const page = await this.page(after, SCAN);
        out.transaction(() => { for (const r of page) ins.run(r.collection, r.id, JSON.stringify(r.content)); })();
        records += page.length;
        if (page.length < SCAN) break;
        after = page.at(-1)!;
      }
    } finally {
      out.close();
    }
    // Verified by reading it back: SQLite's integrity check and the record count.
    const check = new Database(file, { readonly: true });
    let verified = false;
    let verifiedBy = "";
    try {
      const ok = check.pragma("integrity_check", { simple: true });
      const n = (check.prepare(`SELECT count(*) AS n FROM items`).get() as { n: number }).n;
      verified = ok === "ok" && n === records;
      verifiedBy = `PRAGMA integrity_check = ${String(ok)}; ${n} of ${records} records read back`;
    } finally {
      check.close();
    }
    return { location: file, format: "sqlite", bytes: statSync(file).size, sha256: createHash("sha256").update(readFileSync(file)).digest("hex"), records, verified, verifiedBy };
  }

  async retire(): Promise<string[]> {
    const n = await this.count();
    await this.deprovision();
    return [`${n} records removed from ${this.describe()}`];
  }

  async close(): Promise<void> {
    if (this.own) this.db.close();
  }
}
