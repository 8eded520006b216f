import { z } from "zod";
import { defineStep } from "../../../step.js";
import { Applied, ApplySchemaChanges } from "./apply-schema-changes.js";
import { BackupDatabase } from "./backup-database.js";
import { CodeUpdate, UpdateApplicationCode } from "./update-application-code.js";
import { Regression, RunRegressionTests } from "./run-regression-tests.js";
import { MonitorDatabasePerformance, Watched } from "./monitor-database-performance.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";
import { BackupResult } from "../../../../tools/database/types.js";

export const Documented = z.object({ markdown: z.string(), inverse: z.array(z.string()) });

export const UpdateDocumentation = defineStep({
  name: "UpdateDocumentation",
  description: "Write the migration note: each statement as given and as run, its lock, outcome and inverse, the backup, regression and monitoring results",
  input: z.object({ safety: Safety, applied: Applied, backup: BackupResult, code: CodeUpdate, regression: Regression, watched: Watched }),
  output: Documented,
  prepare: (view) => ({
    safety: view.output(ValidateMigrationSafety), applied: view.output(ApplySchemaChanges), backup: view.output(BackupDatabase),
    code: view.output(UpdateApplicationCode), regression: view.output(RunRegressionTests), watched: view.output(MonitorDatabasePerformance),
  }),
  async run(ctx, { safety, applied, backup, code, regression, watched }) {
    const inverse = [...safety.statements].reverse().flatMap((s) => [...s.ops].reverse().map((o) => (o.inverse.kind === "impossible" ? `-- cannot be undone: ${o.inverse.why}` : `${o.inverse.sql};`)));
    const lines = [
      `# Schema change on ${ctx.deployment} (run ${ctx.run})`,
      "",
      "## Statements",
      ...safety.statements.flatMap((s, i) => [
        `${i + 1}. \`${s.original}\`${s.source === "template" ? " (from a template)" : ""}`,
        ...(s.rewritten ? [`   - ran as: \`${s.rewritten.replace(/\n/g, " ")}\``] : []),
        `   - lock: ${s.lock}`,
        ...(s.estimate ? [`   - estimate: ${s.estimate}`] : []),
        ...applied.ops.filter((o) => o.statement === i).map((o) => `   - ${o.result?.outcome ?? o.status}: ${o.sql}${o.result ? ` (${o.result.attempts} attempt(s), ${o.result.lockTimeouts} lock timeout(s), ${Math.round(o.result.ms)} ms)` : ""}`),
      ]),
      "",
      "## Inverse (newest first)",
      "```sql",
      ...inverse,
      "```",
      "",
      `## Backup\n${backup.location} (${backup.mode}, ${backup.bytes} bytes; ${backup.verifiedBy}; ${backup.command})`,
      "",
      `## Application\n${code.needed ? `needs Honua ${code.version}` : "no new Honua version needed"}: ${code.why.join("; ")}`,
      "",
      "## Regression",
      ...regression.queries.map((q) => `- ${q.name}: ${q.beforeMs ?? "?"} ms before, ${q.afterMs ?? "failed"} ms after`),
      ...regression.explains.map((e) => `- EXPLAIN ${e.query}: ${e.uses ? "uses" : e.usableWhenPreferred ? "can use (not chosen at this size)" : "does not use"} ${e.index}`),
      "",
      `## Monitoring (${watched.minutes} min)\n${watched.verdict}: ${watched.reason}`,
    ];
    return { output: { markdown: lines.join("\n"), inverse }, reason: `migration note written (${inverse.length} inverse statement(s))` };
  },
});
