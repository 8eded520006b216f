import { describe, expect, it } from "vitest";
import { renderSection } from "../src/core/sections.js";
import { databaseSignal } from "../src/tools/database/signal.js";
import { backoffMs, type DatabaseCapability, type DbStats } from "../src/tools/database/types.js";
import { templateFor } from "../src/graph/workflows/upgrade-database-schema/design.js";
import { Monitoring } from "../src/core/monitoring.js";
import type { DeploymentAdapters } from "../src/tools/types.js";
import { engineSuite } from "./helpers.js";

const PLAN = (changes: string[] | string) => ({ workflow: "upgrade-database-schema", deployment: "prod", params: { changes } });

describe("upgrade-database-schema on the sandbox (simulated PostgreSQL)", () => {
  const suite = engineSuite();

  it("'add a GIST index on features.geom': the template's DDL on the provision gate with its lock and estimate; approved, it runs to done with the index in EXPLAIN and the inverse in the note", async () => {
    const e = await suite.open();
    const s = await e.start(PLAN("add a GIST index on features.geom"), "carol", "add a GIST index on features.geom in prod");
    expect(s.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "provision" });
    const sql = s.pending!.gate.change.sections!.find((x) => x.kind === "sql")!;
    const lines = renderSection(sql).lines.join("\n");
    expect(lines).toContain('1. CREATE INDEX CONCURRENTLY "features_geom_idx" ON "features" USING gist ("geom")');
    expect(lines).toMatch(/lock: SHARE UPDATE EXCLUSIVE on public\.features \(reads and writes continue; other DDL waits\) · 1,364,000 rows, 2140 MB: build ~\d+ min/);
    const done = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(done.status).toBe("done");
    const tr = await e.transcript(s.run);
    const reg = tr.steps.find((x) => x.name === "RunRegressionTests")!.output as { explains: { index: string; uses: boolean }[]; queries: { name: string; beforeMs: number; afterMs: number }[] };
    expect(reg.explains).toEqual([expect.objectContaining({ index: "features_geom_idx", uses: true })]);
    const bbox = reg.queries.find((q) => q.name === "features in a bbox")!;
    expect(bbox.afterMs).toBeLessThan(bbox.beforeMs);
    const doc = tr.steps.find((x) => x.name === "UpdateDocumentation")!.output as { markdown: string };
    expect(doc.markdown).toContain('DROP INDEX CONCURRENTLY IF EXISTS "public"."features_geom_idx";');
    // The same change again: already in place, nothing starts.
    await expect(e.start(PLAN("add a GIST index on features.geom"), "carol", "again")).rejects.toThrow(/already has this change/);
  });

  it("a DROP is a delete gate (two-person rule: not the requester), rewritten to DROP INDEX CONCURRENTLY", async () => {
    const e = await suite.open();
    const s = await e.start(PLAN(["DROP INDEX features_layer_id_idx"]), "alice", "drop it");
    expect(s.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "delete" });
    const sql = s.pending!.gate.change.sections!.find((x) => x.kind === "sql")!;
    expect(sql).toMatchObject({ statements: [{ original: "DROP INDEX features_layer_id_idx", rewritten: 'DROP INDEX CONCURRENTLY IF EXISTS "public"."features_layer_id_idx"' }] });
    await expect(e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash })).rejects.toThrow();
    const done = await e.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash });
    expect(done.status).toBe("done");
  });

  it("a column added with a volatile default is flagged on the gate; unknown DDL is refused before anything starts", async () => {
    const e = await suite.open();
    const s = await e.start(PLAN(["ALTER TABLE layers ADD COLUMN uid uuid DEFAULT gen_random_uuid()"]), "carol", "uid");
    const lines = renderSection(s.pending!.gate.change.sections!.find((x) => x.kind === "sql")!).lines.join("\n");
    expect(lines).toMatch(/note: volatile default gen_random_uuid\(\): PostgreSQL rewrites all of public\.layers/);
    await e.decide(s.run, "alice", "reject");
    await expect(e.start(PLAN(["GRANT SELECT ON features TO public"]), "carol", "grant")).rejects.toThrow(/Grant is not a schema change this agent runs/);
    await expect(e.start(PLAN("make the database faster"), "carol", "vague")).rejects.toThrow(/could not turn .* into DDL/);
  });

  it("a lock that is never granted (provision-failure) pauses for a human; rejecting rolls back (status rejected) with nothing created", async () => {
    const e = await suite.open({ HONUA_SANDBOX_FAULTS: "provision-failure" });
    const s = await e.start(PLAN("add column last_modified timestamptz to layers"), "carol", "add column");
    const paused = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(paused.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "inconclusive" });
    expect(paused.pending!.gate.why).toMatch(/lock not granted within 1000 ms, 5 times.*Approve to try them again/);
    const end = await e.decide(s.run, "alice", "reject", { planHash: paused.pending!.planHash });
    // A rejection ends as "rejected", after the rollback ran.
    expect(end.status).toBe("rejected");
    const rb = (await e.transcript(s.run)).steps.find((x) => x.name === "Rollback")!.output as { leftovers: unknown[] };
    expect(rb.leftovers).toEqual([]);
  });

  it("no database data in the window is inconclusive, never healthy", async () => {
    const e = await suite.open({ HONUA_SANDBOX_FAULTS: "no-data" });
    const s = await e.start(PLAN("enable postgis_raster"), "carol", "raster");
    const r = await e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(r.pending).toMatchObject({ step: "MonitorDatabasePerformance", kind: "inconclusive" });
  });
});

describe("schema templates, backoff and the database signal", () => {
  it("templates turn the common requests into DDL", () => {
    expect(templateFor("add a GIST index on features.geom")?.sql).toBe('CREATE INDEX CONCURRENTLY "features_geom_idx" ON "features" USING gist ("geom")');
    expect(templateFor("add an index on layers.service_id")?.sql).toBe('CREATE INDEX CONCURRENTLY "layers_service_id_idx" ON "layers" USING btree ("service_id")');
    expect(templateFor("index on geom of features")?.sql).toContain("USING gist");
    expect(templateFor("add column last_modified timestamptz to layers")?.sql).toBe('ALTER TABLE "layers" ADD COLUMN "last_modified" timestamptz');
    expect(templateFor("enable postgis_raster")?.sql).toBe('CREATE EXTENSION IF NOT EXISTS "postgis_raster"');
    expect(templateFor("drop column legacy from layers")?.sql).toBe('ALTER TABLE "layers" DROP COLUMN "legacy"');
    expect(templateFor("make it faster")).toBeNull();
  });

  it("backoff is full jitter, exponential and bounded", () => {
    const r = { baseMs: 100, maxMs: 1000 };
    expect([0, 1, 2, 3, 10].map((a) => backoffMs(a, r, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffMs(5, r, () => 0)).toBe(0);
    expect(backoffMs(2, r, () => 0.5)).toBe(200);
  });

  const signalOver = (stats: Partial<DbStats> | Error) => {
    const db = { describe: () => "test db", smokeQueries: [{ name: "q", sql: "select 1" }], stats: async () => { if (stats instanceof Error) throw stats; return { at: "", queryMs: 2, lockWaits: 0, connections: 10, maxConnections: 100, replicationLagSeconds: null, ...stats }; } } as unknown as DatabaseCapability;
    return databaseSignal(db, { queryMs: 2 }).read({} as DeploymentAdapters, new Date(0), new Date(0), { monitoring: Monitoring.parse({}), final: false });
  };
  it("the database signal: healthy, degraded on lock waits, connections, lag or slow queries, inconclusive without data", async () => {
    expect((await signalOver({})).verdict).toBe("healthy");
    expect((await signalOver({ lockWaits: 9 })).reason).toMatch(/9 sessions waiting on locks/);
    expect((await signalOver({ connections: 95 })).verdict).toBe("degraded");
    expect((await signalOver({ replicationLagSeconds: 45 })).verdict).toBe("degraded");
    expect((await signalOver({ queryMs: 40 })).verdict).toBe("degraded");
    // 3x a 2 ms baseline is still noise (under 20 ms more).
    expect((await signalOver({ queryMs: 6 })).verdict).toBe("healthy");
    expect((await signalOver({ queryMs: null, connections: null })).verdict).toBe("inconclusive");
    expect((await signalOver(new Error("connection refused"))).verdict).toBe("inconclusive");
  });
});
