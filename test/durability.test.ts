import { hostname } from "node:os";
import { join } from "node:path";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { afterEach, describe, expect, it, vi, type MockInstance } from "vitest";
import type { RunEvent } from "../src/graph/events.js";
import { sqliteSql } from "../src/store/sql.js";
import { OpLog } from "../src/store/oplog.js";
import { Engine } from "../src/engine.js";
import { CACHING_PLAN, EPOCH, engineSuite, postgresTestDatabase, testEnv } from "./helpers.js";

/** SQLite's `PRAGMA synchronous` values. */
const FULL = 2;
const NORMAL = 1;

describe("durable commits of decisions, controls and journal entries (SQLite)", () => {
  const suite = engineSuite();

  it("the agent's store connection commits with synchronous=FULL in WAL mode", async () => {
    const e = await suite.open();
    expect(await e.store.sql.query("PRAGMA journal_mode")).toEqual([{ journal_mode: "wal" }]);
    expect(await e.store.sql.query("PRAGMA synchronous")).toEqual([{ synchronous: FULL }]);
    // The same connection still commits a decision's tables after a run reached its first gate.
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(await e.store.sql.query("PRAGMA synchronous")).toEqual([{ synchronous: FULL }]);
    expect(await e.store.listDecisions(s.run)).toHaveLength(1);
  });

  it("claims go to the same file without an fsync of their own; a decision and its gate's ticket close in one commit", async () => {
    const e = await suite.open();
    expect(e.store.lightSql).not.toBe(e.store.sql);
    expect(await e.store.lightSql.query("PRAGMA synchronous")).toEqual([{ synchronous: NORMAL }]);
    const file = async (sql: typeof e.store.sql) => (await sql.query<{ name: string; file: string }>("PRAGMA database_list")).find((d) => d.name === "main")?.file;
    expect(await file(e.store.lightSql)).toBe(await file(e.store.sql));
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    // Which connection each write of the decision went to, and whether it ran inside the decision's transaction.
    const writes: { on: "durable" | "light"; inCommit: boolean; sql: string }[] = [];
    let depth = 0;
    const durableQuery = e.store.sql.query.bind(e.store.sql);
    const durableExclusive = e.store.sql.exclusive.bind(e.store.sql);
    const lightQuery = e.store.lightSql.query.bind(e.store.lightSql);
    const spies = [
      vi.spyOn(e.store.sql, "query").mockImplementation((sql, params) => {
        if (/^\s*(INSERT|UPDATE|DELETE)/i.test(sql)) writes.push({ on: "durable", inCommit: depth > 0, sql });
        return durableQuery(sql, params);
      }),
      vi.spyOn(e.store.sql, "exclusive").mockImplementation(async (name, fn) => durableExclusive(name, async () => {
        depth++;
        try {
          return await fn();
        } finally {
          depth--;
        }
      })),
      vi.spyOn(e.store.lightSql, "query").mockImplementation((sql, params) => {
        if (/^\s*(INSERT|UPDATE|DELETE)/i.test(sql)) writes.push({ on: "light", inCommit: false, sql });
        return lightQuery(sql, params);
      }),
    ];
    try {
      await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    const first = (re: RegExp) => writes.find((w) => re.test(w.sql));
    expect(first(/UPDATE honua_runs SET owner/)).toMatchObject({ on: "light" });
    expect(first(/INSERT INTO honua_decisions/)).toMatchObject({ on: "durable", inCommit: true });
    expect(first(/UPDATE honua_gates SET closed_at/)).toMatchObject({ on: "durable", inCommit: true });
    expect((await e.store.getTicket(s.run, s.pending!.interrupt))?.closedAt).not.toBeNull();
  });

  it("the journal of real side effects (OpLog) commits with synchronous=FULL", () => {
    const log = new OpLog(join(suite.home, "ops.sqlite"));
    try {
      expect(log.synchronous()).toBe(FULL);
      log.put("prod", "provision", "k1", { ref: "cache-1" });
      expect(log.synchronous()).toBe(FULL);
    } finally {
      log.close();
    }
    const measured = new OpLog(join(suite.home, "ops-normal.sqlite"), { synchronous: "NORMAL" });
    try {
      expect(measured.synchronous()).toBe(NORMAL);
    } finally {
      measured.close();
    }
  });

  it("sqliteSql is FULL unless NORMAL is asked for (the benchmark's baseline)", async () => {
    const full = sqliteSql(join(suite.home, "a.sqlite"));
    const normal = sqliteSql(join(suite.home, "b.sqlite"), { synchronous: "NORMAL" });
    try {
      expect(await full.query("PRAGMA synchronous")).toEqual([{ synchronous: FULL }]);
      expect(await normal.query("PRAGMA synchronous")).toEqual([{ synchronous: NORMAL }]);
    } finally {
      await full.close();
      await normal.close();
    }
  });
});

describe("prepared statements on the checkpoint path", () => {
  const suite = engineSuite();

  it("the checkpoints connection hands back the statement it prepared before for the same SQL", async () => {
    const e = await suite.open();
    const db = (e.persistence.checkpointer as SqliteSaver).db;
    const insert = "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)";
    expect(db.prepare(insert)).toBe(db.prepare(insert));
    expect(db.prepare("SELECT 1 AS one")).not.toBe(db.prepare("SELECT 2 AS two"));
    // Reused statements still checkpoint a run correctly.
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(next.pending?.step).toBe("EnableCachingGradually");
    expect((await e.transcript(s.run)).steps.map((x) => x.name).slice(0, 6)).toEqual([
      "AnalyzeCurrentPerformance", "DesignCachingStrategy", "EstimateCostImpact", "ProvisionCacheInfrastructure", "ConfigureCaching", "WarmCache",
    ]);
  });
});

describe("checkpoint reads on the way from a decision to the next step", () => {
  const suite = engineSuite();
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("one decision reads the run's checkpoint once before its next step starts, and once more where it stops", async () => {
    let reads: MockInstance<SqliteSaver["getTuple"]> | undefined;
    let readsBeforeNextStep: number | null = null;
    const started: string[] = [];
    const onEvent = (ev: RunEvent) => {
      if (!reads || ev.type !== "step-start") return;
      started.push(ev.step);
      readsBeforeNextStep ??= reads.mock.calls.length;
    };
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, onEvent }));
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");

    // The saver's own reads: what reaches the checkpoints table.
    reads = vi.spyOn(SqliteSaver.prototype, "getTuple");
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });

    expect(next.pending?.step).toBe("EnableCachingGradually");
    expect(started[0]).toBe("ProvisionCacheInfrastructure");
    // Was three: the check of the gate, the resume's own read of the same checkpoint, and the summary at the next gate.
    expect(readsBeforeNextStep).toBe(1);
    expect(reads).toHaveBeenCalledTimes(2);
    expect(e.sandbox().count("prod", "provision-cache")).toBe(1);
    expect((await e.store.claimOf(s.run))?.owner).toBeNull();
  });

  it("a refused decision reads once and leaves the run unclaimed and waiting at the same gate", async () => {
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    const reads = vi.spyOn(SqliteSaver.prototype, "getTuple");
    await expect(e.decide(s.run, "mallory", "approve", { planHash: s.pending!.planHash })).rejects.toThrow(/mallory may not decide/);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(await e.store.claimOf(s.run)).toEqual({ owner: null, claimedAt: expect.any(String) });
    reads.mockRestore();
    // The read kept for a resume that never came is not handed to anyone later: the next decision reads afresh and applies.
    const after = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(after.pending?.step).toBe("EnableCachingGradually");
    expect(e.sandbox().count("prod", "provision-cache")).toBe(1);
  });

  it("a click that wins its gate while another click holds the run's claim waits for that claim, then applies once", async () => {
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    // Another click is checking the same gate: it holds the run's claim (another engine in this live process).
    const other = `${hostname()}:${process.pid}:0ther0`;
    await e.store.claim(s.run, other, EPOCH, () => false);
    const claim = e.store.claim.bind(e.store);
    let conflicts = 0;
    vi.spyOn(e.store, "claim").mockImplementation(async (...args) => {
      try {
        return await claim(...args);
      } catch (err) {
        // The first refusal is the early claim; at the second (the winner's drive) the other click has lost and lets go.
        if (++conflicts === 2) await e.store.release(s.run, other);
        throw err;
      }
    });
    const next = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(conflicts).toBe(2);
    expect(next.pending?.step).toBe("EnableCachingGradually");
    expect(e.sandbox().count("prod", "provision-cache")).toBe(1);
    expect(await e.store.listDecisions(s.run)).toHaveLength(1);
    expect((await e.store.claimOf(s.run))?.owner).toBeNull();
  });

  it("a decision on a run that waits for nothing says so with its status, and claims nothing", async () => {
    const e = await suite.open();
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    await e.decide(s.run, "alice", "reject");
    const ended = await e.summary(s.run);
    await expect(e.decide(s.run, "alice", "approve")).rejects.toThrow(new RegExp(`no decision waiting \\(status ${ended.status}\\)`));
    expect((await e.store.claimOf(s.run))?.owner).toBeNull();
  });
});

describe("checkpoint reads per decision on PostgreSQL (HONUA_AGENT_DATABASE_URL)", () => {
  const pgdb = postgresTestDatabase("honua_agent_reads");
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("one read before the next step starts, one where the run stops; a concurrent second engine still decides nothing twice", async () => {
    const env = { ...testEnv(pgdb.home), HONUA_AGENT_DATABASE_URL: pgdb.url };
    let reads: MockInstance<PostgresSaver["getTuple"]> | undefined;
    let readsBeforeNextStep: number | null = null;
    const onEvent = (ev: RunEvent) => {
      if (reads && ev.type === "step-start") readsBeforeNextStep ??= reads.mock.calls.length;
    };
    const a = await Engine.open({ env, onEvent });
    const b = await Engine.open({ env });
    try {
      const s = await a.start(CACHING_PLAN, "carol", "add redis caching to prod");
      reads = vi.spyOn(PostgresSaver.prototype, "getTuple");
      const next = await a.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
      expect(next.pending?.step).toBe("EnableCachingGradually");
      expect(readsBeforeNextStep).toBe(1);
      expect(reads).toHaveBeenCalledTimes(2);
      reads.mockRestore();
      reads = undefined;

      const both = await Promise.allSettled([
        a.decide(s.run, "alice", "approve", { planHash: next.pending!.planHash }),
        b.decide(s.run, "bob", "approve", { planHash: next.pending!.planHash }),
      ]);
      expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(await a.store.listDecisions(s.run)).toHaveLength(2);
      expect((await b.summary(s.run)).pending?.step).toBe("EnableCachingGradually");
      expect((await a.store.claimOf(s.run))?.owner).toBeNull();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("what waits for the WAL flush on PostgreSQL", () => {
  const pgdb = postgresTestDatabase("honua_agent_flush");

  it("decisions, controls and the journal wait for the WAL flush; checkpoints, records and claims do not", async () => {
    const env = { ...testEnv(pgdb.home), HONUA_AGENT_DATABASE_URL: pgdb.url };
    const e = await Engine.open({ env });
    let steps: number;
    let run: string;
    try {
      const setting = async (sql: typeof e.store.sql) => (await sql.query<{ synchronous_commit: string }>("SHOW synchronous_commit"))[0]?.synchronous_commit;
      expect(await setting(e.store.sql)).toBe("on");
      expect(await setting(e.store.lightSql)).toBe("off");
      expect(e.store.recordsSql).toBe(e.store.lightSql);
      const saver = e.persistence.checkpointer as unknown as { pool: { query(sql: string): Promise<{ rows: { synchronous_commit: string }[] }> } };
      expect((await saver.pool.query("SHOW synchronous_commit")).rows[0]?.synchronous_commit).toBe("off");
      const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
      run = s.run;
      steps = (await e.transcript(s.run)).steps.length;
      expect(steps).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
    // One database: the records' table is the main store's, never "moved" into itself on open.
    const again = await Engine.open({ env });
    try {
      expect((await again.transcript(run)).steps).toHaveLength(steps);
    } finally {
      await again.close();
    }
  });
});

describe("the PostgreSQL saver's writes, one statement each", () => {
  const pgdb = postgresTestDatabase("honua_agent_saver");

  it("leave the rows the official saver leaves, and the same tuples read back", async () => {
    const { openPersistence } = await import("../src/graph/checkpointer.js");
    const { INTERRUPT, ERROR, emptyCheckpoint } = await import("@langchain/langgraph-checkpoint");
    const { default: pg } = await import("pg");
    const env = { ...testEnv(pgdb.home), HONUA_AGENT_DATABASE_URL: pgdb.url };
    const ours = await openPersistence(env, pgdb.home);
    const pool = new pg.Pool({ connectionString: pgdb.url, max: 2 });
    const official = new PostgresSaver(pool);
    try {
      const statements: string[] = [];
      const light = (ours.checkpointer as unknown as { pool: InstanceType<typeof pg.Pool> }).pool;
      const query = light.query.bind(light) as (...a: unknown[]) => Promise<unknown>;
      vi.spyOn(light, "query").mockImplementation(((...a: unknown[]) => {
        statements.push(String(a[0]));
        return query(...a);
      }) as typeof light.query);
      // The same history through each saver, on its own thread: two checkpoints (a channel without a value is an
      // "empty" blob), plain writes written twice (the first stays), and special writes twice in one call and again
      // (the last stays).
      const history = async (saver: typeof official | typeof ours.checkpointer, thread: string) => {
        const base = { configurable: { thread_id: thread, checkpoint_ns: "" } };
        const one = { ...emptyCheckpoint(), ts: EPOCH, id: `1ef-${thread}-1`, channel_values: { a: 1, b: "x" }, channel_versions: { a: 1, b: 1, c: 1 } };
        const c1 = await saver.put(base, one, { source: "input", step: -1, parents: {} }, { a: 1, b: 1, c: 1 });
        await saver.putWrites(c1, [["a", 2], ["b", "y"]], "task-1");
        await saver.putWrites(c1, [["a", 3], ["b", "z"]], "task-1");
        await saver.putWrites(c1, [[INTERRUPT, [{ value: "first" }]], [INTERRUPT, [{ value: "second" }]]], "task-2");
        await saver.putWrites(c1, [[ERROR, { message: "one" }]], "task-3");
        await saver.putWrites(c1, [[ERROR, { message: "two" }]], "task-3");
        await saver.putWrites(c1, [], "task-4");
        const two = { ...one, id: `1ef-${thread}-2`, channel_values: { a: 2, b: "y" }, channel_versions: { a: 2, b: 2, c: 1 } };
        const c2 = await saver.put(c1, two, { source: "loop", step: 0, parents: {} }, { a: 2, b: 2 });
        // The same checkpoint again replaces its metadata, as an upsert.
        await saver.put(c1, two, { source: "update", step: 0, parents: {} }, { a: 2, b: 2 });
        return c2;
      };
      await history(official, "official");
      await history(ours.checkpointer, "ours");
      const rows = async (table: string, thread: string, order: string) =>
        (await pool.query(`SELECT * FROM ${table} WHERE thread_id = $1 ORDER BY ${order}`, [thread])).rows.map((r: Record<string, unknown>) =>
          JSON.parse(JSON.stringify({ ...r, thread_id: "t" }).replaceAll(thread, "T")));
      for (const [table, order] of [["checkpoints", "checkpoint_id"], ["checkpoint_blobs", "channel, version"], ["checkpoint_writes", "checkpoint_id, task_id, idx"]] as const) {
        const got = await rows(table, "ours", order);
        expect(got.length, table).toBeGreaterThan(0);
        expect(got, table).toEqual(await rows(table, "official", order));
      }
      // Each put and each putWrites with something to write was one statement.
      expect(statements.filter((s) => /checkpoint/.test(s)).length).toBe(8);
      expect(statements.some((s) => /^\s*(BEGIN|COMMIT)/.test(s))).toBe(false);
      const tuple = async (thread: string) => JSON.parse(JSON.stringify(await official.getTuple({ configurable: { thread_id: thread, checkpoint_ns: "" } })).replaceAll(thread, "T"));
      expect(await tuple("ours")).toEqual(await tuple("official"));
    } finally {
      await ours.close();
      await pool.end();
    }
  });
});
