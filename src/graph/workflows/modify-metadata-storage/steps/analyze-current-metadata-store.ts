import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { MetricsSummary } from "../../../../core/metrics.js";
import { noDataHint } from "../../../../tools/metrics/no-data.js";
import { snapshot } from "../../../../tools/metrics/observe.js";
import { MetadataStoreKind, QueryMix } from "../../../../tools/metadata/types.js";
import { defineStep } from "../../../step.js";
import { MetadataParams } from "../params.js";
import { metadataOf } from "../stores.js";

export const Analysis = z.object({
  store: z.object({ kind: MetadataStoreKind, location: z.string() }),
  records: z.number().int(),
  bytes: z.number(),
  collections: z.array(z.object({ id: z.string(), records: z.number().int() })),
  queryMix: QueryMix.nullable(),
  queryMixNote: z.string(),
  captureMethod: z.string().nullable(),
  baseline: MetricsSummary,
});
export type Analysis = z.infer<typeof Analysis>;

export const AnalyzeCurrentMetadataStore = defineStep({
  name: "AnalyzeCurrentMetadataStore",
  description: "Measure the current metadata store: records, bytes, collections, the query mix from its own statistics, and Honua's serving baseline",
  input: z.object({ params: MetadataParams, lookbackMinutes: z.number().positive() }),
  output: Analysis,
  prepare: (view) => ({ params: MetadataParams.parse(view.params), lookbackMinutes: 60 }),
  async run(ctx, { params, lookbackMinutes }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    await cap.ready?.();
    if (params.fromStore && params.fromStore !== cap.sourceKind) {
      throw new AgentError("bad-input", `${ctx.deployment}'s catalog is in ${cap.sourceKind}, not ${params.fromStore}: nothing was changed`);
    }
    const source = cap.source();
    const m = await source.measure();
    const mon = ctx.deploymentConfig.monitoring;
    const baseline = await snapshot(ctx.adapters, lookbackMinutes, mon.sampleEveryMinutes);
    if (baseline.samples < mon.minSamples || baseline.p95Ms === null) {
      const hint = baseline.samples === 0 ? ` ${noDataHint(ctx.adapters.metrics.describe?.() ?? ctx.deployment)}` : "";
      throw new AgentError("failed", `no baseline: ${baseline.samples} metric samples in the last ${lookbackMinutes} min (need ${mon.minSamples}); the read cutover cannot be judged without one.${hint}`);
    }
    const queryMixNote = m.queryMix
      ? `${m.queryMix.source}: ${Object.entries(m.queryMix.shares).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`).join(", ") || "no reads yet"}`
      : `${source.kind === "postgres" ? "pg_stat_statements is not installed (or not preloaded) on the catalog database" : `${source.kind} keeps no query statistics`}: the mix is judged from Honua's STAC request metrics instead`;
    ctx.progress(`${source.describe()}: ${m.records} records, ${m.bytes} bytes, ${m.collections.length} collections; ${queryMixNote}`);
    return {
      output: { store: { kind: source.kind, location: source.describe() }, records: m.records, bytes: m.bytes, collections: m.collections, queryMix: m.queryMix, queryMixNote, captureMethod: source.capture?.method ?? null, baseline },
      reason: `${m.records} records in ${m.collections.length} collections on ${source.describe()}`,
      metrics: { before: baseline },
    };
  },
});
