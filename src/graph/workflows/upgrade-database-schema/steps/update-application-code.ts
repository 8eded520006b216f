import { z } from "zod";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";

export const CodeUpdate = z.object({
  needed: z.boolean(),
  version: z.string().nullable(),
  rolledOut: z.boolean(),
  why: z.array(z.string()),
});

/** Which statements the running Honua cannot ignore: a new NOT NULL column it does not write, a column it still reads. */
function codeImpact(safety: z.infer<typeof Safety>): string[] {
  const why: string[] = [];
  for (const s of safety.statements) {
    for (const o of s.ops) {
      if (o.expect.kind === "column" && o.expect.notNull) why.push(`${o.expect.table}.${o.expect.column} is NOT NULL now: every Honua write must set it`);
      if (o.expect.kind === "no-column") why.push(`${o.expect.table}.${o.expect.column} is gone: no Honua version in service may still read it`);
      if (o.expect.kind === "no-table") why.push(`${o.expect.name} is gone: no Honua version in service may still read it`);
    }
  }
  return why;
}

export const UpdateApplicationCode = defineStep({
  name: "UpdateApplicationCode",
  description: "Say whether the change needs a new Honua version (named in the deployment's database section); an index, an extension or a nullable column needs none",
  input: z.object({ safety: Safety }),
  output: CodeUpdate,
  prepare: (view) => ({ safety: view.output(ValidateMigrationSafety) }),
  async run(ctx, { safety }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const why = codeImpact(safety);
    const version = db.honuaVersion;
    if (!version) {
      const kinds = [...new Set(safety.statements.flatMap((s) => s.ops.map((o) => o.expect.kind)))].join(", ");
      const note = why.length ? why : [`the running Honua keeps working unchanged (${kinds}): it neither needs nor sees the change until it uses it`];
      return { output: { needed: false, version: null, rolledOut: false, why: note }, reason: why.length ? `no Honua version named; check: ${why.join("; ")}` : "no new Honua version needed" };
    }
    // This version of honua-agent records the version the change needs; it does not roll application images out.
    return {
      output: { needed: true, version, rolledOut: false, why: [...why, `the deployment names Honua ${version} for this change: roll it out after this run (honua-agent does not change application images in this version)`] },
      reason: `Honua ${version} is needed: not rolled out by honua-agent in this version; deploy it after the schema change`,
    };
  },
});
