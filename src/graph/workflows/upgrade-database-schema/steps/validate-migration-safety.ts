import { z } from "zod";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";
import { PlannedStatement, planStatements } from "../safety.js";
import { Designed, DesignSchemaChanges } from "./design-schema-changes.js";

export const Safety = z.object({
  statements: z.array(PlannedStatement).min(1),
  destructive: z.boolean(),
  rewrites: z.number().int(),
  warnings: z.array(z.string()),
});

export const ValidateMigrationSafety = defineStep({
  name: "ValidateMigrationSafety",
  description: "Parse each statement with PostgreSQL's parser, lint it with squawk, name its lock and estimate it at the table's size, rewrite unsafe forms; refuse what it cannot run safely",
  input: z.object({ designed: Designed }),
  output: Safety,
  prepare: (view) => ({ designed: view.output(DesignSchemaChanges) }),
  async run(ctx, { designed }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const snap = await db.introspect();
    const statements = await planStatements(db, designed.statements, snap);
    const warnings = snap.longTransactions.map((t) => `a transaction has been open ${t.seconds}s (pid ${t.pid}); CONCURRENTLY builds wait for it`);
    const rewrites = statements.filter((s) => s.rewritten).length;
    return {
      output: { statements, destructive: statements.some((s) => s.destructive), rewrites, warnings },
      reason: `${statements.length} statement(s), ${rewrites} rewritten to a safe form; strongest lock ${statements.map((s) => s.strongestLock).sort().at(-1)}`,
    };
  },
});
