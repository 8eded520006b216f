import type { WorkflowModule } from "../module.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { MetadataParams } from "./params.js";
import { notYetAvailable } from "../planned.js";

const id = "modify-metadata-storage";
/** Workflow 17: move the metadata (STAC) catalog to another store, dual-writing, with gradual read cutover. */
const def = {
  id,
  title: "Modify metadata storage",
  params: MetadataParams,
  unavailable: "the metadata store adapters (copy, dual-write, read routing) are not in this version",
  steps: [
    notYetAvailable(id, "AnalyzeCurrentMetadataStore"),
    notYetAvailable(id, "SelectNewMetadataStore"),
    notYetAvailable(id, "ProvisionNewStore", "provision"),
    notYetAvailable(id, "DefineDataMapping"),
    notYetAvailable(id, "MigrateMetadataIncrementally"),
    notYetAvailable(id, "ValidateDataIntegrity"),
    notYetAvailable(id, "SwitchReadTrafficGradually", "traffic"),
    notYetAvailable(id, "MonitorNewStore"),
    notYetAvailable(id, "DisableOldStore", "delete"),
    notYetAvailable(id, "UpdateDocumentation"),
  ],
  rollback: async () => ({ restored: [], leftovers: [] }),
} satisfies WorkflowModule["def"];

export const workflow: WorkflowModule = {
  summary: "move the metadata store",
  capabilities: ["metadata", "metrics", "config", "traffic"],
  priority: 50,
  intent,
  tool,
  def,
};
