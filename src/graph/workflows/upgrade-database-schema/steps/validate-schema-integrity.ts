import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { check, describeExpect } from "../../../../tools/database/types.js";
import { defineStep } from "../../../step.js";
import { databaseOf, schemaObjects } from "../design.js";
import { Applied, ApplySchemaChanges } from "./apply-schema-changes.js";
import { AnalyzeCurrentSchema } from "./analyze-current-schema.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";

export const Integrity = z.object({
  checks: z.array(z.object({ expectation: z.string(), holds: z.boolean() })),
  /** Changes between the schema found and now that no statement of this run explains (someone else's work). */
  unexplained: z.array(z.string()),
  invalidIndexes: z.array(z.string()),
  snapshotRef: z.string(),
});


export const ValidateSchemaIntegrity = defineStep({
  name: "ValidateSchemaIntegrity",
  description: "Compare the live schema with the expectation of every statement: indexes valid, columns and constraints in place and validated, nothing else changed",
  input: z.object({ safety: Safety, applied: Applied, before: z.array(z.string()) }),
  output: Integrity,
  prepare: (view) => ({ safety: view.output(ValidateMigrationSafety), applied: view.output(ApplySchemaChanges), before: view.output(AnalyzeCurrentSchema).objects }),
  async run(ctx, { safety, applied, before }) {
    if (applied.pending > 0) throw new AgentError("failed", `${applied.pending} operation(s) never ran (their lock was never granted); the schema is not what was approved`);
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const now = await db.introspect();
    const snapshotRef = await ctx.attach("schema-after", now);
    // Each statement's end state is its last operation's expectation (the helper steps of a rewrite come and go).
    const checks = safety.statements.map((s) => {
      const e = s.ops.at(-1)!.expect;
      return { expectation: describeExpect(e), holds: check(e, now) === "holds" };
    });
    const touched = new Set(safety.statements.flatMap((s) => s.ops.map((o) => ("table" in o.expect ? `${o.expect.schema}.${o.expect.table}` : o.on ?? ""))));
    const invalidIndexes = now.indexes.filter((i) => !i.valid && touched.has(`${i.schema}.${i.table}`)).map((i) => `${i.schema}.${i.name}`);
    const failed = checks.filter((c) => !c.holds);
    if (failed.length || invalidIndexes.length) throw new AgentError("failed", `schema does not match the change: ${[...failed.map((c) => `expected ${c.expectation}`), ...invalidIndexes.map((i) => `index ${i} is INVALID`)].join("; ")}`);
    // What changed that no statement names: reported, never undone (this run did not do it).
    const was = new Set(before);
    const is = schemaObjects(now);
    const named = safety.statements.flatMap((s) => s.ops.map((o) => JSON.stringify(o.expect)));
    const explained = (obj: string) => named.some((n) => obj.split(" ")[1]!.split(".").every((part) => n.includes(`"${part}"`)));
    const unexplained = [...[...is].filter((x) => !was.has(x)).map((x) => `new: ${x}`), ...[...was].filter((x) => !is.has(x)).map((x) => `gone: ${x}`)].filter((x) => !explained(x.replace(/^(new|gone): /, "")));
    return { output: { checks, unexplained, invalidIndexes, snapshotRef }, reason: `${checks.length} expectation(s) hold: ${checks.map((c) => c.expectation).join("; ")}` };
  },
});
