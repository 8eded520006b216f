import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { renderGate } from "../src/render.js";
import { seedPostgis, startTileServer } from "./fixtures/postgis.js";
import { postgresTestDatabase, tempHome, testEnv } from "./helpers.js";

const pgdb = postgresTestDatabase("honua_w19_wf");
const ROOT = new URL("..", import.meta.url).pathname;
/** The command line in a child process, without blocking this process (the tile server the probes read lives here). */
function cli(home: string, args: string[], extra: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; json(): unknown }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bin/honua-agent.mjs"), ...args], { cwd: home, env: { ...testEnv(home), ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr, json: () => JSON.parse(stdout.trim().split("\n").at(-1) ?? "null") as unknown }));
  });
}
const BBOX = "SELECT count(*) FROM features WHERE geom && ST_MakeEnvelope(0, 0, 1, 1, 4326)";

describe("upgrade-database-schema on a local deployment against real PostgreSQL + PostGIS", () => {
  const t = tempHome();
  let tiles: Awaited<ReturnType<typeof startTileServer>>;
  let admin: pg.Client;
  let configPath: string;
  const env = () => ({ W19_DB_URL: pgdb.url, HONUA_AGENT_CONFIG: configPath });
  const raw = (smoke: { name: string; sql: string; expectIndex?: string }[]) => ({
    deployments: {
      lab: {
        provider: "local",
        approvers: ["alice", "bob"],
        // Seconds instead of an hour: a reading every 0.6 s over 3.6 s.
        // The probes and this database share a loaded CI host: latency must move by a second to count (these tests are about DDL).
        monitoring: { windowMinutes: 0.06, stageMinutes: 0.04, sampleEveryMinutes: 0.01, minSamples: 2, latencyFactor: 4, latencyMinDeltaMs: 1000 },
        metrics: { source: "probe", urls: [`${tiles.url}/tiles/features/0/0/0.mvt`], concurrency: 2, pauseMs: 0, minRequestsPerSample: 2, lookbackSeconds: 0.6, lookbackSamples: 3 },
        database: { url: "env:W19_DB_URL", lockTimeoutMs: 200, retries: { attempts: 2, baseMs: 20, maxMs: 50 }, backup: { mode: "schema", dir: join(t.home, "backups") }, smokeQueries: smoke },
      },
    },
    groups: {},
  });
  const open = async (smoke: { name: string; sql: string; expectIndex?: string }[], home: string) => {
    const e = { ...testEnv(home), W19_DB_URL: pgdb.url };
    return Engine.open({ env: e, cwd: t.home, config: parseConfig(raw(smoke), "test", e) });
  };
  const approveAll = async (e: Engine, s: RunSummary): Promise<RunSummary> => {
    let cur = s;
    while (cur.pending) {
      // A watch window of seconds on a loaded machine may come out thin and ask whether to continue; any other
      // pause is not expected here.
      if (cur.pending.kind === "inconclusive" && cur.pending.step !== "MonitorDatabasePerformance") throw new Error(`unexpected pause: ${cur.pending.gate.why}`);
      cur = await e.decide(cur.run, "alice", "approve", { planHash: cur.pending.planHash });
    }
    return cur;
  };
  const valid = async (name: string) => (await admin.query(`SELECT i.indisvalid AS v FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, [name])).rows.map((r) => r.v as boolean);
  const columns = async (table: string) => (await admin.query(`SELECT column_name AS c FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table])).rows.map((r) => r.c as string);

  beforeAll(async () => {
    await seedPostgis(pgdb.url, 300_000);
    tiles = await startTileServer();
    admin = new pg.Client({ connectionString: pgdb.url });
    await admin.connect();
    configPath = join(t.home, "honua-agent.json");
    writeFileSync(configPath, JSON.stringify(raw([{ name: "bbox", sql: BBOX }])));
  }, 120_000);
  afterAll(async () => {
    await admin?.end();
    await tiles?.close();
    t.cleanup();
  });

  it("malformed DDL is refused with exit 2 and nothing changed (command line)", async () => {
    const home = join(t.home, "cli-bad");
    mkdirSync(home, { recursive: true });
    const before = await columns("features");
    const plan = await cli(home, ["plan", "ALTER TABLE features ADD COLUMN (oops on lab", "--json"], env());
    const r = await cli(home, ["run", "ALTER TABLE features ADD COLUMN (oops on lab", "--json"], env());
    // Planning reads the live schema too: the parser's refusal comes before anything starts.
    expect(plan.code).toBe(2);
    expect(plan.json()).toMatchObject({ code: "bad-input", error: expect.stringMatching(/does not parse/) });
    expect(r.code).toBe(2);
    expect(r.stderr + r.stdout).toMatch(/does not parse .*syntax error/);
    expect((await cli(home, ["runs", "--json"], env())).json()).toEqual([]);
    expect(await columns("features")).toEqual(before);
  }, 120_000);

  it("a GIST index from the user's plain CREATE INDEX: rewritten on the gate, built concurrently, EXPLAIN uses it, the run is done", async () => {
    const e = await open([{ name: "bbox", sql: BBOX, expectIndex: "features_geom_idx" }], join(t.home, "full"));
    try {
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["CREATE INDEX features_geom_idx ON features USING gist (geom)"] } }, "carol", "add a gist index");
      expect(s.outcome).toBeNull();
      expect(s.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "provision" });
      const sql = s.pending!.gate.change.sections!.find((x) => x.kind === "sql")!;
      expect(sql).toMatchObject({ kind: "sql", statements: [{ original: "CREATE INDEX features_geom_idx ON features USING gist (geom)", rewritten: "CREATE INDEX CONCURRENTLY features_geom_idx ON features USING gist (geom)" }] });
      const done = await approveAll(e, s);
      expect(done.status).toBe("done");
      expect(await valid("features_geom_idx")).toEqual([true]);
      const tr = await e.transcript(s.run);
      const reg = tr.steps.find((x) => x.name === "RunRegressionTests")!.output as { explains: { uses: boolean; usableWhenPreferred: boolean }[] };
      expect(reg.explains).toHaveLength(1);
      expect(reg.explains[0]!.usableWhenPreferred).toBe(true);
      const backup = tr.steps.find((x) => x.name === "BackupDatabase")!.output as { entries: number; location: string };
      expect(backup.entries).toBeGreaterThan(0);
    } finally {
      await e.close();
    }
  }, 180_000);

  it("a lock held by another session pauses the run for a human (never queued), and the approved retry round finishes it", async () => {
    const e = await open([{ name: "bbox", sql: BBOX }], join(t.home, "lock"));
    const holder = new pg.Client({ connectionString: pgdb.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE layers IN SHARE UPDATE EXCLUSIVE MODE");
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["ALTER TABLE layers ADD COLUMN last_modified timestamptz"] } }, "carol", "add column");
      const paused = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
      expect(paused.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "inconclusive" });
      expect(paused.pending!.gate.why).toMatch(/lock not granted within 200 ms, 2 times/);
      expect(await columns("layers")).not.toContain("last_modified");
      await holder.query("ROLLBACK");
      // Continuing leads to another provision gate for the second round, never straight into the statement.
      const again = await e.decide(s.run, "alice", "approve", { planHash: paused.pending!.planHash });
      expect(again.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "provision" });
      // Retry rounds are stages, not traffic shares: "stage 2 of 2", never "(2%)".
      expect(again.pending!.gate).toMatchObject({ stage: 1, stageValue: null, stageCount: 2 });
      expect(renderGate(again.pending!)).toContain("(stage 2 of 2)");
      const done = await approveAll(e, again);
      expect(done.status, done.outcome ?? "").toBe("done");
      expect(await columns("layers")).toContain("last_modified");
    } finally {
      await holder.end();
      await e.close();
    }
  }, 180_000);

  it("a regression rolls back: the default put back at once, the created index deleted only behind the delete gate", async () => {
    // The smoke query names an index its plan can never use: the regression check fails after the change.
    const e = await open([{ name: "by layer", sql: "SELECT count(*) FROM layers WHERE id = 3", expectIndex: "layers_title_idx" }], join(t.home, "rollback"));
    try {
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["ALTER TABLE layers ALTER COLUMN title SET DEFAULT 'untitled'", "CREATE INDEX CONCURRENTLY layers_title_idx ON layers (title)"] } }, "carol", "default and index");
      const after = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
      expect(after.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
      const dflt = await admin.query(`SELECT column_default AS d FROM information_schema.columns WHERE table_name = 'layers' AND column_name = 'title'`);
      expect(dflt.rows[0].d).toBeNull();
      expect(await valid("layers_title_idx")).toEqual([true]);
      const end = await e.decide(s.run, "alice", "approve", { planHash: after.pending!.planHash });
      expect(end.status).toBe("rolled-back");
      expect(await valid("layers_title_idx")).toEqual([]);
      // What the run did not create stays.
      expect(await valid("layers_pkey")).toEqual([true]);
    } finally {
      await e.close();
    }
  }, 180_000);

  it("crash (SIGKILL) while CREATE INDEX CONCURRENTLY runs, restart: the run reaches done and the index is valid (command line)", async () => {
    const home = join(t.home, "crash");
    mkdirSync(home, { recursive: true });
    const started = await cli(home, ["run", "CREATE INDEX features_props_idx ON features USING gin (properties) on lab", "--json", "--as", "carol"], env());
    expect(started.code).toBe(3);
    const s = started.json() as { run: string; pending: { planHash: string } };
    const child = spawn(process.execPath, [join(ROOT, "bin/honua-agent.mjs"), "approve", s.run, "--as", "alice", "--json"], { cwd: home, env: { ...testEnv(home), ...env() }, stdio: "ignore" });
    let seen = false;
    for (let i = 0; i < 600 && !seen; i++) {
      const r = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'honua-agent %' AND query ILIKE 'CREATE INDEX CONCURRENTLY%features_props_idx%'`);
      seen = r.rows[0].n > 0;
      if (!seen) await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen).toBe(true);
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const resumed = await cli(home, ["resume", s.run, "--json"], env());
    if ((resumed.json() as { status: string }).status !== "done") console.log(JSON.stringify(((await cli(home, ["transcript", s.run, "--json"], env())).json() as { steps: { name: string; output: unknown }[] }).steps.slice(-3)).slice(0, 4000));
    expect(resumed.json(), resumed.stdout).toMatchObject({ run: s.run, status: "done" });
    expect(await valid("features_props_idx")).toEqual([true]);
    const tr = (await cli(home, ["transcript", s.run, "--json"], env())).json() as { steps: { name: string; status: string; output: unknown }[] };
    const applied = tr.steps.filter((x) => x.name === "ApplySchemaChanges" && x.status === "done");
    expect(applied).toHaveLength(1);
    expect(JSON.stringify(applied[0]!.output)).toMatch(/"outcome":"(applied|repaired)"/);
  }, 240_000);
});
