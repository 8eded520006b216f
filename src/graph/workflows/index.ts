import type { WorkflowId } from "../../planner/plan.js";
import type { WorkflowDef } from "../step.js";
import { addCachingLayer } from "./add-caching-layer.js";
import { addStorageBackend } from "./add-storage-backend.js";
import { modifyMetadataStorage } from "./modify-metadata-storage.js";
import { modifyObservability } from "./modify-observability.js";
import { upgradeDatabaseSchema } from "./upgrade-database-schema.js";

export const WORKFLOWS: Record<WorkflowId, WorkflowDef> = {
  "add-caching-layer": addCachingLayer,
  "modify-metadata-storage": modifyMetadataStorage,
  "add-storage-backend": addStorageBackend,
  "upgrade-database-schema": upgradeDatabaseSchema,
  "modify-observability": modifyObservability,
};
