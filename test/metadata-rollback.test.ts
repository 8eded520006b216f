import { describe, expect, it } from "vitest";
import { MemoryJournal } from "../src/core/journal.js";
import { PAST_RETIRE, rollbackMetadata } from "../src/graph/workflows/modify-metadata-storage/rollback.js";
import { RunView, type StepContext } from "../src/graph/step.js";
import type { DeploymentAdapters } from "../src/tools/types.js";

/** A run's journal as the workflow writes it, and a context whose traffic router keeps shares in memory. */
async function setup(retired: boolean) {
  const journal = new MemoryJournal("run-1");
  const shares = new Map<string, number>([["metadata-reads", 100]]);
  const p = journal.at("ProvisionNewStore");
  await p.intend(null, [{ kind: "resource", capability: "metadata", id: null, resourceKind: "sqlite catalog", description: "new", created: true }]);
  await p.done(null, [{ kind: "resource", capability: "metadata", id: "target:sqlite", resourceKind: "sqlite catalog", description: "new", created: true }]);
  const s = journal.at("SwitchReadTrafficGradually", 2);
  await s.intend(null, [{ kind: "share", feature: "metadata-reads", before: 0, after: 100 }]);
  await s.done(null);
  if (retired) {
    const d = journal.at("DisableOldStore");
    await d.intend("retire", [{ kind: "irreversible", description: "old catalog retired; backup /b/x.dump" }]);
    await d.done("retire");
  }
  const traffic = { share: async (f: string) => shares.get(f) ?? 0, setShare: async (f: string, v: number) => void shares.set(f, v) };
  const ctx = {
    run: "run-1", workflow: "modify-metadata-storage", deployment: "staging", journal,
    adapters: { traffic } as unknown as DeploymentAdapters,
    idempotencyKey: (x?: string) => `run-1:Rollback:0${x ? `:${x}` : ""}`,
    progress: () => undefined,
  } as unknown as StepContext;
  return { ctx, shares };
}

describe("modify-metadata-storage rollback and its point of no return", () => {
  it("before the retire: the read share goes back to what the run found, the new store is offered for deletion", async () => {
    const { ctx, shares } = await setup(false);
    const r = await rollbackMetadata(ctx, new RunView({} as never));
    expect(shares.get("metadata-reads")).toBe(0);
    expect(r.restored).toEqual(["metadata-reads traffic share -> 0%"]);
    expect(r.leftovers.map((l) => l.id)).toEqual(["target:sqlite"]);
  });

  it("after the retire: reads stay on the new store and it is not offered for deletion; the retire is reported as not restored", async () => {
    const { ctx, shares } = await setup(true);
    const r = await rollbackMetadata(ctx, new RunView({} as never));
    expect(shares.get("metadata-reads")).toBe(100);
    expect(r).toEqual({ restored: [], leftovers: [], notRestored: ["old catalog retired; backup /b/x.dump", PAST_RETIRE] });
  });
});
