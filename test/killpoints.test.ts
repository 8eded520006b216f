import { afterAll, describe, expect, it } from "vitest";
import { KillpointRig, killEach, killPoints, pool } from "./fixtures/killpoints.js";

const CONCURRENCY = Number(process.env.HONUA_KILL_CONCURRENCY ?? 2);

describe("SIGKILL just before each durable statement of a sandbox caching run, then restart (SQLite)", () => {
  const rig = new KillpointRig("sqlite");
  afterAll(() => rig.cleanup());

  it("every kill point, across the run, approve and resume processes, resumes to done with each side effect once", async () => {
    const started = Date.now();
    const b = await rig.prepare();
    // The unkilled run is the reference: one cache provisioned, three traffic stages, one decision per gate.
    expect(b.final).toBe("done");
    expect(b.counts["provision-cache"]).toBe(1);
    expect(b.counts["traffic-share"]).toBe(3);
    expect(b.counts["config-apply"]).toBeGreaterThan(0);
    expect(b.decisions).toEqual(["EnableCachingGradually#0", "EnableCachingGradually#1", "EnableCachingGradually#2", "ProvisionCacheInfrastructure#-"]);
    expect(b.lockHolder).toBeNull();
    expect(b.audit).toBeNull();

    // Every other statement (the odd ones); the PostgreSQL suite takes even ones. HONUA_KILL_ALL=1: every one.
    const ns = killPoints(b.total, 2, 1);
    const r = await killEach(rig, ns, CONCURRENCY);
    console.log(`kill points (sqlite): ${ns.length} of ${b.total} [${b.perProcess.join(", ")} per process], ${ns.length - r.failures.length} finished; ` +
      `states left: ${JSON.stringify(r.shapes)}; ${r.seconds}s for the kills, ${Math.round((Date.now() - started) / 1000)}s in all`);
    expect(r.failures).toEqual([]);
    // The states that used to leave a run "running" forever were reached: no checkpoint yet, and a step that
    // finished whose next checkpoint was never written.
    expect(r.shapes["no-checkpoint"]).toBeGreaterThan(0);
    expect(r.shapes["saved-writes"]).toBeGreaterThan(0);
  }, 900_000);

  it("a crash at every side effect (its journal record or the act itself), then a cancel: the deployment is back where the run found it", async () => {
    const b = rig.baseline ?? (await rig.prepare());
    expect(b.final).toBe("done");
    const start = await rig.startState();
    // Each side effect is three points: its journal record (before it acts), the commit of the act itself in the
    // sandbox (right after that record), and the record that it returned. A journal record commits in one transaction
    // with its audit entry: the point is that COMMIT (traced with the transaction's first write).
    const journal = /^\s*(COMMIT -- )?(INSERT INTO|UPDATE) honua_journal/i;
    const ns = rig.pointsWhere((sql, previous) => journal.test(sql) || (/^\s*COMMIT/i.test(sql) && /^\s*(COMMIT -- )?INSERT INTO honua_journal/i.test(previous)));
    expect(ns.length).toBeGreaterThanOrEqual(25);
    const outcomes = await pool(ns, CONCURRENCY, (n) => rig.killThenCancel(n));
    const cancelled = outcomes.filter((o): o is NonNullable<typeof o> => o !== null);
    const wrong = cancelled.filter((o) => o.ended !== "cancelled" || JSON.stringify(o.deployment) !== JSON.stringify(start));
    console.log(`kill then cancel (sqlite): ${ns.length} side-effect points, ${cancelled.length} cancelled (the rest had finished), ${wrong.length} wrong`);
    expect(wrong.map((o) => `N=${o.n} (${o.statement.slice(0, 80)}): ${o.ended} ${JSON.stringify(o.deployment)}`)).toEqual([]);
    expect(cancelled.length).toBeGreaterThan(ns.length / 2);
  }, 900_000);
});
