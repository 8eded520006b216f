import { describe, expect, it } from "vitest";
import type { Engine, RunSummary } from "../src/engine.js";
import { engineSuite } from "./helpers.js";

/** The sandbox's storage twin is built with the deployment's adapters (a preflight builds them without side effects). */
const twin = async (engine: Engine, deployment: string) => void (await engine.preflight({ workflow: "add-storage-backend", deployment, params: { backend: "gcs" } }));
const catalog = (engine: Engine, deployment = "prod") =>
  (engine.sandbox().db.prepare(`SELECT collection, id, content FROM storage_items WHERE deployment = ? ORDER BY collection, id`).all(deployment) as { collection: string; id: string; content: string }[]);
const objects = (engine: Engine, backend: string, deployment = "prod") =>
  (engine.sandbox().db.prepare(`SELECT key FROM storage_objects WHERE deployment = ? AND backend = ? ORDER BY key`).all(deployment, backend) as { key: string }[]).map((r) => r.key);

async function decideAll(engine: Engine, s: RunSummary, seen: string[] = []): Promise<RunSummary> {
  let cur = s;
  while (cur.pending) {
    seen.push(`${cur.pending.step}:${cur.pending.kind}:${cur.pending.gate.change.traffic?.to ?? ""}`);
    cur = await engine.decide(cur.run, "alice", "approve", { planHash: cur.pending.planHash });
  }
  return cur;
}

describe("add-storage-backend on the sandbox", () => {
  const suite = engineSuite();

  it("moves imagery older than 90 days to a new S3 bucket: provision, delete (move) and three traffic gates; hrefs rewritten, sources deleted last", async () => {
    const engine = await suite.open();
    await twin(engine, "prod");
    const before = catalog(engine);
    let s = await engine.start({ workflow: "add-storage-backend", deployment: "prod", params: { backend: "s3", placement: "imagery older than 90 days", move: true } }, "carol", "move old imagery to s3");
    expect(s.pending).toMatchObject({ step: "ProvisionStorageBackend", kind: "provision" });
    const card = s.pending!.gate;
    expect(card.change.resources[0]).toMatchObject({ kind: "s3", name: "honua-prod-rasters", action: "create" });
    const settings = card.change.sections?.find((x) => x.kind === "table");
    expect(JSON.stringify(settings)).toMatch(/versioning.*encryption.*public-access.*lifecycle/);
    const seen: string[] = [];
    seen.push(`${s.pending!.step}:${s.pending!.kind}:`);
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(s.pending).toMatchObject({ step: "MigrateExistingData", kind: "delete" });
    const effect = s.pending!.gate.change.sections!.find((x) => x.kind === "table")!;
    expect(effect).toMatchObject({ kind: "table", columns: ["rule", "takes", "to", "action", "datasets", "items", "objects", "bytes"] });
    if (effect.kind !== "table") throw new Error("not a table");
    expect(effect.rows[0]!.slice(3, 7)).toEqual(["move", 1, 8, 8]); // imagery-2019: 8 items, one asset each
    expect(s.pending!.gate.action).toMatch(/delete the 8 source objects/);
    s = await decideAll(engine, s, seen);
    expect(s.status).toBe("done");
    expect(seen).toEqual(["ProvisionStorageBackend:provision:", "MigrateExistingData:delete:", "EnableMultiStorageRouting:traffic:10", "EnableMultiStorageRouting:traffic:50", "EnableMultiStorageRouting:traffic:100"]);

    const after = catalog(engine);
    const moved = after.filter((r) => r.content.includes("s3://honua-prod-rasters/"));
    expect(moved.map((r) => r.collection)).toEqual(Array(8).fill("imagery-2019"));
    // Only the hrefs changed: the rest of every item is exactly as it was.
    for (const [i, r] of after.entries()) {
      const was = JSON.parse(before[i]!.content);
      const now = JSON.parse(r.content);
      for (const a of Object.values(now.assets) as { href: string }[]) a.href = a.href.replace("s3://honua-prod-rasters/", "file:///data/rasters/");
      expect(now).toEqual(was);
    }
    expect(objects(engine, "s3")).toHaveLength(8);
    expect(objects(engine, "primary").filter((k) => k.startsWith("imagery-2019/"))).toEqual([]);
    const tr = await engine.transcript(s.run);
    const mig = tr.steps.find((x) => x.name === "MigrateExistingData")!.output as { copied: number; verifiedBy: Record<string, number> };
    expect(mig.copied).toBe(8);
    expect(mig.verifiedBy).toEqual({ "size + the store's MD5": 8 });
    const mon = tr.steps.find((x) => x.name === "MonitorStoragePerformance")!.output as { deletedSources: number; markdown: string; backends: { backend: string }[] };
    expect(mon.deletedSources).toBe(8);
    expect(mon.backends.map((b) => b.backend)).toEqual(["s3", "primary"]);
    expect(mon.markdown).toMatch(/\| s3 \| [\d.]+ ms \|/);
    expect(engine.sandbox().config("prod").FileStorage__Provider).toBe("Local"); // a tier: Honua's provider stays
  });

  it("a latency regression on the new backend rolls back at the first stage: every href restored byte for byte, the created bucket offered for deletion", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "latency-regression" });
    await twin(engine, "staging");
    const before = catalog(engine, "staging").map((r) => r.content);
    let s = await engine.start({ workflow: "add-storage-backend", deployment: "staging", params: { backend: "azure-blob", region: "westeurope" } }, "carol", "EU rasters to azure");
    const seen: string[] = [];
    while (s.pending && s.pending.kind !== "delete") {
      seen.push(`${s.pending.step}:${s.pending.kind}`);
      s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    }
    expect(seen).toEqual(["ProvisionStorageBackend:provision", "MigrateExistingData:provision", "EnableMultiStorageRouting:traffic"]);
    expect(s.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
    expect(catalog(engine, "staging").map((r) => r.content)).toEqual(before);
    const tr = await engine.transcript(s.run);
    const rb = tr.steps.find((x) => x.name === "Rollback")!.output as { restored: string[]; leftovers: { id: string }[] };
    expect(rb.restored.join(" ")).toMatch(/storage: \d+ value\(s\) restored in one call/);
    expect(rb.leftovers).toEqual([expect.objectContaining({ id: "azure/rasters", capability: "storage" })]);
    s = await engine.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash });
    expect(s.status).toBe("rolled-back");
    expect(objects(engine, "azure", "staging")).toEqual([]);
    expect(engine.sandbox().db.prepare(`SELECT deleted_at FROM storage_containers WHERE deployment = 'staging' AND backend = 'azure'`).get()).toMatchObject({ deleted_at: expect.any(String) });
  });

  it("a bucket name owned by another account is refused at plan time, not adopted", async () => {
    const engine = await suite.open();
    await expect(engine.start({ workflow: "add-storage-backend", deployment: "prod", params: { backend: "s3", bucket: "honua-shared-rasters" } }, "carol", "use the shared bucket"))
      .rejects.toThrow(/owned by sandbox-account-geodata-team.*does not adopt someone else's bucket/);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("hooks up a share for staging: Honua's LocalStorage moves to it at 100% of the routing, everything copied first", async () => {
    const engine = await suite.open();
    const s = await decideAll(engine, await engine.start({ workflow: "add-storage-backend", deployment: "staging", params: { backend: "filesystem", path: "/mnt/rasters" } }, "carol", "nfs"));
    expect(s.status).toBe("done");
    const cfg = engine.sandbox().config("staging");
    expect(cfg.FileStorage__Provider).toBe("Local");
    expect(cfg.FileStorage__LocalStorage__BasePath).toBe("/mnt/rasters");
    expect(catalog(engine, "staging").every((r) => !r.content.includes("file:///data/rasters/"))).toBe(true);
    expect(objects(engine, "primary", "staging").length).toBeGreaterThan(0); // copy, not move: the sources stay
  });
});
