import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SandboxWorld } from "../src/sandbox/sandbox.js";
import { cli, tempHome } from "./helpers.js";
import { join } from "node:path";
import Database from "better-sqlite3";

interface Summary {
  run: string;
  status: string;
  pending: { step: string; kind: string; interrupt: string; planHash: string } | null;
}

describe("a run survives the process being killed (SIGKILL)", () => {
  let t: ReturnType<typeof tempHome>;
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(() => t.cleanup());

  const provisions = () => {
    const w = new SandboxWorld(join(t.home, "sandbox.sqlite"));
    try {
      return w.count("prod", "provision-cache");
    } finally {
      w.close();
    }
  };

  it("killed after the provisioning call, before its checkpoint: restart finishes with exactly one provisioning", async () => {
    const started = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]);
    expect(started.code, started.stderr).toBe(3);
    const s = started.json() as Summary;
    expect(s.pending?.step).toBe("ProvisionCacheInfrastructure");

    const killed = cli(t.home, ["approve", s.run, "--as", "alice", "--json"], { HONUA_AGENT_FAILPOINT: "after:ProvisionCacheInfrastructure" });
    expect(killed.signal).toBe("SIGKILL");
    expect(provisions()).toBe(1);

    // the approval is recorded and applied; a second approve is refused, the run is not re-decided
    const again = cli(t.home, ["approve", s.run, "--as", "bob", "--json"]);
    expect(again.code).toBe(2);

    const resumed = cli(t.home, ["resume", s.run, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(3);
    expect((resumed.json() as Summary).pending?.step).toBe("EnableCachingGradually");
    expect(provisions()).toBe(1);

    let cur = resumed.json() as Summary;
    while (cur.pending) {
      const r = cli(t.home, ["approve", cur.run, "--as", "alice", "--plan-hash", cur.pending.planHash, "--json"]);
      cur = r.json() as Summary;
    }
    expect(cur.status).toBe("done");
    expect(provisions()).toBe(1);
    const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { steps: { name: string }[]; decisions: unknown[] };
    expect(tr.steps.filter((x) => x.name === "ProvisionCacheInfrastructure")).toHaveLength(1);
    expect(tr.decisions).toHaveLength(4);
  });

  it("killed in the middle of a step (during the first traffic stage): restart re-runs it once and goes on", async () => {
    const s = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]).json() as Summary;
    const p = cli(t.home, ["approve", s.run, "--as", "alice", "--json"]).json() as Summary;
    expect(p.pending?.step).toBe("EnableCachingGradually");
    const killed = cli(t.home, ["approve", p.run, "--as", "bob", "--json"], { HONUA_AGENT_FAILPOINT: "after:EnableCachingGradually" });
    expect(killed.signal).toBe("SIGKILL");
    const runs = cli(t.home, ["runs", "--json"]).json() as { run: string; status: string }[];
    expect(runs[0]).toMatchObject({ run: s.run });
    const resumed = cli(t.home, ["resume", s.run, "--json"]).json() as Summary;
    expect(resumed.pending).toMatchObject({ step: "EnableCachingGradually", kind: "traffic" });
    const w = new SandboxWorld(join(t.home, "sandbox.sqlite"));
    try {
      expect(w.share("prod", "cache")).toBe(10);
      expect(w.count("prod", "traffic-share")).toBe(1);
    } finally {
      w.close();
    }
    // The re-run stage continued the window that started before the kill instead of watching a new one.
    const db = new Database(join(t.home, "agent.sqlite"), { readonly: true });
    const memo = db.prepare(`SELECT value FROM honua_memo WHERE run = ? AND key LIKE 'EnableCachingGradually:0:window-start'`).get(s.run) as { value: string };
    db.close();
    const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { steps: { name: string; startedAt: string; output: { window: { at: string } } }[] };
    const stage = tr.steps.find((x) => x.name === "EnableCachingGradually")!;
    expect(Date.parse(stage.startedAt)).toBeGreaterThan(Date.parse(memo.value)); // the record is the re-run's
    expect(Date.parse(stage.output.window.at) - Date.parse(memo.value)).toBe(10 * 60_000); // one 10-minute window in all
  });
});
