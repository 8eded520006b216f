import { latestOutput, type WorkflowFacets } from "../module.js";
import { DesignObservabilityChanges } from "./steps/design-observability-changes.js";
import { DocumentChanges } from "./steps/document-changes.js";

export const observabilityFacets: WorkflowFacets = {
  design(steps) {
    const d = latestOutput(steps, DesignObservabilityChanges);
    return d ? d.summary.join("; ") : null;
  },
  report: (steps) => latestOutput(steps, DocumentChanges)?.markdown ?? null,
};
