import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { cli, tempHome } from "./helpers.js";

const killAt = (match: string, nth: number) => ({
  NODE_OPTIONS: `--import ${new URL("./fixtures/killpoints-hook.mjs", import.meta.url).pathname}`,
  HONUA_KILL_MATCH: match,
  HONUA_KILL_AT: String(nth),
});

interface Summary {
  run: string;
  status: string;
  pending: { step: string; kind: string; planHash: string } | null;
}

describe("modify-metadata-storage survives SIGKILL in the middle of the copy", () => {
  it("killed before the third batch's cursor reaches the agent store: resume continues from the batch the target recorded, and ends with the stores equal", async () => {
    const t = tempHome();
    try {
      const s = cli(t.home, ["run", "move prod's metadata to sqlite in batches of 500", "--as", "carol", "--json"]).json() as Summary;
      expect(s.pending?.step).toBe("ProvisionNewStore");
      const killed = cli(t.home, ["approve", s.run, "--as", "alice", "--json"], killAt("INTO honua_cursors", 3));
      expect(killed.signal).toBe("SIGKILL");
      const rows = (store: string) => {
        const db = new Database(join(t.home, "sandbox.sqlite"), { readonly: true });
        try {
          return (db.prepare(`SELECT count(*) AS n FROM metadata_items WHERE deployment = 'prod' AND store = ?`).get(store) as { n: number }).n;
        } finally {
          db.close();
        }
      };
      expect(rows("new-sqlite")).toBe(1500); // three batches landed with their marks; the agent store has two
      const resumed = cli(t.home, ["resume", s.run, "--json"]);
      expect(resumed.code, resumed.stderr).toBe(3);
      let cur = resumed.json() as Summary;
      expect(cur.pending?.step).toBe("SwitchReadTrafficGradually");
      while (cur.pending) cur = cli(t.home, ["approve", cur.run, "--as", "alice", "--plan-hash", cur.pending.planHash, "--json"]).json() as Summary;
      expect(cur.status).toBe("done");
      const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { steps: { name: string; status: string; output: unknown }[] };
      const mig = tr.steps.filter((x) => x.name === "MigrateMetadataIncrementally" && x.status === "done");
      expect(mig).toHaveLength(1);
      expect(mig[0]!.output).toMatchObject({ resumed: true, batches: 5 });
      const val = tr.steps.find((x) => x.name === "ValidateDataIntegrity")!.output as { comparison: { ok: boolean; targetCount: number } };
      expect(val.comparison.ok).toBe(true);
      expect(rows("new-sqlite")).toBe(val.comparison.targetCount);
    } finally {
      t.cleanup();
    }
  }, 180_000);
});
