import type { WorkflowModule } from "../module.js";
import { schemaFacets } from "./facets.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { SchemaParams } from "./params.js";
import { schemaPreflight } from "./preflight.js";
import { cleanupSchema, rollbackSchema } from "./rollback.js";
import { AnalyzeCurrentSchema } from "./steps/analyze-current-schema.js";
import { ApplySchemaChanges } from "./steps/apply-schema-changes.js";
import { BackupDatabase } from "./steps/backup-database.js";
import { DesignSchemaChanges } from "./steps/design-schema-changes.js";
import { MonitorDatabasePerformance } from "./steps/monitor-database-performance.js";
import { RunRegressionTests } from "./steps/run-regression-tests.js";
import { UpdateApplicationCode } from "./steps/update-application-code.js";
import { UpdateDocumentation } from "./steps/update-documentation.js";
import { ValidateMigrationSafety } from "./steps/validate-migration-safety.js";
import { ValidateSchemaIntegrity } from "./steps/validate-schema-integrity.js";

/** Workflow 19: zero-downtime PostgreSQL/PostGIS schema change; a DROP is a delete gate. */
export const workflow: WorkflowModule = {
  summary: "change the database schema",
  capabilities: ["database", "metrics"],
  priority: 20,
  intent,
  tool,
  facets: schemaFacets,
  def: {
    id: "upgrade-database-schema",
    title: "Upgrade database schema",
    params: SchemaParams,
    steps: [
      AnalyzeCurrentSchema,
      DesignSchemaChanges,
      ValidateMigrationSafety,
      BackupDatabase,
      ApplySchemaChanges,
      ValidateSchemaIntegrity,
      UpdateApplicationCode,
      RunRegressionTests,
      MonitorDatabasePerformance,
      UpdateDocumentation,
    ],
    preflight: (deployment, adapters, params) => schemaPreflight(deployment, adapters, SchemaParams.parse(params)),
    rollback: rollbackSchema,
    cleanup: cleanupSchema,
  },
};
