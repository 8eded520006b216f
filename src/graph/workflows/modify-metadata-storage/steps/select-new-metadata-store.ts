import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { ChangeSection } from "../../../../core/sections.js";
import { METADATA_READS, MetadataStoreKind } from "../../../../tools/metadata/types.js";
import { defineStep } from "../../../step.js";
import { MetadataParams } from "../params.js";
import { mappingOf, metadataOf } from "../stores.js";
import { Analysis, AnalyzeCurrentMetadataStore } from "./analyze-current-metadata-store.js";

export const Selection = z.object({
  target: z.object({ kind: MetadataStoreKind, location: z.string() }),
  reasons: z.array(z.string()),
  batchSize: z.number().int().positive(),
  stages: z.array(z.number().int().min(1).max(100)),
  readPath: z.object({ how: z.string(), config: z.record(z.string(), z.string()) }),
  /** The change capture's name on the source (also the copy cursor's): one per run. */
  capture: z.string(),
  mapping: ChangeSection,
});
export type Selection = z.infer<typeof Selection>;

/** The store to move to when none was named, with the reasons (full-text and spatial search, scale, cost). */
export function recommend(a: Analysis, available: readonly MetadataStoreKind[]): { kind: MetadataStoreKind; reasons: string[] } {
  const text = a.queryMix?.shares.text ?? 0;
  const search = available.find((k) => k === "opensearch" || k === "elasticsearch");
  if (search && (a.records > 5_000_000 || text > 0.3)) {
    return { kind: search, reasons: [`${a.records} records${text ? `, ${(text * 100).toFixed(0)}% free-text reads` : ""}: a search engine scales reads and ranks free text`, "costs a cluster beside PostgreSQL"] };
  }
  const pg = available.find((k) => k === "postgres");
  if (pg) {
    return { kind: pg, reasons: ["PostgreSQL with JSONB + GIN, PostGIS GiST and a full-text index serves id, collection, bbox, datetime and text reads", "Honua reads its catalog from PostgreSQL natively", `${a.records} records fit one database; no new service to run`] };
  }
  throw new AgentError("bad-input", `no target store to recommend: configure metadata.targets (have: ${available.join(", ") || "none"})`);
}

export const SelectNewMetadataStore = defineStep({
  name: "SelectNewMetadataStore",
  description: "Take the store named or recommend one (full-text and spatial search, scale, cost); settle batch size, read stages and how reads move",
  input: z.object({ params: MetadataParams, analysis: Analysis }),
  output: Selection,
  prepare: (view) => ({ params: MetadataParams.parse(view.params), analysis: view.output(AnalyzeCurrentMetadataStore) }),
  async run(ctx, { params, analysis }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const available = cap.targets.filter((k) => !(k === cap.sourceKind && cap.sourceKind !== "postgres"));
    let kind: MetadataStoreKind;
    let reasons: string[];
    if (params.toStore) {
      if (!cap.targets.includes(params.toStore)) throw new AgentError("bad-input", `${ctx.deployment} has no ${params.toStore} target configured (targets: ${cap.targets.join(", ") || "none"}): nothing was changed`);
      kind = params.toStore;
      reasons = [`${kind} was asked for`];
    } else ({ kind, reasons } = recommend(analysis, available));
    const target = cap.target(kind);
    if (target.describe() === analysis.store.location) throw new AgentError("in-place", `the catalog is already in ${target.describe()}: nothing to move`);
    const batchSize = params.batchSize ?? 1000;
    // A router that splits the metadata read paths moves reads in stages; without one they move whole, watched.
    const split = cap.splitReads;
    const stages = split ? [10, 50, 100] : [100];
    if (!split) reasons.push(`no traffic router splits ${METADATA_READS} on ${ctx.deployment}: reads move in one stage (100%), watched, rolled back on a regression`);
    const readPath = cap.readPath(kind);
    const out: Selection = {
      target: { kind, location: target.describe() },
      reasons: [...reasons, ...(params.batchSize ? [] : ["batch size 1000 (the default), adapted to a 2 s batch"])],
      batchSize,
      stages,
      readPath,
      capture: `honua_${ctx.run}`.replace(/[^A-Za-z0-9_]/g, "_"),
      mapping: mappingOf(analysis.store.kind, kind),
    };
    ctx.progress(`target: ${target.describe()} (${reasons[0]})`);
    return { output: out, reason: `${kind}: ${reasons.join("; ")}` };
  },
});
