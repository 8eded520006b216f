import { cpSync, existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { AgentError, exitCodeFor } from "../src/core/errors.js";
import { openPersistence } from "../src/graph/checkpointer.js";
import { CACHING_PLAN, cli, openEngine, postgresTestDatabase, tempHome, testEnv } from "./helpers.js";

/** A home holding one caching run waiting at its first gate (prod locked by it). */
async function homeWithRun(): Promise<{ home: string; run: string; cleanup: () => void }> {
  const t = tempHome();
  const engine = await openEngine(t.home);
  const s = await engine.start(CACHING_PLAN, "alice", "add redis caching to prod");
  await engine.close();
  return { ...t, run: s.run };
}

const snapshot = (path: string) => (existsSync(path) ? readFileSync(path) : null);

async function refusal(home: string): Promise<AgentError> {
  try {
    const p = await openPersistence(testEnv(home), home);
    await p.close();
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    expect(exitCodeFor(e)).toBe(2);
    return e as AgentError;
  }
  throw new Error("the store opened");
}

const DAMAGE: Record<string, (path: string) => void> = {
  "half-truncated": (p) => truncateSync(p, Math.floor(statSync(p).size / 2)),
  zeroed: (p) => truncateSync(p, 0),
  "overwritten with text": (p) => writeFileSync(p, "this is not a database\n".repeat(200)),
  deleted: (p) => rmSync(p),
};

describe("store files damaged, replaced or gone: refused by name, exit 2, nothing changed", () => {
  it("each of checkpoints.sqlite and agent.sqlite, half-truncated, zeroed, overwritten with text or deleted", async () => {
    const base = await homeWithRun();
    try {
      for (const file of ["checkpoints.sqlite", "agent.sqlite"]) {
        for (const [how, damage] of Object.entries(DAMAGE)) {
          const t = tempHome();
          try {
            cpSync(base.home, t.home, { recursive: true });
            const path = join(t.home, file);
            damage(path);
            const before = { file: snapshot(path), other: snapshot(join(t.home, file === "agent.sqlite" ? "checkpoints.sqlite" : "agent.sqlite")) };
            const e = await refusal(t.home);
            expect(e.message, `${file} ${how}`).toContain(path);
            expect(e.message).toMatch(/Nothing was changed\. Restore it from a backup, or run `honua-agent doctor`/);
            expect(e.message).toMatch(how === "deleted" ? /is missing; it existed/ : how === "zeroed" ? /is empty \(0 bytes\)/ : how === "half-truncated" ? /damaged|integrity|not a SQLite/ : /not a SQLite database/);
            // Nothing was recreated or repaired behind the operator's back.
            expect(snapshot(path)).toEqual(before.file);
            expect(snapshot(join(t.home, file === "agent.sqlite" ? "checkpoints.sqlite" : "agent.sqlite"))).toEqual(before.other);
          } finally {
            t.cleanup();
          }
        }
      }
    } finally {
      base.cleanup();
    }
  });

  it("from the command line: exit 2 with the file named, and `doctor` reports it", async () => {
    const base = await homeWithRun();
    try {
      writeFileSync(join(base.home, "checkpoints.sqlite"), "garbage");
      const r = cli(base.home, ["status", base.run, "--json"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(join(base.home, "checkpoints.sqlite"));
      const d = cli(base.home, ["doctor"]);
      expect(d.code).toBe(2);
      expect(d.stdout).toMatch(/checkpoints\.sqlite: not-a-database/);
      expect(d.stdout).toMatch(/agent\.sqlite: ok/);
    } finally {
      base.cleanup();
    }
  });

  it("records lost while checkpoints stay: refused naming the run, and prod is not handed to a second run", async () => {
    const base = await homeWithRun();
    try {
      // What a replaced or lost agent.sqlite looks like: no records, no list of store files.
      rmSync(join(base.home, "agent.sqlite"));
      rmSync(join(base.home, "stores.json"));
      const e = await refusal(base.home);
      expect(e.message).toMatch(new RegExp(`holds 1 run\\(s\\) that .*agent\\.sqlite do not know \\(${base.run}\\)`));
      const r = cli(base.home, ["run", "add redis caching to prod", "--json", "--as", "bob"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(base.run);
    } finally {
      base.cleanup();
    }
  });
});

describe("the sandbox's and the real adapters' files, opened when a deployment is first used", () => {
  it("a damaged or vanished sandbox.sqlite is refused by name with exit 2 when a run needs it, and never recreated", async () => {
    const base = await homeWithRun();
    try {
      for (const [how, damage] of Object.entries(DAMAGE)) {
        const t = tempHome();
        try {
          cpSync(base.home, t.home, { recursive: true });
          const path = join(t.home, "sandbox.sqlite");
          damage(path);
          const before = snapshot(path);
          const r = cli(t.home, ["run", "add redis caching to staging", "--json", "--as", "alice"]);
          expect(r.code, `${how}: ${r.stderr}`).toBe(2);
          expect(r.stderr).toContain(path);
          expect(snapshot(path)).toEqual(before);
        } finally {
          t.cleanup();
        }
      }
    } finally {
      base.cleanup();
    }
  });
});

describe("doctor: the state of stores and locks; a lock is released only when its run is provably dead", () => {
  it("keeps a waiting run's lock, releases one whose run never started, and records who", async () => {
    const base = await homeWithRun();
    try {
      const kept = cli(base.home, ["doctor", "--json"]);
      expect(kept.code).toBe(0);
      const report = kept.json() as { locks: { deployment: string; run: string; releasable: boolean; why: string }[] };
      expect(report.locks).toEqual([expect.objectContaining({ deployment: "prod", run: base.run, releasable: false, why: expect.stringMatching(/is waiting: continue it/) })]);
      const refused = cli(base.home, ["doctor", "--release", "prod", "--as", "carol"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/not released: run .* is waiting/);
      expect(cli(base.home, ["doctor", "--release", "prod"]).stderr).toMatch(/--release needs --as/);

      // A lock left by a run of which nothing else exists (e.g. killed between taking the lock and recording it).
      const engine = await openEngine(base.home);
      await engine.store.sql.query(`INSERT INTO honua_locks (deployment, run, acquired_at) VALUES ('staging', 'run-ghost', '2026-01-01T00:00:00Z')`);
      await engine.close();
      const released = cli(base.home, ["doctor", "--release", "staging", "--as", "carol", "--json"]);
      expect(released.code, released.stderr).toBe(0);
      expect(released.json()).toMatchObject({ released: { deployment: "staging", run: "run-ghost" } });
      const after = await openEngine(base.home);
      expect(await after.store.sql.query(`SELECT actor, action, deployment, run FROM honua_operator_actions`)).toEqual([{ actor: "carol", action: "release-lock", deployment: "staging", run: "run-ghost" }]);
      expect(await after.store.lockHolder("prod")).toBe(base.run);
      await after.close();
    } finally {
      base.cleanup();
    }
  });
});

describe("PostgreSQL: the agent's tables dropped while checkpoints stay", () => {
  const db = postgresTestDatabase("honua_storefiles");
  it("is refused naming the run (exit 2); an unreachable database names the setting", async () => {
    const env = { HONUA_AGENT_DATABASE_URL: db.url };
    const engine = await openEngine(db.home, env);
    const s = await engine.start(CACHING_PLAN, "alice", "add redis caching to prod");
    await engine.close();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const { rows } = await c.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE 'honua\\_%'`);
    for (const r of rows) await c.query(`DROP TABLE ${r.tablename}`);
    await c.end();
    const e = await (async () => {
      try {
        const p = await openPersistence(testEnv(db.home, env), db.home);
        await p.close();
      } catch (err) {
        return err as AgentError;
      }
      throw new Error("opened");
    })();
    expect(exitCodeFor(e)).toBe(2);
    expect(e.message).toContain(s.run);
    const bad = cli(db.home, ["runs"], { HONUA_AGENT_DATABASE_URL: "postgres://postgres:hunter2@127.0.0.1:1/x" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/HONUA_AGENT_DATABASE_URL \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/x\): cannot open the agent's store: nothing accepts connections there/);
    expect(bad.stderr).not.toContain("hunter2");
  });
});
