import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Engine } from "../src/engine.js";
import { GENESIS, verifyAudit, type ChainCheck } from "../src/store/audit.js";
import { postgresSql } from "../src/store/sql.js";
import { AgentStore, type Sql } from "../src/store/store.js";
import { CACHING_PLAN, approveAll, cli, openEngine, postgresTestDatabase, tempHome } from "./helpers.js";

type Entry = { deployment: string; seq: number; kind: string; ref: string; at: string; body: string; prev_hash: string; hash: string };

const chainOf = (checks: ChainCheck[], deployment: string): ChainCheck => {
  const c = checks.find((x) => x.deployment === deployment);
  if (!c) throw new Error(`no chain for ${deployment} in ${JSON.stringify(checks)}`);
  return c;
};

async function entries(sql: Sql, deployment: string): Promise<Entry[]> {
  const rows = await sql.query(`SELECT * FROM honua_audit WHERE deployment = ? ORDER BY seq`, [deployment]);
  return rows.map((r) => ({
    deployment: String(r.deployment), seq: Number(r.seq), kind: String(r.kind), ref: String(r.ref), at: String(r.at),
    body: String(r.body), prev_hash: String(r.prev_hash), hash: String(r.hash),
  }));
}

/** Puts one deployment's chain back exactly as saved. */
async function restore(sql: Sql, saved: Entry[]): Promise<void> {
  await sql.query(`DELETE FROM honua_audit WHERE deployment = ?`, [saved[0]!.deployment]);
  for (const e of saved) {
    await sql.query(`INSERT INTO honua_audit (deployment, seq, kind, ref, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [e.deployment, e.seq, e.kind, e.ref, e.at, e.body, e.prev_hash, e.hash]);
  }
}

/** A finished caching run on prod approved by alice, and a run on staging cancelled at its first gate by its requester. */
async function drive(e: Engine): Promise<void> {
  const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
  expect((await approveAll(e, s, "alice")).status).toBe("done");
  const t = await e.start({ ...CACHING_PLAN, deployment: "staging" }, "carol", "add redis caching to staging");
  expect(t.pending).not.toBeNull();
  await e.cancel(t.run, "carol", "wrong deployment");
}

/** The tamper cases, against whichever store `sql` is; each is put back before the next. */
function tamperCases(get: () => { engine: Engine; sql: Sql }) {
  let saved: Entry[] = [];
  const verify = async () => chainOf(await verifyAudit(get().sql), "prod");

  it("records every decision, control and journaled side effect in a chain that verifies", async () => {
    const { sql, engine } = get();
    const checks = await verifyAudit(sql);
    for (const c of checks) expect(c.broken, `${c.deployment}: ${JSON.stringify(c.broken)}`).toBeNull();
    saved = await entries(sql, "prod");
    expect(saved.map((e) => e.seq)).toEqual(saved.map((_, i) => i + 1));
    expect(saved[0]!.prev_hash).toBe(GENESIS);
    for (let i = 1; i < saved.length; i++) expect(saved[i]!.prev_hash).toBe(saved[i - 1]!.hash);
    const kinds = new Set(saved.map((e) => e.kind));
    for (const k of ["decision", "journal-intend", "journal-done"]) expect(kinds).toContain(k);
    const runs = await engine.runs();
    const prodRun = runs.find((r) => r.deployment === "prod")!.run;
    expect(saved.filter((e) => e.kind === "decision")).toHaveLength((await engine.store.listDecisions(prodRun)).length);
    expect(saved.filter((e) => e.kind === "journal-intend")).toHaveLength((await engine.store.journal(prodRun)).length);
    const staging = await entries(sql, "staging");
    expect(staging.map((e) => e.kind)).toEqual(expect.arrayContaining(["control", "decision"]));
    expect(chainOf(checks, "prod").entries).toBe(saved.length);
    expect(chainOf(checks, "prod").head).toBe(saved.at(-1)!.hash);
    expect(chainOf(checks, "prod").predating).toBe(0);
  });

  it("detects an edited entry at its seq", async () => {
    const { sql } = get();
    const target = saved.find((e) => e.kind === "decision")!;
    await sql.query(`UPDATE honua_audit SET body = ? WHERE deployment = ? AND seq = ?`, [target.body.replace('"by":"alice"', '"by":"mallory"'), "prod", target.seq]);
    expect(target.body).toContain('"by":"alice"');
    const c = await verify();
    expect(c.broken).toMatchObject({ seq: target.seq, kind: "decision", ref: target.ref });
    expect(c.broken!.why).toMatch(/hash does not match its body/);
    await restore(sql, saved);
    expect((await verify()).broken).toBeNull();
  });

  it("detects an edited entry whose hash was recomputed too, at the entry itself", async () => {
    const { sql } = get();
    const target = saved.find((e) => e.kind === "decision")!;
    const body = target.body.replace('"by":"alice"', '"by":"mallory"');
    const { createHash } = await import("node:crypto");
    await sql.query(`UPDATE honua_audit SET body = ?, hash = ? WHERE deployment = ? AND seq = ?`, [body, createHash("sha256").update(target.prev_hash + body).digest("hex"), "prod", target.seq]);
    const c = await verify();
    expect(c.broken).toMatchObject({ seq: target.seq });
    expect(c.broken!.why).toMatch(/decision record differs from what was audited: by was "mallory", now "alice"/);
    await restore(sql, saved);
  });

  it("detects a deleted entry at its seq", async () => {
    const { sql } = get();
    const k = Math.floor(saved.length / 2);
    await sql.query(`DELETE FROM honua_audit WHERE deployment = ? AND seq = ?`, ["prod", k]);
    const c = await verify();
    expect(c.broken!.seq).toBe(k);
    expect(c.broken!.why).toMatch(new RegExp(`entry ${k} is missing`));
    await restore(sql, saved);
  });

  it("detects the last entry deleted: its record has no entry", async () => {
    const { sql } = get();
    const last = saved.at(-1)!;
    await sql.query(`DELETE FROM honua_audit WHERE deployment = ? AND seq = ?`, ["prod", last.seq]);
    const c = await verify();
    // Its record is now described by an earlier entry (or none): either way the record no longer matches the chain.
    expect(c.broken).not.toBeNull();
    expect(c.broken!.ref).toBe(last.ref);
    expect(c.broken!.why).toMatch(/has no audit entry|differs from what was audited/);
    await restore(sql, saved);
  });

  it("detects two entries swapped, at the first of them", async () => {
    const { sql } = get();
    const [i, j] = [2, 5];
    await sql.query(`UPDATE honua_audit SET seq = -1 WHERE deployment = ? AND seq = ?`, ["prod", i]);
    await sql.query(`UPDATE honua_audit SET seq = ? WHERE deployment = ? AND seq = ?`, [i, "prod", j]);
    await sql.query(`UPDATE honua_audit SET seq = ? WHERE deployment = ? AND seq = -1`, [j, "prod"]);
    const c = await verify();
    expect(c.broken!.seq).toBe(i);
    expect(c.broken!.why).toMatch(/seq column is 2 but the body it was hashed with says 5/);
    await restore(sql, saved);
  });

  it("detects an edited honua_decisions row at the entry that describes it", async () => {
    const { sql } = get();
    const target = saved.find((e) => e.kind === "decision")!;
    const [run, interrupt] = [target.ref.slice(0, target.ref.indexOf("/")), target.ref.slice(target.ref.indexOf("/") + 1)];
    await sql.query(`UPDATE honua_decisions SET by_user = 'mallory' WHERE run = ? AND interrupt = ?`, [run, interrupt]);
    const c = await verify();
    expect(c.broken).toMatchObject({ seq: target.seq, kind: "decision", ref: target.ref });
    expect(c.broken!.why).toMatch(/by was "alice", now "mallory"/);
    await sql.query(`UPDATE honua_decisions SET by_user = 'alice' WHERE run = ? AND interrupt = ?`, [run, interrupt]);
    expect((await verify()).broken).toBeNull();
  });

  it("detects a deleted journal row at the last entry that describes it", async () => {
    const { sql } = get();
    const done = saved.filter((e) => e.kind === "journal-done").at(-1)!;
    const [run, key] = [done.ref.slice(0, done.ref.indexOf("/")), done.ref.slice(done.ref.indexOf("/") + 1)];
    const row = (await sql.query(`SELECT * FROM honua_journal WHERE run = ? AND key = ?`, [run, key]))[0]!;
    await sql.query(`DELETE FROM honua_journal WHERE run = ? AND key = ?`, [run, key]);
    const c = await verify();
    expect(c.broken).toMatchObject({ seq: done.seq, kind: "journal-done" });
    expect(c.broken!.why).toMatch(/journal record it describes is gone/);
    await sql.query(`INSERT INTO honua_journal (run, key, step, stage, seq, effects, done, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [row.run, row.key, row.step, row.stage, row.seq, row.effects, row.done, row.at]);
    expect((await verify()).broken).toBeNull();
  });
}

describe("audit chain on SQLite", () => {
  const t = tempHome();
  let engine: Engine;
  beforeAll(async () => {
    engine = await openEngine(t.home);
    await drive(engine);
  }, 120_000);
  afterAll(async () => {
    await engine.close();
    t.cleanup();
  });
  tamperCases(() => ({ engine, sql: engine.store.sql }));

  it("an append that fails takes its record with it: same transaction", async () => {
    const sql = engine.store.sql;
    const run = (await engine.runs()).find((r) => r.deployment === "prod")!.run;
    await sql.query(`CREATE TRIGGER honua_test_refuse BEFORE INSERT ON honua_audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END`);
    try {
      await expect(engine.store.addControl({ run, id: "lost", kind: "pause", by: "bob", reason: "", at: "2026-11-26T01:30:00Z" })).rejects.toThrow(/audit refused/);
      await expect(engine.store.recordDecision({ run, interrupt: "lost", step: "WarmCache", stage: null, kind: "provision", decision: "approve", by: "bob", at: "2026-11-26T01:30:00Z", planHash: "h", comment: null, groups: [] })).rejects.toThrow(/audit refused/);
    } finally {
      await sql.query(`DROP TRIGGER honua_test_refuse`);
    }
    expect(await sql.query(`SELECT id FROM honua_controls WHERE run = ? AND id = 'lost'`, [run])).toEqual([]);
    expect(await engine.store.getDecision(run, "lost")).toBeUndefined();
    expect(chainOf(await verifyAudit(sql), "prod").broken).toBeNull();
  });

  it("appends from concurrent callers in one process without forking or interleaving transactions", async () => {
    const run = (await engine.runs()).find((r) => r.deployment === "prod")!.run;
    const before = (await entries(engine.store.sql, "prod")).length;
    const adds = Array.from({ length: 20 }, (_, i) => engine.store.addControl({ run, id: `c${i}`, kind: "pause", by: "bob", reason: `r${i}`, at: `2026-11-26T01:00:${String(i).padStart(2, "0")}Z` }));
    expect(await Promise.all(adds)).toEqual(Array(20).fill(true));
    const after = await entries(engine.store.sql, "prod");
    expect(after.length).toBe(before + 20);
    expect(chainOf(await verifyAudit(engine.store.sql), "prod").broken).toBeNull();
  });
});

describe("audit chain on PostgreSQL", () => {
  const pgdb = postgresTestDatabase("honua_agent_audit");
  let engine: Engine;
  beforeAll(async () => {
    engine = await openEngine(pgdb.home, { HONUA_AGENT_DATABASE_URL: pgdb.url });
    await drive(engine);
  }, 120_000);
  afterAll(async () => {
    await engine?.close();
  });
  tamperCases(() => ({ engine, sql: engine.store.sql }));

  it("an append that fails takes its record with it: same transaction", async () => {
    const sql = engine.store.sql;
    const run = (await engine.runs()).find((r) => r.deployment === "prod")!.run;
    await sql.query(`CREATE FUNCTION honua_test_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql`);
    await sql.query(`CREATE TRIGGER honua_test_refuse BEFORE INSERT ON honua_audit FOR EACH ROW EXECUTE FUNCTION honua_test_refuse()`);
    try {
      await expect(engine.store.journalIntend({ run, key: `${run}:lost`, step: "WarmCache", stage: null, effects: [], at: "2026-11-26T01:30:00Z" })).rejects.toThrow(/audit refused/);
      await expect(engine.store.recordDecision({ run, interrupt: "lost", step: "WarmCache", stage: null, kind: "provision", decision: "approve", by: "bob", at: "2026-11-26T01:30:00Z", planHash: "h", comment: null, groups: [] })).rejects.toThrow(/audit refused/);
    } finally {
      await sql.query(`DROP TRIGGER honua_test_refuse ON honua_audit`);
      await sql.query(`DROP FUNCTION honua_test_refuse()`);
    }
    expect(await engine.store.journalEntry(run, `${run}:lost`)).toBeUndefined();
    expect(await engine.store.getDecision(run, "lost")).toBeUndefined();
    expect(chainOf(await verifyAudit(sql), "prod").broken).toBeNull();
  });

  it("two connections appending to one deployment at once serialise: one chain, 1..n, no fork", async () => {
    const stores = [0, 1].map(() => new AgentStore(postgresSql(new pg.Pool({ connectionString: pgdb.url, max: 4 }))));
    try {
      const run = (await engine.runs()).find((r) => r.deployment === "prod")!.run;
      const before = (await entries(engine.store.sql, "prod")).length;
      await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          stores[i % 2]!.recordDecision({ run, interrupt: `race-${i}`, step: "WarmCache", stage: null, kind: "provision", decision: "approve", by: "bob", at: "2026-11-26T02:00:00Z", planHash: "h", comment: null, groups: [] }),
        ),
      );
      const after = await entries(engine.store.sql, "prod");
      expect(after.length).toBe(before + 24);
      expect(after.map((e) => e.seq)).toEqual(after.map((_, i) => i + 1));
      expect(chainOf(await verifyAudit(engine.store.sql), "prod").broken).toBeNull();
    } finally {
      for (const s of stores) await s.close();
    }
  });
});

describe("audit chain added to a store that already holds records", () => {
  it("names the records that predate the chain (no entries invented), then chains what comes after", async () => {
    const t = tempHome();
    try {
      let e = await openEngine(t.home);
      await drive(e);
      await e.close();
      // The store as an earlier version left it: no chain, operator actions without ids.
      const db = new Database(join(t.home, "agent.sqlite"));
      db.exec(`DROP TABLE honua_audit; ALTER TABLE honua_operator_actions DROP COLUMN id`);
      db.prepare(`INSERT INTO honua_operator_actions (at, actor, action, deployment, run, detail) VALUES (?, ?, ?, ?, ?, ?)`).run("2026-11-26T03:00:00Z", "ops", "release-lock", "prod", null, "old");
      const old = (db.prepare(`SELECT (SELECT COUNT(*) FROM honua_decisions) + (SELECT COUNT(*) FROM honua_controls) + (SELECT COUNT(*) FROM honua_journal) + 1 AS n`).get() as { n: number }).n;
      db.close();
      e = await openEngine(t.home);
      try {
        const checks = await verifyAudit(e.store.sql);
        for (const c of checks) {
          expect(c.broken).toBeNull();
          expect(c.entries).toBe(1);
        }
        expect(checks.reduce((n, c) => n + c.predating, 0)).toBe(old);
        const run = (await e.runs()).find((r) => r.deployment === "prod")!.run;
        expect(await e.store.addControl({ run, id: "after", kind: "pause", by: "bob", reason: "after the chain", at: "2026-11-26T05:00:00Z" })).toBe(true);
        await e.store.recordOperatorAction({ at: "2026-11-26T05:01:00Z", actor: "ops", action: "release-lock", deployment: "prod", run, detail: "recorded" });
        const prod = chainOf(await verifyAudit(e.store.sql), "prod");
        expect(prod.broken).toBeNull();
        expect(prod.entries).toBe(3);
        expect(prod.predating).toBe(chainOf(checks, "prod").predating);
        // A record slipped in around the agent is not mistaken for one that predates the chain.
        await e.store.sql.query(`INSERT INTO honua_operator_actions (at, actor, action, deployment, run, detail) VALUES (?, ?, ?, ?, ?, ?)`, ["2026-11-26T04:00:00Z", "x", "release-lock", "prod", null, "sneaky"]);
        expect(chainOf(await verifyAudit(e.store.sql), "prod").broken!.why).toMatch(/1 operator action\(s\) carry no id/);
      } finally {
        await e.close();
      }
    } finally {
      t.cleanup();
    }
  }, 120_000);
});

describe("honua-agent audit verify / export (the real command line)", () => {
  it("exits 0 when the chains verify, 1 naming the deployment and seq of the first broken entry, 2 for an unknown deployment", async () => {
    const t = tempHome();
    try {
      const e = await openEngine(t.home);
      await drive(e);
      const n = (await entries(e.store.sql, "prod")).length;
      await e.close();
      const ok = cli(t.home, ["audit", "verify"]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(new RegExp(`^prod: chain verifies: ${n} entries`, "m"));
      expect(ok.stdout).toMatch(/^staging: chain verifies: \d+ entries/m);
      const alias = cli(t.home, ["audit", "verify", "production"]);
      expect(alias.code).toBe(0);
      expect(alias.stdout).not.toMatch(/staging/);
      const unknown = cli(t.home, ["audit", "verify", "nowhere"]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/unknown deployment "nowhere"/);

      const out = cli(t.home, ["audit", "export", "prod"]);
      expect(out.code).toBe(0);
      const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l) as { seq: number; hash: string; prevHash: string });
      expect(lines.map((l) => l.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      const file = join(t.home, "audit.jsonl");
      expect(cli(t.home, ["audit", "export", "--out", file]).code).toBe(0);
      expect(existsSync(file)).toBe(true);
      expect(readFileSync(file, "utf8").trim().split("\n").length).toBeGreaterThan(n);
      expect(cli(t.home, ["audit", "export", "--out", file]).code).toBe(2);

      const db = new Database(join(t.home, "agent.sqlite"));
      db.prepare(`UPDATE honua_decisions SET comment = 'edited' WHERE rowid = (SELECT MIN(rowid) FROM honua_decisions WHERE run IN (SELECT run FROM honua_runs WHERE deployment = 'prod'))`).run();
      const seq = (db.prepare(`SELECT MIN(seq) AS s FROM honua_audit WHERE deployment = 'prod' AND kind = 'decision'`).get() as { s: number }).s;
      db.close();
      const bad = cli(t.home, ["audit", "verify"]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(new RegExp(`^prod: chain broken at seq ${seq} \\(decision .*comment was null, now "edited"`, "m"));
      expect(bad.stdout).toMatch(/^staging: chain verifies/m);
    } finally {
      t.cleanup();
    }
  }, 180_000);
});
