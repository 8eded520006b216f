import { z } from "zod";
import { defineStep } from "../../../step.js";
import { metadataOf } from "../stores.js";
import { SelectNewMetadataStore, Selection } from "./select-new-metadata-store.js";

export const ProvisionNewStore = defineStep({
  name: "ProvisionNewStore",
  description: "Create the new store's layout (PostgreSQL: database, schema, JSONB + GIN, PostGIS GiST, datetime and full-text indexes), or adopt one that exists",
  input: z.object({ selection: Selection }),
  output: z.object({ created: z.boolean(), details: z.array(z.string()), location: z.string() }),
  prepare: (view) => ({ selection: view.output(SelectNewMetadataStore) }),
  async run(ctx, { selection: s }) {
    const cap = metadataOf(ctx.adapters, ctx.deployment);
    const target = cap.target(s.target.kind);
    const plan = await target.plan();
    // Before acting: a crash half way still leaves the rollback knowing this run may have created the store.
    await ctx.journal.intend(null, [{ kind: "resource", capability: "metadata", id: null, resourceKind: `${s.target.kind} catalog`, description: target.describe(), created: plan.creates }]);
    const p = await target.provision();
    await ctx.journal.done(null, [{
      kind: "resource", capability: "metadata", id: `target:${s.target.kind}`, resourceKind: `${s.target.kind} catalog`, description: target.describe(), created: p.created,
      ...(p.created ? { deletes: `${target.describe()} and every record this run copied into it (the old store is untouched)` } : {}),
    }]);
    ctx.progress(`${p.created ? "created" : "adopted"} ${target.describe()}: ${p.details.join("; ")}`);
    return { output: { created: p.created, details: p.details, location: target.describe() }, reason: p.details.join("; ") };
  },
  gate: {
    kind: "provision",
    async describe(ctx, view) {
      const s = view.output(SelectNewMetadataStore);
      const target = metadataOf(ctx.adapters, ctx.deployment).target(s.target.kind);
      const plan = await target.plan();
      return {
        action: `${plan.creates ? "Create" : "Adopt"} ${target.describe()} for ${ctx.deployment}'s STAC catalog`,
        why: s.reasons.join(" "),
        risk: plan.creates
          ? "Low: a new, empty store. No record is copied and no read reaches it before the later steps and gates; a rollback offers it for deletion."
          : "Low: the existing store is used as it is; nothing is created.",
        change: {
          resources: [{ kind: `${s.target.kind} catalog`, name: target.describe(), action: plan.creates ? "create" : "adopt" }],
          sections: [{ kind: "table", title: "What is created", columns: ["statement"], rows: plan.details.map((d) => [d]) }, s.mapping],
        },
      };
    },
  },
});
