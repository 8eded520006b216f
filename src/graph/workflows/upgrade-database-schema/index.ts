import type { WorkflowModule } from "../module.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { SchemaParams } from "./params.js";
import { hasDrop, notYetAvailable } from "../planned.js";

const id = "upgrade-database-schema";
/** Workflow 19: zero-downtime PostgreSQL/PostGIS schema change; a DROP is a delete gate. */
const def = {
  id,
  title: "Upgrade database schema",
  params: SchemaParams,
  unavailable: "the schema adapters (PostgreSQL analysis, backup, lock-safe DDL) are not in this version",
  steps: [
    notYetAvailable(id, "AnalyzeCurrentSchema"),
    notYetAvailable(id, "DesignSchemaChanges"),
    notYetAvailable(id, "ValidateMigrationSafety"),
    notYetAvailable(id, "BackupDatabase"),
    notYetAvailable(id, "ApplySchemaChanges", (view) => (hasDrop(view) ? "delete" : "provision")),
    notYetAvailable(id, "ValidateSchemaIntegrity"),
    notYetAvailable(id, "UpdateApplicationCode"),
    notYetAvailable(id, "RunRegressionTests"),
    notYetAvailable(id, "MonitorDatabasePerformance"),
    notYetAvailable(id, "UpdateDocumentation"),
  ],
  rollback: async () => ({ restored: [], leftovers: [] }),
} satisfies WorkflowModule["def"];

export const workflow: WorkflowModule = {
  summary: "change the database schema",
  capabilities: ["database", "metrics"],
  priority: 20,
  intent,
  tool,
  def,
};
