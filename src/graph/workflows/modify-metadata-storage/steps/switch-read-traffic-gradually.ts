import { z } from "zod";
import type { ChangeSection } from "../../../../core/sections.js";
import { metadataSignal } from "../../../../tools/metadata/signal.js";
import { catchUp, compareStores } from "../../../../tools/metadata/sync.js";
import { METADATA_READS, MetadataStoreKind, SampleQuery } from "../../../../tools/metadata/types.js";
import { applyConfig } from "../../../patterns/config.js";
import { stagedShift } from "../../../patterns/staged-shift.js";
import type { StepContext } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { AnalyzeCurrentMetadataStore } from "./analyze-current-metadata-store.js";
import { SelectNewMetadataStore } from "./select-new-metadata-store.js";
import { mismatchError, validationTable, ValidateDataIntegrity } from "./validate-data-integrity.js";

export const Watch = z.object({ kind: MetadataStoreKind, capture: z.string(), queries: z.array(SampleQuery), newP95Ms: z.number().nullable(), config: z.record(z.string(), z.string()), rangeSize: z.number().int() });
export type Watch = z.infer<typeof Watch>;

/** The latest writes applied, then the whole comparison again: what a stage's card shows and what blocks it. */
export async function recheck(ctx: StepContext, w: Watch) {
  const cap = metadataOf(ctx.adapters, ctx.deployment);
  const source = cap.source();
  const target = cap.target(w.kind);
  const caught = await catchUp(source, target, w.capture);
  const c = await compareStores(source, target, { queries: w.queries, rangeSize: w.rangeSize, capture: w.capture });
  const probe = await cap.probe(target, w.queries);
  return { c, caught, probe };
}

export const SwitchReadTrafficGradually = stagedShift({
  name: "SwitchReadTrafficGradually",
  description: "Move the share of STAC/metadata reads served from the new store stage by stage (a traffic gate before each, the stores compared again first), watching its read latency and errors",
  feature: () => METADATA_READS,
  stages: (view) => view.output(SelectNewMetadataStore).stages,
  baseline: (view) => view.output(AnalyzeCurrentMetadataStore).baseline,
  what: (view) => `the new ${view.output(SelectNewMetadataStore).target.kind} store (${view.output(SelectNewMetadataStore).target.location}) for STAC reads`,
  why: (view) => {
    const s = view.output(SelectNewMetadataStore);
    return [`How reads move: ${s.readPath.how}.`, "Writes keep going to the old store and reach the new one through change capture until the old store is retired."];
  },
  watch: (view): Watch => {
    const s = view.output(SelectNewMetadataStore);
    const v = view.output(ValidateDataIntegrity);
    return { kind: s.target.kind, capture: s.capture, queries: v.queries, newP95Ms: v.newP95Ms, config: s.readPath.config, rangeSize: Math.max(100, s.batchSize) };
  },
  signals: (_ctx, watch) => {
    const w = Watch.parse(watch);
    return [metadataSignal(w.kind, w.queries, w.newP95Ms)];
  },
  async beforeStage(ctx, percent, watch) {
    const { c } = await recheck(ctx, Watch.parse(watch));
    if (!c.ok) throw mismatchError(c, `before moving ${percent}% of reads`);
  },
  async onStage(ctx, percent, watch) {
    const w = Watch.parse(watch);
    // At 100% Honua itself reads the new store where it can (PostgreSQL: its connection reference); journalled, rolled back.
    if (percent === 100 && Object.keys(w.config).length) await applyConfig(ctx, w.config, "read-path");
    // Search engines: the read alias is pointed at the new index in one atomic flip; a rollback points it back.
    const alias = percent === 100 ? metadataOf(ctx.adapters, ctx.deployment).target(w.kind).readAlias : undefined;
    if (alias) {
      const before = await alias.current();
      const after = [alias.own()];
      await ctx.journal.intend("read-alias", [{ kind: "restore", capability: "metadata", target: `alias:${w.kind}`, before: JSON.stringify(before), after: JSON.stringify(after) }]);
      await alias.point(after);
      await ctx.journal.done("read-alias");
      ctx.progress(`read alias ${alias.name()} -> ${after.join(", ")} (was ${before.length ? before.join(", ") : "not set"})`);
    }
  },
  async sections(ctx, view, percent): Promise<ChangeSection[]> {
    const s = view.output(SelectNewMetadataStore);
    const v = view.output(ValidateDataIntegrity);
    const { c, caught, probe } = await recheck(ctx, { kind: s.target.kind, capture: s.capture, queries: v.queries, newP95Ms: v.newP95Ms, config: s.readPath.config, rangeSize: Math.max(100, s.batchSize) });
    const rate = c.sourceCount ? c.mismatchCount / c.sourceCount : 0;
    return [
      {
        kind: "table",
        title: `Before ${percent}% of reads move`,
        columns: ["figure", "value"],
        rows: [
          ["mismatch rate", `${(rate * 100).toFixed(3)}% (${c.mismatchCount} of ${c.sourceCount} records)`],
          ["new store read p95", probe.p95Ms === null ? "no reading" : `${probe.p95Ms} ms (at validation ${v.newP95Ms ?? "n/a"} ms, old store ${v.oldP95Ms ?? "n/a"} ms)`],
          ["captured writes applied now", caught.applied],
        ],
      },
      validationTable(c, "Stores compared again"),
    ];
  },
});
