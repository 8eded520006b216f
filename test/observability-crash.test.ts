import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, tempHome } from "./helpers.js";

interface Summary {
  run: string;
  status: string;
  pending: { step: string; kind: string; planHash: string } | null;
}

/** modify-observability killed (SIGKILL) right after a side effect, before its checkpoint: the restart does not do it twice. */
describe("modify-observability survives the process being killed after a write (sandbox)", () => {
  let t: ReturnType<typeof tempHome>;
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(() => t.cleanup());
  const sandbox = <T>(f: (db: Database.Database) => T): T => {
    const db = new Database(join(t.home, "sandbox.sqlite"), { readonly: true });
    try {
      return f(db);
    } finally {
      db.close();
    }
  };

  it.each([
    ["the TileLatencyHigh alert on prod is too noisy, raise it to 800 ms", "after:ApplyPrometheusChanges", (db: Database.Database) => (db.prepare(`SELECT COUNT(*) AS n FROM obs_file_history WHERE deployment = 'prod' AND target = 'rules:honua.rules.yml'`).get() as { n: number }).n],
    ["add a cache hit rate panel to the Honua Overview dashboard on prod", "after:UpdateGrafanaDashboards", (db: Database.Database) => (db.prepare(`SELECT COUNT(*) AS n FROM obs_dashboards WHERE deployment = 'prod' AND uid = 'honua-overview'`).get() as { n: number }).n - 1], // the seed is one row
  ])("%s, killed %s: one write, then done", (request, failpoint, writes) => {
    const started = cli(t.home, ["run", request, "--as", "carol", "--json"]);
    expect(started.code, started.stderr).toBe(3);
    const s = started.json() as Summary;
    expect(s.pending?.step).toBe("ApplyPrometheusChanges");
    const killed = cli(t.home, ["approve", s.run, "--as", "alice", "--plan-hash", s.pending!.planHash, "--json"], { HONUA_AGENT_FAILPOINT: failpoint });
    expect(killed.signal).toBe("SIGKILL");
    expect(sandbox(writes)).toBe(1);
    const resumed = cli(t.home, ["resume", s.run, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((resumed.json() as Summary).status).toBe("done");
    expect(sandbox(writes)).toBe(1);
  });
});
