import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { ChangeSection } from "../../../../core/sections.js";
import { bboxOf, datetimeOf, keyText } from "../../../../tools/metadata/records.js";
import { defineStep } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { SelectNewMetadataStore, Selection } from "./select-new-metadata-store.js";

const SAMPLE = 200;

export const DefineDataMapping = defineStep({
  name: "DefineDataMapping",
  description: "Fix the field mapping old -> new and check it on a sample of records: each maps, with what the spatial, time and text indexes will see",
  input: z.object({ selection: Selection }),
  output: z.object({ mapping: ChangeSection, sampled: z.number().int(), withGeometry: z.number().int(), withDatetime: z.number().int(), notes: z.array(z.string()) }),
  prepare: (view) => ({ selection: view.output(SelectNewMetadataStore) }),
  async run(ctx, { selection: s }) {
    const source = metadataOf(ctx.adapters, ctx.deployment).source();
    const recs = await source.page(null, SAMPLE);
    const bad = recs.filter((r) => typeof r.content !== "object" || r.content === null || Array.isArray(r.content));
    if (bad.length) throw new AgentError("failed", `${bad.length} record(s) are not JSON objects and cannot be mapped: ${bad.slice(0, 5).map(keyText).join(", ")}`);
    const withGeometry = recs.filter((r) => bboxOf(r.content)).length;
    const withDatetime = recs.filter((r) => datetimeOf(r.content)).length;
    const notes: string[] = [];
    if (withGeometry < recs.length) notes.push(`${recs.length - withGeometry} of ${recs.length} sampled records have no geometry or bbox: bbox reads will not find them (on either store)`);
    if (withDatetime < recs.length) notes.push(`${recs.length - withDatetime} of ${recs.length} sampled records have no parseable datetime`);
    ctx.progress(`mapping checked on ${recs.length} records: ${withGeometry} with geometry, ${withDatetime} with datetime`);
    return { output: { mapping: s.mapping, sampled: recs.length, withGeometry, withDatetime, notes }, reason: `${s.mapping.kind === "mapping" ? s.mapping.rows.length : 0} fields mapped; ${notes.join("; ") || "every sampled record maps"}` };
  },
});
