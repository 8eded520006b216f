import { StorageParams } from "../../planner/plan.js";
import type { WorkflowDef } from "../step.js";
import { notYetAvailable } from "./planned.js";

const id = "add-storage-backend";
/** Workflow 18: add a raster storage backend (S3, Azure Blob, GCS, filesystem) with placement rules. */
export const addStorageBackend: WorkflowDef = {
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
};
