import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { ChangeSection } from "../../../../core/sections.js";
import type { StepContext } from "../../../step.js";
import { defineStep } from "../../../step.js";
import { planCopy, storageOf, type CopyPlan } from "../backends.js";
import { bytes } from "../format.js";
import { PlacementRule, describeMatch, rulesOf, type PlaceContext } from "../placement.js";
import { IdentifyStorageRequirement, type Requirement } from "./identify-storage-requirement.js";

/** Requests per day by collection: the storage's own record, else Honua's tile popularity (a layer per collection). */
export async function accessOf(ctx: StepContext): Promise<Record<string, number> | null> {
  const own = await storageOf(ctx.adapters, ctx.deployment).access();
  if (own) return own;
  const tiles = await ctx.adapters.tiles.popularTiles(1000).catch(() => []);
  if (tiles.length === 0) return null;
  const out: Record<string, number> = {};
  for (const t of tiles) out[t.layerId] = (out[t.layerId] ?? 0) + t.requestsPerHour * 24;
  return out;
}

/** The rules, evaluated over the catalog now: the one place both the rules step and the copy compute the plan. */
export async function currentPlan(ctx: StepContext, r: Requirement, rules: readonly PlacementRule[]): Promise<{ plan: CopyPlan; place: PlaceContext; assets: number; datasets: Map<string, Set<string>> }> {
  const storage = storageOf(ctx.adapters, ctx.deployment);
  const assets = await storage.catalog.assets();
  const place = { now: ctx.adapters.clock.now(), access: await accessOf(ctx) };
  if (rules.some((x) => x.match.access) && !place.access) {
    throw new AgentError("failed", `an access-frequency rule needs request counts per collection, and ${ctx.deployment} records none: configure tiles.accessLog (Honua's access log) or name the data by collection, region or age`);
  }
  const plan = await planCopy(storage, assets, rules, r.target, place);
  const datasets = new Map<string, Set<string>>();
  for (const m of plan.moves) for (const a of m.assets) datasets.set(a.collection, (datasets.get(a.collection) ?? new Set()).add(a.item));
  return { plan, place, assets: assets.length, datasets };
}

export const PlacementEffect = z.object({
  datasets: z.number().int(),
  items: z.number().int(),
  assets: z.number().int(),
  objects: z.number().int(),
  bytes: z.number(),
  staying: z.number().int(),
  alreadyThere: z.number().int(),
});

export const DefineDataPlacementRules = defineStep({
  name: "DefineDataPlacementRules",
  description: "Turn the requirement into typed placement rules (collection, region, age, access frequency) and show their effect: datasets, objects, bytes that move",
  input: z.object({ requirement: z.custom<Requirement>() }),
  output: z.object({
    rules: z.array(PlacementRule),
    effect: PlacementEffect,
    table: ChangeSection,
    fingerprint: z.string(),
    sample: z.array(z.object({ from: z.string(), to: z.string(), bytes: z.number() })),
    accessKnown: z.boolean(),
  }),
  prepare: (view) => ({ requirement: view.output(IdentifyStorageRequirement) }),
  async run(ctx, { requirement: r }) {
    const rules = rulesOf(r.criteria, r.backend.name, r.move);
    const { plan, place, datasets } = await currentPlan(ctx, r, rules);
    if (plan.unreachable.length) {
      throw new AgentError("failed", `${plan.unreachable.length} placed asset(s) cannot be read, so they cannot move (e.g. ${plan.unreachable.slice(0, 3).map((u) => `${u.href}: ${u.reason}`).join("; ")}); fix their hrefs or add their backend to the storage section`);
    }
    const items = [...datasets.values()].reduce((a, s) => a + s.size, 0);
    const assets = plan.moves.reduce((a, m) => a + m.assets.length, 0);
    const effect = { datasets: datasets.size, items, assets, objects: plan.moves.length, bytes: plan.bytes, staying: plan.staying, alreadyThere: plan.alreadyThere };
    const store = storageOf(ctx.adapters, ctx.deployment).store(r.target);
    const table: ChangeSection = {
      kind: "table",
      title: `Placement rules and their effect (first matching rule wins${place.access ? "" : "; no access counts recorded"})`,
      columns: ["rule", "takes", "to", "action", "datasets", "items", "objects", "bytes"],
      rows: [
        ...rules.map((x) => [x.id, describeMatch(x.match), store.location, x.action, effect.datasets, effect.items, effect.objects, bytes(effect.bytes)]),
        ["(no rule)", "everything else", r.current.backend ?? r.current.provider, "stays", null, null, plan.staying, null],
      ],
    };
    const sample = plan.moves.slice(0, 10).map((m) => ({ from: m.item.source, to: store.hrefOf(m.item.key), bytes: m.size }));
    ctx.progress(`${effect.objects} objects (${bytes(effect.bytes)}) in ${effect.items} items of ${effect.datasets} datasets move to ${store.location}; ${plan.staying} assets stay`);
    return {
      output: { rules, effect, table, fingerprint: plan.fingerprint, sample, accessKnown: place.access !== null },
      reason: `${rules.map((x) => `${x.id}: ${describeMatch(x.match)} -> ${x.target} (${x.action})`).join("; ")}: ${effect.objects} objects, ${bytes(effect.bytes)}`,
    };
  },
});
