import { latestOutput, type WorkflowFacets } from "../module.js";
import { UpdateDocumentation } from "./steps/update-documentation.js";
import { ValidateMigrationSafety } from "./steps/validate-migration-safety.js";

export const schemaFacets: WorkflowFacets = {
  design(steps) {
    const s = latestOutput(steps, ValidateMigrationSafety);
    if (!s) return null;
    return `${s.statements.length} statement(s)${s.rewrites ? `, ${s.rewrites} rewritten` : ""}: ${s.statements.map((x) => (x.rewritten ?? x.original).split("\n")[0]).join("; ")}`;
  },
  report: (steps) => latestOutput(steps, UpdateDocumentation)?.markdown ?? null,
};
