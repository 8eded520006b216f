import type { ChangeSection } from "../../../../core/sections.js";
import { storageSignal, type WatchedBackend } from "../../../../tools/storage/signal.js";
import { applyConfig } from "../../../patterns/config.js";
import { stagedShift } from "../../../patterns/staged-shift.js";
import { storageOf } from "../backends.js";
import { DefineDataPlacementRules } from "./define-data-placement-rules.js";
import { IdentifyStorageRequirement } from "./identify-storage-requirement.js";
import { ValidateDataAccess } from "./validate-data-access.js";

interface Watch {
  backends: WatchedBackend[];
  /** Honua's FileStorage provider switch at 100% (the new backend becomes Honua's storage), or null (a tier). */
  provider: Record<string, string> | null;
}

export const EnableMultiStorageRouting = stagedShift({
  name: "EnableMultiStorageRouting",
  description: "Route storage traffic to the new backend stage by stage (a traffic gate before each), watching per-backend reads and Honua's serving metrics",
  feature: (view) => view.output(IdentifyStorageRequirement).routing.feature,
  stages: (view) => view.output(IdentifyStorageRequirement).routing.stages,
  baseline: (view) => view.output(IdentifyStorageRequirement).baseline,
  what: (view) => {
    const r = view.output(IdentifyStorageRequirement);
    return `${r.backend.name} (${r.target.kind} ${r.target.container})`;
  },
  why: (view) => {
    const r = view.output(IdentifyStorageRequirement);
    return [
      r.role === "primary"
        ? `At 100% Honua's FileStorage provider becomes ${r.backend.provider} (${r.target.container}).`
        : `Honua cannot route per dataset: the placed items already point at ${r.target.container} through their hrefs (what the agent does instead); Honua's provider stays ${r.current.provider}.`,
      ...r.notes,
    ];
  },
  watch: (view): Watch => {
    const r = view.output(IdentifyStorageRequirement);
    const { FileStorage__Provider: provider, ...rest } = r.honuaKeys;
    return {
      backends: view.output(ValidateDataAccess).watch,
      provider: r.role === "primary" ? { ...(r.current.provider === r.backend.provider ? rest : {}), FileStorage__Provider: provider! } : null,
    };
  },
  signals: (ctx, watch) => [storageSignal(storageOf(ctx.adapters, ctx.deployment), (watch as Watch).backends)],
  async onStage(ctx, percent, watch) {
    const w = watch as Watch;
    if (percent === 100 && w.provider) await applyConfig(ctx, w.provider, "provider");
  },
  async sections(_ctx, view): Promise<ChangeSection[]> {
    return [view.output(DefineDataPlacementRules).table, view.output(ValidateDataAccess).table];
  },
});
