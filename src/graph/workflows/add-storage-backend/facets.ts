import { latestOutput, type WorkflowFacets } from "../module.js";
import { bytes } from "./format.js";
import { DefineDataPlacementRules } from "./steps/define-data-placement-rules.js";
import { IdentifyStorageRequirement } from "./steps/identify-storage-requirement.js";
import { MonitorStoragePerformance } from "./steps/monitor-storage-performance.js";

/** The storage run as the fronts show it: the backend and placement chosen, the cost of what moved, the report. */
export const storageFacets: WorkflowFacets = {
  cost(steps) {
    const r = latestOutput(steps, IdentifyStorageRequirement);
    const p = latestOutput(steps, DefineDataPlacementRules);
    if (!r || !p || r.backend.monthlyUsdPerGb === null) return null;
    const gb = p.effect.bytes / 1024 ** 3;
    const added = gb * r.backend.monthlyUsdPerGb;
    const saved = r.move && r.current.monthlyUsdPerGb !== null ? gb * r.current.monthlyUsdPerGb : 0;
    const r4 = (x: number) => Number(x.toFixed(4));
    return { addedMonthlyUsd: r4(added), savingsMonthlyUsd: r4(saved), netMonthlyUsd: r4(added - saved), savingsOf: "storage tier", basis: `${bytes(p.effect.bytes)} at $${r.backend.monthlyUsdPerGb}/GB-month${r.move ? `, freed from ${r.current.backend ?? r.current.provider}` : " (sources kept)"}` };
  },
  design(steps) {
    const r = latestOutput(steps, IdentifyStorageRequirement);
    if (!r) return null;
    const p = latestOutput(steps, DefineDataPlacementRules);
    return `${r.backend.name}: ${r.target.kind} ${r.target.container}${r.target.region ? ` (${r.target.region})` : ""} as ${r.role === "primary" ? "Honua's storage" : "a storage tier"}; ${r.move ? "move" : "copy"} ${p ? `${p.effect.objects} objects (${bytes(p.effect.bytes)})` : r.accessPattern}; routing ${r.routing.stages.join(" -> ")}%.`;
  },
  report: (steps) => latestOutput(steps, MonitorStoragePerformance)?.markdown ?? null,
};
