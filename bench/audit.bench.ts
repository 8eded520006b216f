/**
 * Audit chain benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:audit > audit.json
 *
 * Records the same decisions two ways in one run, alternating, on SQLite (a temp file) and on PostgreSQL (a fresh
 * database on HONUA_BENCH_POSTGRES_URL, else the local server; skipped when unreachable), and prints ONE JSON object:
 *   - audited: AgentStore.recordDecision (deployment looked up, per-deployment lock, insert, audit entry appended);
 *   - baseline: the same INSERT ... ON CONFLICT DO NOTHING RETURNING * alone, as it was before the chain.
 * Medians over BENCH_REPS of BENCH_N decisions each, and the time `verifyAudit` takes over the whole chain.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { verifyAudit } from "../src/store/audit.js";
import { postgresSql, sqliteSql } from "../src/store/sql.js";
import { AgentStore, type Sql } from "../src/store/store.js";

const N = Number(process.env.BENCH_N ?? 300);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(sql: Sql) {
  const store = new AgentStore(sql);
  await store.setup();
  await store.createRun({ run: "bench", workflow: "add-caching-layer", deployment: "prod", status: "running", requestedBy: "carol", startedAt: "2026-11-26T00:00:00Z", request: "bench" });
  const decision = (interrupt: string) => ({ run: "bench", interrupt, step: "ProvisionCacheInfrastructure", stage: null, kind: "provision" as const, decision: "approve" as const, by: "alice", at: "2026-11-26T00:00:00Z", planHash: "0123456789abcdef", comment: null, groups: [] });
  const audited: number[] = [];
  const baseline: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    let t = performance.now();
    for (let i = 0; i < N; i++) {
      const d = decision(`b${rep}-${i}`);
      await sql.query(
        `INSERT INTO honua_decisions (run, interrupt, step, stage, kind, decision, by_user, at, plan_hash, comment, member_of, wall_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run, interrupt) DO NOTHING RETURNING *`,
        [d.run, d.interrupt, d.step, d.stage, d.kind, d.decision, d.by, d.at, d.planHash, d.comment, "[]", null],
      );
    }
    baseline.push((performance.now() - t) / N);
    t = performance.now();
    for (let i = 0; i < N; i++) await store.recordDecision(decision(`a${rep}-${i}`));
    audited.push((performance.now() - t) / N);
  }
  // The baseline's rows have no entries: take them out so the chain verifies, then time the verify.
  await sql.query(`DELETE FROM honua_decisions WHERE interrupt LIKE 'b%'`);
  const t = performance.now();
  const checks = await verifyAudit(sql);
  const verifyMs = performance.now() - t;
  const prod = checks.find((c) => c.deployment === "prod");
  return {
    msPerDecision: { audited: median(audited), baseline: median(baseline), ratio: median(audited) / median(baseline) },
    verify: { entries: prod?.entries ?? 0, ms: verifyMs, verifies: prod?.broken === null },
  };
}

const dir = mkdtempSync(join(tmpdir(), "honua-audit-bench-"));
const out: Record<string, unknown> = { n: N, reps: REPS, cpus: cpus().length, loadavg: loadavg() };
try {
  const sqlite = sqliteSql(join(dir, "agent.sqlite"));
  out.sqlite = await measure(sqlite);
  await sqlite.close();
  const admin = process.env.HONUA_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const db = `honua_audit_bench_${randomBytes(4).toString("hex")}`;
  const client = new pg.Client({ connectionString: admin });
  try {
    await client.connect();
    await client.query(`CREATE DATABASE ${db}`);
    const u = new URL(admin);
    u.pathname = `/${db}`;
    const sql = postgresSql(new pg.Pool({ connectionString: u.toString(), max: 4 }));
    try {
      out.postgres = await measure(sql);
    } finally {
      await sql.close();
      await client.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    }
  } catch (e) {
    out.postgres = { skipped: e instanceof Error ? e.message : String(e) };
  } finally {
    await client.end().catch(() => undefined);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(out)}\n`);
