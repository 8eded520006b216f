import { latestOutput, type WorkflowFacets } from "../module.js";
import { MigrateMetadataIncrementally } from "./steps/migrate-metadata-incrementally.js";
import { SelectNewMetadataStore } from "./steps/select-new-metadata-store.js";
import { AnalyzeCurrentMetadataStore } from "./steps/analyze-current-metadata-store.js";
import { UpdateDocumentation } from "./steps/update-documentation.js";

/** The metadata run as the fronts show it: from and to, how many records, the report. */
export const metadataFacets: WorkflowFacets = {
  design(steps) {
    const a = latestOutput(steps, AnalyzeCurrentMetadataStore);
    const s = latestOutput(steps, SelectNewMetadataStore);
    if (!a || !s) return null;
    const m = latestOutput(steps, MigrateMetadataIncrementally);
    return `${a.store.kind} -> ${s.target.kind} (${s.target.location}): ${m ? `${m.copied} records copied` : `${a.records} records`} in batches of ${s.batchSize}; reads ${s.stages.join(" -> ")}%.`;
  },
  report: (steps) => latestOutput(steps, UpdateDocumentation)?.markdown ?? null,
};
