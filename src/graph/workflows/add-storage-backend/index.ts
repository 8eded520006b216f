import type { WorkflowModule } from "../module.js";
import { storagePreflight } from "./backends.js";
import { storageFacets } from "./facets.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { StorageParams } from "./params.js";
import { cleanupStorage, rollbackStorage } from "./rollback.js";
import { ConfigureStorageProvider } from "./steps/configure-storage-provider.js";
import { DefineDataPlacementRules } from "./steps/define-data-placement-rules.js";
import { EnableMultiStorageRouting } from "./steps/enable-multi-storage-routing.js";
import { IdentifyStorageRequirement } from "./steps/identify-storage-requirement.js";
import { MigrateExistingData } from "./steps/migrate-existing-data.js";
import { MonitorStoragePerformance } from "./steps/monitor-storage-performance.js";
import { ProvisionStorageBackend } from "./steps/provision-storage-backend.js";
import { TestStorageConnectivity } from "./steps/test-storage-connectivity.js";
import { UpdateCatalogReferences } from "./steps/update-catalog-references.js";
import { ValidateDataAccess } from "./steps/validate-data-access.js";

/** Workflow 18: add a raster storage backend (S3, Azure Blob, GCS, filesystem) with placement rules, a verified copy and gated routing. */
export const workflow: WorkflowModule = {
  summary: "add a storage backend",
  capabilities: ["storage", "metrics", "config", "traffic"],
  priority: 40,
  intent,
  tool,
  facets: storageFacets,
  def: {
    id: "add-storage-backend",
    title: "Add storage backend",
    params: StorageParams,
    steps: [
      IdentifyStorageRequirement,
      ProvisionStorageBackend,
      ConfigureStorageProvider,
      TestStorageConnectivity,
      DefineDataPlacementRules,
      MigrateExistingData,
      UpdateCatalogReferences,
      ValidateDataAccess,
      EnableMultiStorageRouting,
      MonitorStoragePerformance,
    ],
    preflight: (deployment, adapters, params) => storagePreflight(deployment, adapters, StorageParams.parse(params)),
    rollback: rollbackStorage,
    cleanup: cleanupStorage,
  },
};
