import type { WorkflowModule } from "../module.js";
import { metadataFacets } from "./facets.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { MetadataParams } from "./params.js";
import { cleanupMetadata, rollbackMetadata } from "./rollback.js";
import { AnalyzeCurrentMetadataStore } from "./steps/analyze-current-metadata-store.js";
import { DefineDataMapping } from "./steps/define-data-mapping.js";
import { DisableOldStore } from "./steps/disable-old-store.js";
import { MigrateMetadataIncrementally } from "./steps/migrate-metadata-incrementally.js";
import { MonitorNewStore } from "./steps/monitor-new-store.js";
import { ProvisionNewStore } from "./steps/provision-new-store.js";
import { SelectNewMetadataStore } from "./steps/select-new-metadata-store.js";
import { SwitchReadTrafficGradually } from "./steps/switch-read-traffic-gradually.js";
import { UpdateDocumentation } from "./steps/update-documentation.js";
import { ValidateDataIntegrity } from "./steps/validate-data-integrity.js";

/** Workflow 17: move the STAC metadata catalog to another store: change capture, resumable batch copy, proven integrity, staged read cutover, verified backup before the old store goes. */
export const workflow: WorkflowModule = {
  summary: "move the metadata store",
  capabilities: ["metadata", "metrics", "config", "traffic"],
  priority: 50,
  intent,
  tool,
  facets: metadataFacets,
  def: {
    id: "modify-metadata-storage",
    title: "Modify metadata storage",
    params: MetadataParams,
    steps: [
      AnalyzeCurrentMetadataStore,
      SelectNewMetadataStore,
      ProvisionNewStore,
      DefineDataMapping,
      MigrateMetadataIncrementally,
      ValidateDataIntegrity,
      SwitchReadTrafficGradually,
      MonitorNewStore,
      DisableOldStore,
      UpdateDocumentation,
    ],
    rollback: rollbackMetadata,
    cleanup: cleanupMetadata,
  },
};
