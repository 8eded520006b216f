import { z } from "zod";
import type { Effect } from "../../../../core/journal.js";
import { KEYS_LEFTOVER } from "../../../rollback.js";
import { defineStep } from "../../../step.js";
import { ProvisionCacheInfrastructure } from "./provision-cache-infrastructure.js";

export const WarmCache = defineStep({
  name: "WarmCache",
  description: "Pre-load the most requested tiles through Honua's tile-operations warm job",
  input: z.object({
    layers: z.array(z.object({ layerId: z.string(), tileMatrixSetId: z.string(), minZoom: z.number(), maxZoom: z.number() })),
    maxTilesPerLayer: z.number(),
    /** Keys written into a cache the run created go with it; into one it adopted, they are the run's to delete. */
    cacheCreated: z.boolean().default(true),
  }),
  output: z.object({ jobs: z.array(z.object({ layerId: z.string(), jobId: z.string(), tiles: z.number() })), tilesWarmed: z.number() }),
  prepare: (view) => ({ layers: [], maxTilesPerLayer: 20_000, cacheCreated: view.output(ProvisionCacheInfrastructure).resource.created }),
  async run(ctx, input) {
    const popular = await ctx.adapters.tiles.popularTiles(30);
    const byLayer = new Map<string, { tileMatrixSetId: string; zooms: number[] }>();
    for (const t of popular) {
      const e = byLayer.get(t.layerId) ?? { tileMatrixSetId: t.tileMatrixSetId, zooms: [] };
      e.zooms.push(t.z);
      byLayer.set(t.layerId, e);
    }
    const layers = input.layers.length ? input.layers : [...byLayer.entries()].slice(0, 4).map(([layerId, e]) => ({ layerId, tileMatrixSetId: e.tileMatrixSetId, minZoom: Math.min(...e.zooms), maxZoom: Math.max(...e.zooms) }));
    const jobs = [];
    for (const l of layers) {
      const own = !input.cacheCreated;
      const keys = (id: string | null, description: string, deletes?: string): Effect => ({ kind: "resource", capability: "tiles", id, resourceKind: KEYS_LEFTOVER, description, created: true, ...(deletes ? { deletes } : {}) });
      const { key } = await ctx.journal.intend(l.layerId, own ? [keys(null, `tile keys warmed for ${l.layerId}`)] : []);
      const res = await ctx.adapters.tiles.submitJob({ operation: "warm", ...l, maxTiles: input.maxTilesPerLayer }, key, (m) => ctx.progress(`${l.layerId}: ${m}`));
      const left = own ? ((await ctx.adapters.tiles.written?.(key)) ?? null) : null;
      await ctx.journal.done(l.layerId, left ? [keys(key, left.description, left.deletes)] : []);
      jobs.push({ layerId: l.layerId, jobId: res.jobId, tiles: res.tilesProcessed });
    }
    const tilesWarmed = jobs.reduce((a, j) => a + j.tiles, 0);
    return { output: { jobs, tilesWarmed }, reason: `${tilesWarmed} tiles warmed in ${jobs.length} ${jobs.length === 1 ? "layer" : "layers"}` };
  },
});
