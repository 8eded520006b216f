import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { MetricsSummary } from "../../../../core/metrics.js";
import { noDataHint } from "../../../../tools/metrics/no-data.js";
import { snapshot } from "../../../../tools/metrics/observe.js";
import { BackendKind, BackendTarget, STORAGE_ROUTING, StorageSettings } from "../../../../tools/storage/types.js";
import { defineStep } from "../../../step.js";
import { chooseBackend, routingSplits, settingsFor, storageOf } from "../backends.js";
import { Criteria, criteriaOf, describeMatch, rulesOf, takesEverything } from "../placement.js";
import { StorageParams } from "../params.js";

/** What the run understood and decided: every later step builds on this, never on the request's words. */
export const Requirement = z.object({
  backend: z.object({ name: z.string(), kind: BackendKind, provider: z.string(), notes: z.array(z.string()), monthlyUsdPerGb: z.number().nullable() }),
  target: BackendTarget,
  current: z.object({ backend: z.string().nullable(), provider: z.string(), container: z.string().nullable(), monthlyUsdPerGb: z.number().nullable() }),
  criteria: Criteria,
  /** primary: Honua's FileStorage moves to the new backend (everything placed there); tier: only the placed data moves. */
  role: z.enum(["primary", "tier"]),
  move: z.boolean(),
  dataType: z.string(),
  accessPattern: z.string(),
  residency: z.string().nullable(),
  settings: StorageSettings,
  /** Honua's FileStorage keys for the new backend (values are references, never secrets). */
  honuaKeys: z.record(z.string(), z.string()),
  routing: z.object({ feature: z.string(), stages: z.array(z.number().int().min(1).max(100)), split: z.boolean() }),
  baseline: MetricsSummary,
  notes: z.array(z.string()),
});
export type Requirement = z.infer<typeof Requirement>;

export const IdentifyStorageRequirement = defineStep({
  name: "IdentifyStorageRequirement",
  description: "State the requirement understood (data, access pattern, residency), choose the backend and where it points, measure the baseline",
  input: z.object({ params: StorageParams, lookbackMinutes: z.number().positive() }),
  output: Requirement,
  prepare: (view) => ({ params: StorageParams.parse(view.params), lookbackMinutes: 60 }),
  async run(ctx, { params: p, lookbackMinutes }) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const chosen = chooseBackend(storage, await ctx.adapters.config.read(), p, ctx.deployment);
    const m = ctx.deploymentConfig.monitoring;
    const baseline = await snapshot(ctx.adapters, lookbackMinutes, m.sampleEveryMinutes);
    if (baseline.samples < m.minSamples || baseline.p95Ms === null) {
      const hint = baseline.samples === 0 ? ` ${noDataHint(ctx.adapters.metrics.describe?.() ?? ctx.deployment)}` : "";
      throw new AgentError("failed", `no baseline: ${baseline.samples} metric samples in the last ${lookbackMinutes} min (need ${m.minSamples}); routing to the new backend cannot be judged without one. Check the metrics source.${hint}`);
    }
    const assets = await storage.catalog.assets();
    const collections = [...new Set(assets.map((a) => a.collection))];
    const criteria = criteriaOf(p.placement ?? null, p.region ?? null, collections, ctx.adapters.clock.now());
    const move = p.move ?? /\bmove\b/i.test(p.placement ?? "");
    const rule = rulesOf(criteria, chosen.backend.name, move)[0]!;
    const role: "primary" | "tier" = takesEverything(rule.match) ? "primary" : "tier";
    const split = routingSplits(ctx.deploymentConfig, ctx.adapters.provider);
    const notes = [...chosen.notes, ...chosen.backend.notes];
    if (!split) notes.push(`no traffic router moves ${STORAGE_ROUTING} on ${ctx.deployment}: routing switches in one stage (100%), watched, and rolls back on a regression`);
    notes.push(role === "primary"
      ? `Honua's FileStorage provider moves to ${chosen.backend.name} (${chosen.backend.provider}) at the routing step: new files go there, and every existing asset is copied first`
      : `Honua has one FileStorage provider and cannot route per dataset: the agent routes per item instead, by rewriting the placed assets' STAC hrefs to ${chosen.backend.name}; Honua's provider stays ${chosen.current.provider} for new files`);
    return {
      output: {
        backend: { name: chosen.backend.name, kind: chosen.backend.kind, provider: chosen.backend.provider, notes: chosen.backend.notes, monthlyUsdPerGb: chosen.backend.monthlyUsdPerGb },
        target: chosen.target,
        current: { backend: chosen.current.info?.name ?? null, provider: chosen.current.provider, container: chosen.current.container, monthlyUsdPerGb: chosen.current.info?.monthlyUsdPerGb ?? null },
        criteria,
        role,
        move,
        dataType: "rasters (STAC item assets: COGs, GeoTIFFs, thumbnails)",
        accessPattern: criteria.access ? `${criteria.access} data` : criteria.olderThanDays ? `data older than ${criteria.olderThanDays} days` : "as today",
        residency: criteria.regions ? `${criteria.regions.map((r) => r.toUpperCase()).join(", ")} data in ${chosen.target.region ?? chosen.target.container}` : null,
        settings: settingsFor(chosen.backend),
        honuaKeys: chosen.backend.honuaKeys(chosen.target.container),
        routing: { feature: STORAGE_ROUTING, stages: split ? [10, 50, 100] : [100], split },
        baseline,
        notes,
      },
      reason: `${chosen.backend.kind} ${chosen.target.container} (${chosen.backend.name}) as ${role === "primary" ? "Honua's storage" : "a tier"} for ${describeMatch(rule.match)}; ${move ? "move" : "copy"}`,
      metrics: { before: baseline },
    };
  },
});
