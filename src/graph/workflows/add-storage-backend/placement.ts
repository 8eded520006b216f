import { createHash } from "node:crypto";
import { z } from "zod";
import type { CatalogAsset } from "../../../tools/storage/types.js";

/** How often a collection is read, from its requests per day: the access-frequency rules' classes. */
export const AccessClass = z.enum(["hot", "warm", "cold"]);
export type AccessClass = z.infer<typeof AccessClass>;
export const accessClassOf = (requestsPerDay: number): AccessClass => (requestsPerDay >= 1000 ? "hot" : requestsPerDay >= 10 ? "warm" : "cold");
export const ACCESS_RULE = "hot: 1000+ requests/day, warm: 10+, cold: fewer";

/** What a rule takes: every condition that is set must hold (null: any). */
export const RuleMatch = z.object({
  /** Collection ids; `name*` takes every collection that starts with `name`. */
  collections: z.array(z.string()).nullable(),
  /** Coarse regions (eu, us, ...) from the item's `region` property or its bbox. */
  regions: z.array(z.string()).nullable(),
  /** Items whose datetime is more than this many days before now. */
  olderThanDays: z.number().int().positive().nullable(),
  access: AccessClass.nullable(),
});
export type RuleMatch = z.infer<typeof RuleMatch>;

/** One placement rule: typed data, evaluated by `place`, shown with its effect. */
export const PlacementRule = z.object({
  id: z.string(),
  match: RuleMatch,
  /** The backend the matching assets go to. */
  target: z.string(),
  /** `move` deletes the source objects once the copies are verified, the catalog points at them and the watch was healthy. */
  action: z.enum(["copy", "move"]),
});
export type PlacementRule = z.infer<typeof PlacementRule>;

/** What the request says about the data: the criteria the rules are made from. */
export const Criteria = z.object({
  collections: z.array(z.string()).nullable(),
  regions: z.array(z.string()).nullable(),
  olderThanDays: z.number().int().positive().nullable(),
  access: AccessClass.nullable(),
  /** The words each criterion came from, for the requirement the user reads back. */
  from: z.array(z.string()),
});
export type Criteria = z.infer<typeof Criteria>;

const UNIT_DAYS: Record<string, number> = { day: 1, week: 7, month: 30, year: 365 };
const AREAS: [RegExp, string][] = [
  [/\b(?:eu|europe|european|emea)\b/, "eu"],
  [/\b(?:us|usa|united states|america|american|north america)\b/, "us"],
  [/\b(?:apac|asia|australia|japan)\b/, "ap"],
  [/\b(?:south america|latam|brazil)\b/, "sa"],
  [/\b(?:africa)\b/, "af"],
];

/** The coarse area of a cloud region (westeurope, eu-west-1, europe-west4 -> eu). */
export function areaOfRegion(region: string): string | null {
  const r = region.toLowerCase();
  if (/^eu-|^europe-|europe$|^uk|^france|^germany|^sweden|^switzerland|^norway/.test(r)) return "eu";
  if (/^us-|^us(east|west|central)|^(east|west|north|south)us|^centralus|^(northcentral|southcentral|westcentral)us|^northamerica-|^ca-|^canada/.test(r)) return "us";
  if (/^ap-|^asia-|^australia|^japan|^korea|^(east|southeast)asia|india/.test(r)) return "ap";
  if (/^sa-|^southamerica-|^brazil/.test(r)) return "sa";
  if (/^af-|^africa|southafrica/.test(r)) return "af";
  return null;
}

/**
 * The criteria in a request's placement words and region: age ("older than 90 days", "before 2020"), access ("cold",
 * "rarely accessed", "hot"), residency ("EU rasters"; a region alone places that region's data) and collections named
 * by the catalog's own ids or their first word ("imagery" -> imagery-2019, imagery-2024).
 */
export function criteriaOf(placement: string | null, region: string | null, collections: readonly string[], now: Date): Criteria {
  const t = (placement ?? "").toLowerCase();
  const from: string[] = [];
  let olderThanDays: number | null = null;
  const age = /\b(?:older than|more than|over)\s+(\d+)\s*(day|week|month|year)s?\b/.exec(t);
  const before = /\b(?:from before|before|prior to|pre-?)\s*((?:19|20)\d\d)\b/.exec(t);
  if (age) {
    olderThanDays = Number(age[1]) * UNIT_DAYS[age[2]!]!;
    from.push(age[0]);
  } else if (before) {
    olderThanDays = Math.max(1, Math.floor((now.getTime() - Date.UTC(Number(before[1]), 0, 1)) / 86_400_000));
    from.push(before[0]);
  }
  let access: AccessClass | null = null;
  const cold = /\b(?:cold|archiv\w*|rarely[- ]\w+|infrequent\w*|seldom[- ]\w+|historic\w*)\b/.exec(t);
  const hot = /\b(?:hot|frequently[- ]\w+|popular|busy)\b/.exec(t);
  if (cold) {
    access = "cold";
    from.push(cold[0]);
  } else if (hot) {
    access = "hot";
    from.push(hot[0]);
  } else if (/\bwarm\b/.test(t)) {
    access = "warm";
    from.push("warm");
  }
  let regions: string[] | null = null;
  for (const [re, area] of AREAS) {
    const m = re.exec(t);
    if (m) {
      (regions ??= []).push(area);
      from.push(m[0]);
    }
  }
  if (!regions && region && !placement) {
    const area = areaOfRegion(region);
    if (area) {
      regions = [area];
      from.push(`region ${region} (data residency: ${area.toUpperCase()} data)`);
    }
  }
  const words = new Set(t.split(/[^a-z0-9-]+/).filter(Boolean));
  let named: string[] | null = null;
  for (const c of collections) {
    const head = c.toLowerCase().split(/[-_.]/)[0]!;
    if (words.has(c.toLowerCase())) (named ??= []).push(c);
    else if (head.length >= 3 && (words.has(head) || words.has(`${head}s`))) {
      (named ??= []).push(`${head}*`);
      from.push(head);
    }
  }
  named = named ? [...new Set(named)] : null;
  return { collections: named, regions, olderThanDays, access, from };
}

/** One rule from the criteria (every criterion must hold); no criterion takes everything. */
export function rulesOf(c: Criteria, target: string, move: boolean): PlacementRule[] {
  const id = [c.collections?.join("+"), c.regions?.join("+"), c.olderThanDays ? `>${c.olderThanDays}d` : null, c.access].filter(Boolean).join(" ") || "all data";
  return [{ id, match: { collections: c.collections, regions: c.regions, olderThanDays: c.olderThanDays, access: c.access }, target, action: move ? "move" : "copy" }];
}

export const takesEverything = (m: RuleMatch): boolean => !m.collections && !m.regions && !m.olderThanDays && !m.access;

/** What a rule's conditions say, for the table. */
export function describeMatch(m: RuleMatch): string {
  const parts = [
    m.collections ? `collection ${m.collections.join(" or ")}` : null,
    m.regions ? `region ${m.regions.join(" or ")}` : null,
    m.olderThanDays ? `older than ${m.olderThanDays} days` : null,
    m.access ? `access ${m.access} (${ACCESS_RULE})` : null,
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : "every asset";
}

export interface PlaceContext {
  now: Date;
  /** Requests per day by collection; null where nothing records them (an access rule then cannot be evaluated). */
  access: Record<string, number> | null;
}

const collectionMatches = (patterns: readonly string[], c: string) => patterns.some((p) => (p.endsWith("*") ? c.startsWith(p.slice(0, -1)) : c === p));

/** The one function that decides where an asset goes: the first rule that takes it, or null (it stays). */
export function place(rules: readonly PlacementRule[], a: CatalogAsset, ctx: PlaceContext): PlacementRule | null {
  for (const r of rules) {
    const m = r.match;
    if (m.collections && !collectionMatches(m.collections, a.collection)) continue;
    if (m.regions && (!a.region || !m.regions.includes(a.region))) continue;
    if (m.olderThanDays) {
      const t = a.datetime ? Date.parse(a.datetime) : NaN;
      if (!Number.isFinite(t) || ctx.now.getTime() - t <= m.olderThanDays * 86_400_000) continue;
    }
    if (m.access) {
      if (!ctx.access) continue;
      if (accessClassOf(ctx.access[a.collection] ?? 0) !== m.access) continue;
    }
    return r;
  }
  return null;
}

/** A stable fingerprint of a copy plan: the migration refuses to run a plan other than the one approved. */
export const fingerprint = (lines: readonly string[]): string => createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 16);
