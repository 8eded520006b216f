import { describe, expect, it } from "vitest";
import { z } from "zod";
import { renderSection, type ChangeSection } from "../src/core/sections.js";
import { defineStep, type WorkflowDef } from "../src/graph/step.js";
import { renderGate } from "../src/render.js";
import { Engine } from "../src/engine.js";
import { planHash } from "../src/graph/gates.js";
import { engineSuite, testEnv } from "./helpers.js";

/**
 * A throwaway workflow whose design step turns a description into statements and whose apply step shows them as a
 * `sql` section with a `table` beside it: the sections are inside the plan hash, and the gate's kind comes from the
 * design step's output (a DROP in the designed statements is a `delete` gate, whatever the params said).
 */
function schemaLike(applied: string[], table: { current: string }): WorkflowDef {
  const Design = defineStep({
    name: "Design",
    description: "turn the description into statements",
    input: z.object({ description: z.string() }),
    output: z.object({ statements: z.array(z.string()) }),
    prepare: (view) => ({ description: String(view.params.description) }),
    run: async (_ctx, { description }) => ({ output: { statements: description.split(";").map((s) => s.trim()).filter(Boolean) } }),
  });
  const Apply = defineStep({
    name: "Apply",
    description: "run the statements",
    input: z.object({ statements: z.array(z.string()) }),
    output: z.object({ ran: z.number() }),
    prepare: (view) => ({ statements: view.output(Design).statements }),
    run: async (_ctx, { statements }) => {
      applied.push(...statements);
      return { output: { ran: statements.length } };
    },
    gate: {
      kind: (view) => (view.output(Design).statements.some((s) => /^drop\b/i.test(s)) ? "delete" : "provision"),
      describe: async (_ctx, view) => {
        const statements = view.output(Design).statements;
        const sections: ChangeSection[] = [
          { kind: "sql", title: "DDL", statements: statements.map((s) => ({ original: s, rewritten: /^create index /i.test(s) ? s.replace(/^create index /i, "CREATE INDEX CONCURRENTLY ") : null, lock: "SHARE UPDATE EXCLUSIVE on features", estimate: "~40 s at 2.1 GB", notes: [] })) },
          { kind: "table", title: "Rows affected", columns: ["table", "rows"], rows: [["features", table.current]] },
        ];
        return { action: `Run ${statements.length} statement(s)`, why: "asked", risk: "low", change: { sections } };
      },
    },
  });
  return { id: "schema-like", title: "Schema-like", params: z.object({ description: z.string() }).strict(), steps: [Design, Apply], rollback: async () => ({ restored: [], leftovers: [] }) };
}

describe("typed change sections in gates", () => {
  const suite = engineSuite();

  it("a sql and a table section are shown and hashed: one changed cell changes the plan hash and refuses the approval given for the old one", async () => {
    const applied: string[] = [];
    const table = { current: "2,100,000" };
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, workflows: { "schema-like": schemaLike(applied, table) } }));
    const s = await e.start({ workflow: "schema-like", deployment: "prod", params: { description: "create index features_geom on features using gist (geom)" } }, "carol", "x");
    expect(s.pending).toMatchObject({ step: "Apply", kind: "provision" });
    const shown = s.pending!;
    expect(shown.gate.change.sections?.map((x) => x.kind)).toEqual(["sql", "table"]);
    const text = renderGate(shown);
    expect(text).toContain("DDL:\n  1. CREATE INDEX CONCURRENTLY features_geom on features using gist (geom)\n     (you gave: create index features_geom on features using gist (geom))\n     lock: SHARE UPDATE EXCLUSIVE on features · ~40 s at 2.1 GB");
    expect(text).toMatch(/Rows affected:\n  table +rows\n  -+  -+\n  features  2,100,000/);

    // A card that showed one other cell (the row count moved) is another plan: its approval is refused.
    const rebuilt = planHash({ ...shown.gate, change: { ...shown.gate.change, sections: [shown.gate.change.sections![0]!, { kind: "table", title: "Rows affected", columns: ["table", "rows"], rows: [["features", "2,100,001"]] }] } });
    expect(rebuilt).not.toBe(shown.planHash);
    await expect(e.decide(s.run, "alice", "approve", { planHash: rebuilt })).rejects.toMatchObject({ code: "stale" });
    expect(applied).toEqual([]);
    const done = await e.decide(s.run, "alice", "approve", { planHash: shown.planHash });
    expect(done.status).toBe("done");
    expect(applied).toEqual(["create index features_geom on features using gist (geom)"]);
  });

  it("the gate kind comes from the designed statements: a description that turns into a DROP is a delete gate under the two-person rule", async () => {
    const applied: string[] = [];
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, workflows: { "schema-like": schemaLike(applied, { current: "1" }) } }));
    const s = await e.start({ workflow: "schema-like", deployment: "prod", params: { description: "drop index features_old; create index features_geom on features using gist (geom)" } }, "alice", "x");
    expect(s.pending).toMatchObject({ step: "Apply", kind: "delete" });
    // prod's policy: the requester may not approve their own delete.
    await expect(e.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash })).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/two-person rule/) });
    expect(applied).toEqual([]);
    expect((await e.decide(s.run, "bob", "approve", { planHash: s.pending!.planHash })).status).toBe("done");
    expect(applied).toHaveLength(2);
  });

  it("renders each kind of section as plain lines", () => {
    expect(renderSection({ kind: "mapping", title: "Fields", rows: [{ from: "items.properties.datetime", to: "stac_items.datetime", transform: "ISO 8601 -> timestamptz" }] })).toEqual({ title: "Fields", lines: ["items.properties.datetime -> stac_items.datetime (ISO 8601 -> timestamptz)"] });
    expect(renderSection({ kind: "textDiff", title: "Rule file", path: "rules/honua.yml", diff: "--- a\n+++ b\n-  for: 5m\n+  for: 10m" }).title).toBe("Rule file (rules/honua.yml)");
  });
});

describe("change sections on the Slack card", () => {
  it("each section is a block of its own inside Slack's limits, and a card with many is cut, saying how many more", async () => {
    const { buildApprovalCard } = await import("../src/slack/blocks.js");
    const { messageProblems } = await import("./fixtures/slack-limits.js");
    const statements = Array.from({ length: 300 }, (_, i) => ({ original: `create index i${i} on t${i} (c)`, rewritten: `CREATE INDEX CONCURRENTLY i${i} ON t${i} (c)`, lock: "SHARE UPDATE EXCLUSIVE", estimate: null, notes: [] }));
    const sections: ChangeSection[] = [
      { kind: "sql", title: "DDL", statements },
      ...Array.from({ length: 12 }, (_, i): ChangeSection => ({ kind: "table", title: `Table ${i}`, columns: ["a", "b"], rows: [["x", i]] })),
    ];
    const gate = {
      run: "run-1", workflow: "schema-like", deployment: "prod", step: "Apply", stage: null, kind: "provision" as const, action: "Run 300 statements", why: "asked", risk: "low",
      change: { config: [], resources: [], traffic: null, sections }, metricsNow: null, approvers: ["alice"], requestedBy: "carol", askedAt: "2026-11-26T00:00:00.000Z",
    };
    const card = buildApprovalCard({ gate, interrupt: "i1", planHash: "h1", expiresAt: null, approvers: ["alice"], twoPersonRule: false });
    expect(messageProblems(card)).toEqual([]);
    const text = JSON.stringify(card.blocks);
    expect(text).toContain("CREATE INDEX CONCURRENTLY i0 ON t0 (c)");
    expect(text).toMatch(/…and \d+ more/);
    expect(text).toContain("…and 5 more sections");
  });
});
