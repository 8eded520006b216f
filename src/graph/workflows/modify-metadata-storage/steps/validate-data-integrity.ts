import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { ChangeSection } from "../../../../core/sections.js";
import { catchUp, Comparison, compareStores, sampleQueries } from "../../../../tools/metadata/sync.js";
import { SampleQuery } from "../../../../tools/metadata/types.js";
import { defineStep } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { MigrateMetadataIncrementally } from "./migrate-metadata-incrementally.js";
import { SelectNewMetadataStore, Selection } from "./select-new-metadata-store.js";

/** Counts, checksums per key range and the same sampled reads on both stores, as the card shows them. */
export function validationTable(c: Comparison, title: string): ChangeSection {
  return {
    kind: "table",
    title,
    columns: ["check", "old store", "new store", "result"],
    rows: [
      ["records", c.sourceCount, c.targetCount, c.sourceCount === c.targetCount ? "equal" : "DIFFERENT"],
      ["checksum ranges", c.ranges, c.ranges - c.badRanges.length, c.badRanges.length ? `${c.badRanges.length} range(s) differ` : "all equal"],
      ["mismatching records", null, c.mismatchCount, c.mismatchCount ? c.mismatches.slice(0, 5).map((m) => `${m.key}: ${m.problem}`).join("; ") : "none"],
      ...c.queries.map((q) => [q.query, q.source, q.target, q.ok ? "same results" : q.detail]),
    ],
  };
}

export function mismatchError(c: Comparison, what: string): AgentError {
  const named = c.mismatches.slice(0, 10).map((m) => `${m.key} (${m.problem})`).join(", ");
  const ranges = c.badRanges.slice(0, 3).map((r) => `${r.from}..${r.to}`).join(", ");
  const queries = c.queries.filter((q) => !q.ok).map((q) => `${q.query}: ${q.detail}`).join("; ");
  return new AgentError("failed", `${what}: the stores disagree (${c.sourceCount} vs ${c.targetCount} records${c.mismatchCount ? `; ${c.mismatchCount} mismatching record(s): ${named}${ranges ? ` in key ranges ${ranges}` : ""}` : ""}${queries ? `; sampled reads differ: ${queries}` : ""}); reads stay on the old store`, { mismatches: c.mismatches });
}

export const ValidateDataIntegrity = defineStep({
  name: "ValidateDataIntegrity",
  description: "Apply the latest captured writes, then prove the stores agree: counts, checksums per key range (naming mismatching records), the same sampled reads on both",
  input: z.object({ selection: Selection, copied: z.number().int() }),
  output: z.object({ comparison: Comparison, table: ChangeSection, queries: z.array(SampleQuery), oldP95Ms: z.number().nullable(), newP95Ms: z.number().nullable() }),
  prepare: (view) => ({ selection: view.output(SelectNewMetadataStore), copied: view.output(MigrateMetadataIncrementally).copied }),
  async run(ctx, { selection: s }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const source = cap.source();
    const target = cap.target(s.target.kind);
    const caught = await catchUp(source, target, s.capture);
    const queries = await sampleQueries(source, target);
    const c = await compareStores(source, target, { queries, rangeSize: Math.max(100, s.batchSize), capture: s.capture });
    const table = validationTable(c, `Integrity: ${source.describe()} vs ${target.describe()}`);
    await ctx.attach("comparison", c);
    if (!c.ok) throw mismatchError(c, "validation");
    const [oldP, newP] = [await cap.probe(source, queries), await cap.probe(target, queries)];
    ctx.progress(`stores agree: ${c.sourceCount} records, ${c.ranges} checksum ranges, ${c.queries.length} sampled reads (${caught.applied} captured writes applied first)`);
    return { output: { comparison: c, table, queries, oldP95Ms: oldP.p95Ms, newP95Ms: newP.p95Ms }, reason: `${c.sourceCount} records equal, ${c.ranges} ranges, ${c.queries.length} reads the same` };
  },
});
