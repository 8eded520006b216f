import type { WorkflowModule } from "../module.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { StorageParams } from "./params.js";
import { notYetAvailable } from "../planned.js";

const id = "add-storage-backend";
/** Workflow 18: add a raster storage backend (S3, Azure Blob, GCS, filesystem) with placement rules. */
const def = {
  id,
  title: "Add storage backend",
  params: StorageParams,
  unavailable: "the storage backend adapters (S3, Azure Blob, GCS, filesystem) are not in this version",
  steps: [
    notYetAvailable(id, "IdentifyStorageRequirement"),
    notYetAvailable(id, "ProvisionStorageBackend", "provision"),
    notYetAvailable(id, "ConfigureStorageProvider"),
    notYetAvailable(id, "TestStorageConnectivity"),
    notYetAvailable(id, "DefineDataPlacementRules"),
    notYetAvailable(id, "MigrateExistingData"),
    notYetAvailable(id, "UpdateCatalogReferences"),
    notYetAvailable(id, "ValidateDataAccess"),
    notYetAvailable(id, "EnableMultiStorageRouting", "traffic"),
    notYetAvailable(id, "MonitorStoragePerformance"),
  ],
  rollback: async () => ({ restored: [], leftovers: [] }),
} satisfies WorkflowModule["def"];

export const workflow: WorkflowModule = {
  summary: "add a storage backend",
  capabilities: ["storage", "metrics", "config", "traffic"],
  priority: 40,
  intent,
  tool,
  def,
};
