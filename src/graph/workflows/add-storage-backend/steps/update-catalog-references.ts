import { z } from "zod";
import type { Effect } from "../../../../core/journal.js";
import { assetTarget, type HrefChange } from "../../../../tools/storage/types.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { PlacementRule } from "../placement.js";
import { DefineDataPlacementRules, currentPlan } from "./define-data-placement-rules.js";
import { IdentifyStorageRequirement, Requirement } from "./identify-storage-requirement.js";
import { MigrateExistingData } from "./migrate-existing-data.js";

export const UpdateCatalogReferences = defineStep({
  name: "UpdateCatalogReferences",
  description: "Point the placed STAC assets at their verified copies: every href in one transaction, each old value journalled for the rollback",
  input: z.object({ requirement: Requirement, rules: z.array(PlacementRule), copyKey: z.string() }),
  output: z.object({ rewritten: z.number().int(), items: z.number().int(), sample: z.array(z.object({ asset: z.string(), from: z.string(), to: z.string() })) }),
  prepare: (view) => ({ requirement: view.output(IdentifyStorageRequirement), rules: view.output(DefineDataPlacementRules).rules, copyKey: view.output(MigrateExistingData).copyKey }),
  async run(ctx, { requirement, rules, copyKey }) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const copied = new Map((await storage.ledger.written(copyKey)).map((r) => [r.source, r.dest]));
    const { plan } = await currentPlan(ctx, requirement, rules);
    const changes: HrefChange[] = plan.moves.flatMap((m) => {
      const to = copied.get(m.item.source);
      return to ? m.assets.map((a) => ({ collection: a.collection, item: a.item, asset: a.asset, from: a.href, to })) : [];
    });
    // Journalled before the transaction: the rollback puts every href back to the exact string found here.
    const { key, effects } = await ctx.journal.intend(null, changes.map((c): Effect => ({ kind: "restore", capability: "storage", target: assetTarget(c), before: c.from, after: c.to })));
    const recorded: HrefChange[] = effects.flatMap((e) => (e.kind === "restore" ? [{ ...parse(e.target), from: e.before, to: e.after }] : []));
    const rewritten = await storage.catalog.rewrite(recorded, key);
    await ctx.journal.done(null);
    const items = new Set(recorded.map((c) => `${c.collection}/${c.item}`)).size;
    ctx.progress(`${storage.catalog.describe()}: ${rewritten} href(s) rewritten in one transaction (${recorded.length} planned, ${items} items)`);
    return {
      output: { rewritten, items, sample: recorded.slice(0, 10).map((c) => ({ asset: `${c.collection}/${c.item}#${c.asset}`, from: c.from, to: c.to })) },
      reason: `${recorded.length} asset hrefs in ${items} items now point at ${requirement.target.container}`,
    };
  },
});

function parse(target: string): { collection: string; item: string; asset: string } {
  const [collection, item, asset] = target.slice("stac:".length).split("/").map(decodeURIComponent) as [string, string, string];
  return { collection, item, asset };
}
