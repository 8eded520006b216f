import { describe, expect, it } from "vitest";
import type { Engine, RunSummary } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import { engineSuite } from "./helpers.js";

const PLAN = { workflow: "modify-metadata-storage", deployment: "staging", params: { toStore: "sqlite" } } as const;

const rows = (engine: Engine, store: string, deployment = "staging") =>
  engine.sandbox().db.prepare(`SELECT collection, id, content FROM metadata_items WHERE deployment = ? AND store = ? ORDER BY collection, id`).all(deployment, store) as { collection: string; id: string; content: string }[];

async function until(engine: Engine, s: RunSummary, stop: (s: RunSummary) => boolean, seen: string[], by = "alice"): Promise<RunSummary> {
  let cur = s;
  while (cur.pending && !stop(cur)) {
    seen.push(`${cur.pending.step}:${cur.pending.kind}:${cur.pending.gate.change.traffic?.to ?? ""}`);
    cur = await engine.decide(cur.run, by, "approve", { planHash: cur.pending.planHash });
  }
  return cur;
}

describe("modify-metadata-storage on the sandbox", () => {
  const suite = engineSuite();

  it("moves staging's catalog to SQLite while the sandbox's Honua keeps writing: provision, three read stages, delete; stores equal, old store retired after a verified backup", async () => {
    const engine = await suite.open();
    let s = await engine.start(PLAN, "carol", "move staging's metadata to sqlite");
    expect(s.pending).toMatchObject({ step: "ProvisionNewStore", kind: "provision" });
    const sections = s.pending!.gate.change.sections ?? [];
    expect(sections.find((x) => x.kind === "mapping")).toMatchObject({ kind: "mapping", title: "Field mapping postgres -> sqlite" });
    const seen: string[] = [];
    s = await until(engine, s, () => false, seen);
    expect(s.status).toBe("done");
    expect(seen).toEqual([
      "ProvisionNewStore:provision:",
      "SwitchReadTrafficGradually:traffic:10",
      "SwitchReadTrafficGradually:traffic:50",
      "SwitchReadTrafficGradually:traffic:100",
      "DisableOldStore:delete:",
    ]);
    const tr = await engine.transcript(s.run);
    const mig = tr.steps.find((x) => x.name === "MigrateMetadataIncrementally")!.output as { total: number; copied: number; batches: number; capture: { applied: number; deletes: number } };
    expect(mig.copied).toBe(600);
    expect(mig.batches).toBe(1);
    // The sandbox's Honua wrote during the copy (an update, an insert, a delete per batch): captured and applied.
    expect(mig.capture.applied).toBeGreaterThan(0);
    expect(mig.capture.deletes).toBeGreaterThan(0);
    const val = tr.steps.find((x) => x.name === "ValidateDataIntegrity")!.output as { comparison: { ok: boolean; sourceCount: number; queries: { kind: string; ok: boolean }[] } };
    expect(val.comparison.ok).toBe(true);
    expect(new Set(val.comparison.queries.map((q) => q.kind))).toEqual(new Set(["id", "collection", "bbox", "datetime", "text"]));
    const dis = tr.steps.find((x) => x.name === "DisableOldStore")!.output as { backup: { verified: boolean; records: number; location: string } };
    expect(dis.backup).toMatchObject({ verified: true, records: val.comparison.sourceCount });
    expect(rows(engine, "current")).toEqual([]);
    expect(rows(engine, "new-sqlite")).toHaveLength(val.comparison.sourceCount);
    const doc = tr.steps.find((x) => x.name === "UpdateDocumentation")!.output as { markdown: string };
    expect(doc.markdown).toMatch(/## Metadata store: postgres -> sqlite/);
    expect(doc.markdown).toMatch(/Rollback notes/);
    const journal = await engine.store.journal(s.run);
    expect(journal.some((e) => e.effects.some((f) => f.kind === "irreversible"))).toBe(true);
  });

  it("a latency regression on the new store rolls the read share back at the first stage; capture is turned off, the old store untouched, the new store offered for deletion", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "latency-regression" });
    let s = await engine.start(PLAN, "carol", "move staging's metadata to sqlite");
    const seen: string[] = [];
    s = await until(engine, s, (x) => x.pending?.kind === "delete", seen);
    expect(seen).toEqual(["ProvisionNewStore:provision:", "SwitchReadTrafficGradually:traffic:10"]);
    const tr = await engine.transcript(s.run);
    const rb = tr.steps.find((x) => x.name === "Rollback")!.output as { restored: string[]; leftovers: { id: string }[] };
    expect(rb.restored.join(" ")).toMatch(/metadata-reads traffic share -> 0%/);
    expect(rb.restored.join(" ")).toMatch(/capture:.* -> off/);
    expect(rb.leftovers.map((l) => l.id)).toEqual(["target:sqlite"]);
    expect(rows(engine, "current").length).toBeGreaterThan(590);
    const triggers = engine.sandbox().db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'honua_capture_%'`).all();
    expect(triggers).toEqual([]);
  });

  it("prod: 2400 records in three keyset batches with progress (records copied / total), the delete gate under the two-person rule: the requester may not retire the old store", async () => {
    const events: RunEvent[] = [];
    const engine = await suite.open({}, events);
    let s = await engine.start({ workflow: "modify-metadata-storage", deployment: "prod", params: { toStore: "postgres", batchSize: 1000 } }, "alice", "move prod's metadata to a new postgres");
    const seen: string[] = [];
    s = await until(engine, s, (x) => x.pending?.kind === "delete", seen, "bob");
    expect(s.pending).toMatchObject({ step: "DisableOldStore", kind: "delete" });
    expect(s.pending!.gate.risk).toMatch(/Irreversible.*Refused without a verified backup/);
    await expect(engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash })).rejects.toThrow(/two-person rule|may not decide/);
    expect(rows(engine, "current", "prod").length).toBeGreaterThan(2390);
    s = await engine.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash });
    expect(s.status).toBe("done");
    const progress = events.flatMap((e) => (e.type === "progress" && e.step === "MigrateMetadataIncrementally" && e.progress ? [e.progress] : []));
    // Structured progress per batch: records copied of the total (the sandbox's Honua adds records as it goes).
    expect(progress.map((p) => p.done)).toEqual([1000, 2000, expect.any(Number), expect.any(Number)]);
    expect(progress.every((p) => p.unit === "records" && p.done <= p.total && p.total >= 2400)).toBe(true);
    expect(progress.at(-1)!.done).toBeGreaterThan(2400);
    const stages = events.flatMap((e) => (e.type === "gate" && e.payload.step === "SwitchReadTrafficGradually" ? [e.payload] : []));
    expect(stages.map((g) => g.change.traffic?.to)).toEqual([10, 50, 100]);
    const first = stages[0]!.change.sections![0]!;
    expect(JSON.stringify(first)).toMatch(/mismatch rate.*0\.000% \(0 of 24\d\d records\).*new store read p95/);
    expect(engine.sandbox().config("prod").ConnectionStrings__DefaultConnection).toBe("env:HONUA_PROD_NEW_CATALOG_URL");
  });
});

describe("modify-metadata-storage from the command line (npm start's honua-agent on the sandbox)", () => {
  it("plans, runs to each gate and approves through to done; the transcript lists the ten steps", async () => {
    const { tempHome, cli } = await import("./helpers.js");
    const t = tempHome();
    try {
      const plan = cli(t.home, ["plan", "switch the staging catalog to sqlite with 500 records per batch", "--json"]).json();
      expect(plan).toEqual({ workflow: "modify-metadata-storage", deployment: "staging", params: { toStore: "sqlite", batchSize: 500 } });
      let r = cli(t.home, ["run", "switch the staging catalog to sqlite with 500 records per batch", "--as", "carol", "--json"]);
      expect(r.code).toBe(3);
      let out = r.json() as { run: string; status: string; pending: { step: string; kind: string } | null };
      const seen: string[] = [];
      while (out.pending) {
        seen.push(`${out.pending.step}:${out.pending.kind}`);
        r = cli(t.home, ["approve", out.run, "--as", "alice", "--json"]);
        out = r.json() as typeof out;
      }
      expect(r.code).toBe(0);
      expect(out.status).toBe("done");
      expect(seen).toEqual(["ProvisionNewStore:provision", "SwitchReadTrafficGradually:traffic", "SwitchReadTrafficGradually:traffic", "SwitchReadTrafficGradually:traffic", "DisableOldStore:delete"]);
      const tr = cli(t.home, ["transcript", out.run, "--json"]).json() as { steps: { name: string; status: string; output: unknown }[] };
      const done = [...new Set(tr.steps.filter((x) => x.status === "done").map((x) => x.name))];
      expect(done).toEqual(["AnalyzeCurrentMetadataStore", "SelectNewMetadataStore", "ProvisionNewStore", "DefineDataMapping", "MigrateMetadataIncrementally", "ValidateDataIntegrity", "SwitchReadTrafficGradually", "MonitorNewStore", "DisableOldStore", "UpdateDocumentation"]);
      const mig = tr.steps.find((x) => x.name === "MigrateMetadataIncrementally")!.output as { batches: number };
      expect(mig.batches).toBe(2);
    } finally {
      t.cleanup();
    }
  }, 120_000);
});
