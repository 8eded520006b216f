/**
 * Schema-change benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:schema > schema.json
 *
 * On a PostGIS table of BENCH_ROWS points (1,000,000) in a database of its own on the local PostgreSQL, a steady writer
 * (one session, BENCH_RATE inserts per second, each with a 5 s statement_timeout: a write stuck longer counts as failed;
 * latency is measured from each write's scheduled time, so writes queued behind a blocked one count)
 * runs through three phases of one run, and ONE JSON object is printed (progress on stderr):
 *   - baseline: the writer alone, BENCH_BASE_S seconds;
 *   - agent: the agent's apply of `CREATE INDEX features_geom_idx ON features USING gist (geom)` (rewritten to
 *     CONCURRENTLY, own session, lock_timeout 1 s, retries) while the writer runs;
 *   - plain: a plain `CREATE INDEX ... USING gist (geom)` (SHARE lock) while the writer runs, for contrast.
 * Target: agent failed writes 0 and write p99 <= 3x the baseline's.
 *
 * Knobs: BENCH_ROWS (1000000), BENCH_RATE (200), BENCH_BASE_S (10), HONUA_TEST_POSTGRES_URL.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { analyze } from "../src/tools/database/analyze.js";
import { PgDatabase } from "../src/tools/database/real.js";
import { DatabaseSection } from "../src/tools/database/section.js";
import { OpLog } from "../src/store/oplog.js";
import { seedPostgis } from "../test/fixtures/postgis.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const BASE_S = Number(process.env.BENCH_BASE_S ?? 10);
const adminUrl = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const name = `honua_w19_bench_${randomBytes(4).toString("hex")}`;
const log = (m: string) => process.stderr.write(`${m}\n`);

async function withAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

interface Phase { writes: number; failed: number; p50Ms: number; p99Ms: number; maxMs: number; seconds: number; errors: string[] }
const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! : 0);
const r2 = (x: number) => Number(x.toFixed(2));

/** A paced writer: one insert every 1/RATE s (a late one goes at once), each timed. */
function writer(url: string) {
  let running = true;
  const lat: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  const c = new pg.Client({ connectionString: url, application_name: "bench-writer" });
  const t0 = performance.now();
  const done = (async () => {
    await c.connect();
    await c.query("SET statement_timeout = 5000");
    let next = performance.now();
    while (running) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Latency from the write's scheduled time, not from when it could be sent: a write held up behind a lock
      // delays every later one, and each of those counts (no coordinated omission).
      const s = Math.min(next, performance.now());
      next += 1000 / RATE;
      try {
        await c.query(`INSERT INTO features (layer_id, geom, properties) VALUES (3, ST_SetSRID(ST_MakePoint(10, 20), 4326), '{"bench": 1}')`);
      } catch (e) {
        failed++;
        if (errors.length < 3) errors.push(e instanceof Error ? e.message : String(e));
      }
      lat.push(performance.now() - s);
    }
    await c.end();
  })();
  return {
    async stop(): Promise<Phase> {
      running = false;
      await done;
      return { writes: lat.length, failed, p50Ms: r2(pct(lat, 0.5)), p99Ms: r2(pct(lat, 0.99)), maxMs: r2(Math.max(0, ...lat)), seconds: r2((performance.now() - t0) / 1000), errors };
    },
  };
}

const home = mkdtempSync(join(tmpdir(), "honua-schema-bench-"));
await withAdmin(`CREATE DATABASE ${name}`);
const u = new URL(adminUrl);
u.pathname = `/${name}`;
const url = u.toString();
try {
  log(`seeding ${ROWS} points`);
  const seedStart = performance.now();
  await seedPostgis(url, ROWS);
  const seedSeconds = r2((performance.now() - seedStart) / 1000);
  const oplog = new OpLog(join(home, "ops.sqlite"));
  const db = new PgDatabase(DatabaseSection.parse({ url: "env:BENCH_DB" }), oplog, "bench", { BENCH_DB: url }, home);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();

  log(`baseline: writer alone for ${BASE_S} s`);
  const w0 = writer(url);
  await new Promise((r) => setTimeout(r, BASE_S * 1000));
  const baseline = await w0.stop();

  log("agent: CREATE INDEX rewritten to CONCURRENTLY, with the writer");
  const [a] = await analyze("CREATE INDEX features_geom_idx ON features USING gist (geom)", await db.introspect());
  const w1 = writer(url);
  await new Promise((r) => setTimeout(r, 500));
  const b0 = performance.now();
  const outcome = await db.apply(a!.ops[0]!, "bench:ApplySchemaChanges:0:op:0.0", { ...db.options });
  const agentBuild = r2((performance.now() - b0) / 1000);
  await new Promise((r) => setTimeout(r, 500));
  const agent = await w1.stop();
  await admin.query("DROP INDEX features_geom_idx");

  log("plain CREATE INDEX (SHARE lock), with the writer");
  const w2 = writer(url);
  await new Promise((r) => setTimeout(r, 500));
  const p0 = performance.now();
  await admin.query("CREATE INDEX features_geom_plain_idx ON features USING gist (geom)");
  const plainBuild = r2((performance.now() - p0) / 1000);
  await new Promise((r) => setTimeout(r, 500));
  const plain = await w2.stop();
  await admin.end();
  oplog.close();

  const ratio = baseline.p99Ms > 0 ? r2(agent.p99Ms / baseline.p99Ms) : null;
  console.log(JSON.stringify({
    bench: "schema",
    machine: { cpus: cpus().length, loadavg: loadavg().map(r2) },
    rows: ROWS, seedSeconds, writeRatePerSecond: RATE,
    baseline,
    agent: { ...agent, buildSeconds: agentBuild, outcome: outcome.outcome, attempts: outcome.attempts, p99VsBaseline: ratio },
    plain: { ...plain, buildSeconds: plainBuild, p99VsBaseline: baseline.p99Ms > 0 ? r2(plain.p99Ms / baseline.p99Ms) : null },
    target: { agentFailedWrites: 0, agentP99AtMost: "3x baseline", met: agent.failed === 0 && ratio !== null && ratio <= 3 },
  }, null, 2));
} finally {
  await withAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  rmSync(home, { recursive: true, force: true });
}
