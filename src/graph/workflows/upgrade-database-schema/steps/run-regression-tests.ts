import { z } from "zod";
import { slowerThan } from "../../../../core/monitoring.js";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";
import { AnalyzeCurrentSchema, SchemaSummary } from "./analyze-current-schema.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";

export const Regression = z.object({
  queries: z.array(z.object({ name: z.string(), beforeMs: z.number().nullable(), afterMs: z.number().nullable(), error: z.string().nullable(), regressed: z.boolean() })),
  explains: z.array(z.object({ index: z.string(), query: z.string(), uses: z.boolean(), usableWhenPreferred: z.boolean(), plan: z.string() })),
  failures: z.array(z.string()),
});

export const RunRegressionTests = defineStep({
  name: "RunRegressionTests",
  description: "Run the deployment's smoke queries against their timings before the change; check with EXPLAIN that the target queries use the new indexes",
  input: z.object({ before: SchemaSummary, safety: Safety }),
  output: Regression,
  prepare: (view) => ({ before: view.output(AnalyzeCurrentSchema), safety: view.output(ValidateMigrationSafety) }),
  async run(ctx, { before, safety }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const m = ctx.deploymentConfig.monitoring;
    const factor = m.latencyFactor;
    const failures: string[] = [];
    const queries = [];
    for (const q of db.smokeQueries) {
      const b = before.smoke.find((x) => x.name === q.name)?.ms ?? null;
      try {
        const a = await db.time(q.sql, 3);
        const regressed = slowerThan(a, b, m);
        if (regressed) failures.push(`${q.name}: ${a} ms after vs ${b} ms before (> x${factor} and > +${m.latencyMinDeltaMs} ms)`);
        queries.push({ name: q.name, beforeMs: b, afterMs: a, error: null, regressed });
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        failures.push(`${q.name} fails now: ${error}`);
        queries.push({ name: q.name, beforeMs: b, afterMs: null, error, regressed: true });
      }
    }
    // Each new index against the smoke queries that name its table and column (or that name it as their expected index).
    const explains = [];
    for (const o of safety.statements.flatMap((s) => s.ops)) {
      if (o.expect.kind !== "index") continue;
      const idx = o.expect;
      const col = /\(([^)]*)\)\s*$/.exec(o.sql)?.[1]?.replace(/"/g, "").split(",")[0]?.trim() ?? "";
      const targets = db.smokeQueries.filter((q) => q.expectIndex === idx.name || (q.expectIndex === undefined && new RegExp(`\\b${idx.table}\\b`, "i").test(q.sql) && col !== "" && new RegExp(`\\b${col}\\b`, "i").test(q.sql)));
      for (const q of targets) {
        const plain = await db.explain(q.sql);
        const uses = plain.indexes.includes(idx.name);
        const preferred = uses ? plain : await db.explain(q.sql, { preferIndexes: true });
        const usable = preferred.indexes.includes(idx.name);
        if (q.expectIndex === idx.name && !uses) failures.push(`${q.name} does not use ${idx.name}${usable ? " (usable, but the planner prefers another plan at this size)" : ""}`);
        else if (!usable) failures.push(`${q.name} cannot use ${idx.name} even with sequential scans off`);
        explains.push({ index: idx.name, query: q.name, uses, usableWhenPreferred: usable, plan: preferred.plan.slice(0, 2000) });
      }
    }
    const output = { queries, explains, failures };
    if (failures.length) return { output, verdict: "degraded" as const, reason: `regression: ${failures.join("; ")}` };
    return { output, reason: `${queries.length} smoke query(ies) as fast as before; ${explains.filter((e) => e.uses).length} of ${explains.length} target plan(s) use the new index` };
  },
});
