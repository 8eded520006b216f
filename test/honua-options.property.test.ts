import { describe, expect, it } from "vitest";
import { BUILTIN_CONFIG, parseConfig } from "../src/config.js";
import { planOffline } from "../src/planner/offline.js";
import { isClarify, isPlan } from "../src/planner/plan.js";
import { CACHE_OPTION_KEYS, CODE_DEFAULTS, SHIPPED_DEFAULTS, checkCacheOptions, planCacheTtls, readCacheOptions, ttlProblem, type CacheTtls } from "../src/tools/cache/honua-options.js";
import { findSetting, findSettings } from "../src/tools/config/keys.js";
import { seeded } from "./fixtures/random.js";

type Rng = ReturnType<typeof seeded>;

type Field = keyof CacheTtls;
const FIELDS = Object.keys(CACHE_OPTION_KEYS) as Field[];
const spell = (r: Rng, key: string) => r.pick([key, key.toLowerCase(), key.replace("__", ":"), key.toUpperCase(), key.replace("__", ":").toLowerCase()]);

function valueFor(r: Rng, field: Field): string {
  const roll = r.next();
  if (field === "jitter") {
    if (roll < 0.6) return String(Number((r.next() * 0.5).toFixed(2)));
    return r.pick(["0.9", "-0.2", "1", "abc", "", "0.5", "0", " 0.3 "]);
  }
  if (roll < 0.5) return String(r.logInt(86_400));
  if (roll < 0.7) return String(r.logInt(3600));
  if (roll < 0.8) return String(r.int(1, 20));
  return r.pick(["0", "-5", "90000", "100000000", "1.5", "abc", "", "5m", " 42 ", "+60", "99999999999"]);
}

/** A deployment's config: each cache key unset, valid or broken, in any spelling, sometimes twice. */
function randomConfig(r: Rng): Record<string, string> {
  const config: Record<string, string> = { ConnectionStrings__Redis: "redis:6379", Cache__Enabled: "true" };
  for (const f of FIELDS) {
    if (r.next() < 0.4) continue;
    const key = CACHE_OPTION_KEYS[f];
    const value = valueFor(r, f);
    config[spell(r, key)] = value;
    if (r.next() < 0.05) config[spell(r, key)] = r.next() < 0.5 ? value : valueFor(r, f);
  }
  return config;
}

function randomTtl(r: Rng): number {
  const roll = r.next();
  if (roll < 0.6) return r.logInt(10_000_000);
  if (roll < 0.8) return r.int(1, 600);
  return r.pick([0, -1, 1, 9, 10, 11, 86_399, 86_400, 86_401, 1.5, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 1e7]);
}

/** The config as the caller writes it: each planned key where the setting already lives, in its spelling. */
function applied(current: Record<string, string>, set: Record<string, string>): Record<string, string> {
  const out = { ...current };
  for (const [k, v] of Object.entries(set)) out[findSetting(current, k)?.key ?? k] = v;
  return out;
}

const problems = (config: Record<string, string>) => [SHIPPED_DEFAULTS, CODE_DEFAULTS].flatMap((d) => checkCacheOptions(readCacheOptions(config, d).options));
const hasDuplicate = (config: Record<string, string>) => FIELDS.some((f) => findSettings(config, CACHE_OPTION_KEYS[f]).length > 1);
/** The value Honua binds for `field` in `config`, or null when unset or unbindable. */
const explicit = (config: Record<string, string>, field: Field): number | null => {
  const s = findSetting(config, CACHE_OPTION_KEYS[field]);
  if (!s) return null;
  const { problems: p, options } = readCacheOptions({ [CACHE_OPTION_KEYS[field]]: s.value });
  return p.length ? null : options[field];
};

describe("planCacheTtls over random configs and TTLs (seeded)", () => {
  it("either refuses, or plans a config Honua starts with (shipped and code defaults, planned or written in place)", () => {
    let planned = 0;
    let refusedForTtl = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const r = seeded(seed);
      const current = randomConfig(r);
      const ttl = randomTtl(r);
      const p = planCacheTtls(current, ttl);
      const ctx = `seed ${seed}: ttl ${ttl}, ${JSON.stringify(current)} -> ${JSON.stringify(p)}`;
      if (p.refused !== null) {
        expect(p.set, ctx).toEqual({});
        // Only a TTL Honua cannot take, or a setting in two spellings, is a reason to refuse.
        expect(ttlProblem(ttl) !== null || hasDuplicate(current), ctx).toBe(true);
        if (ttlProblem(ttl) !== null) refusedForTtl++;
        continue;
      }
      planned++;
      expect(ttlProblem(ttl), ctx).toBeNull();
      expect(hasDuplicate(current) && Object.keys(p.set).some((k) => findSettings(current, k).length > 1), ctx).toBe(false);
      expect(problems({ ...current, ...p.set }), ctx).toEqual([]);
      expect(problems(applied(current, p.set)), ctx).toEqual([]);
      const after = readCacheOptions(applied(current, p.set)).options;
      expect([after.defaultTtl, after.layerTtl], ctx).toEqual([ttl, ttl]);
      // Keys whose current value already fits are not written.
      for (const [k, v] of Object.entries(p.set)) {
        const field = FIELDS.find((f) => CACHE_OPTION_KEYS[f] === k)!;
        expect(explicit(current, field) === Number(v), `${ctx}: ${k} already ${v}`).toBe(false);
      }
      // A TTL the request is not about is lowered only when a rule forces it, and the notes say so.
      const before = readCacheOptions(current).options;
      for (const f of ["serviceTtl", "queryTtl", "negativeTtl", "jitter"] as const) {
        if (explicit(current, f) !== null && after[f] < before[f]) expect(p.notes.join("\n"), `${ctx}: ${f}`).toContain(CACHE_OPTION_KEYS[f]);
      }
      if (explicit(current, "serviceTtl") !== null && before.serviceTtl <= 86_400) expect(after.serviceTtl, ctx).toBeGreaterThanOrEqual(before.serviceTtl);
      // A valid query TTL stays as the deployment had it (no rule ties it to the others).
      const q = explicit(current, "queryTtl");
      if (q !== null && q >= 1 && q <= 3600) expect(after.queryTtl, ctx).toBe(q);
    }
    // The generator reaches both outcomes often enough to mean something.
    expect(planned).toBeGreaterThan(1000);
    expect(refusedForTtl).toBeGreaterThan(300);
  });

  it("the same seed gives the same answer", () => {
    const once = (seed: number) => {
      const r = seeded(seed);
      return planCacheTtls(randomConfig(r), randomTtl(r));
    };
    for (const seed of [1, 17, 2024]) expect(once(seed)).toEqual(once(seed));
  });
});

const { config } = parseConfig(BUILTIN_CONFIG, "built-in");
const UNITS: readonly (readonly [string, number])[] = [
  ["", 1], ["s", 1], [" s", 1], ["sec", 1], [" seconds", 1], ["ms", 0.001], [" milliseconds", 0.001], ["m", 60], [" min", 60], [" minutes", 60],
  ["h", 3600], [" hours", 3600], ["hr", 3600], ["d", 86_400], [" days", 86_400], ["w", 604_800], [" weeks", 604_800], [" months", 2_592_000], ["y", 31_536_000], [" years", 31_536_000],
];
const PHRASES: readonly ((n: string, u: string) => string)[] = [
  (n, u) => `add redis to prod with ttl ${n}${u}`,
  (n, u) => `add varnish to staging, ttl of ${n}${u}`,
  (n, u) => `enable a cdn for prod tiles with a ${n}${u || "s"} ttl`,
  (n, u) => `cache prod tiles for ${n}${u || " s"}`,
  (n, u) => `give staging a redis cache that expires after ${n}${u || "s"}`,
  (n, u) => `pls bolt redis onto production, ttl=${n}${u}, 25/50`,
];

describe("the offline planner never plans a TTL Honua refuses (seeded phrasings)", () => {
  it("every plan's TTL is one planCacheTtls can honour; every other TTL is asked about, with the limit", () => {
    let plans = 0;
    let asked = 0;
    for (let seed = 1; seed <= 1500; seed++) {
      const r = seeded(seed * 31);
      const [unit, factor] = r.pick(UNITS);
      const n = r.next() < 0.8 ? String(r.logInt(unit.trim() === "" || factor === 1 ? 10_000_000 : 200)) : r.pick(["0", "1.5", "0.5", "2.25", "100000", "86400", "86401", "24", "1"]);
      const request = r.pick(PHRASES)(n, unit);
      const result = planOffline(request, config);
      const want = Number(n) * factor;
      const ctx = `seed ${seed}: ${request} -> ${JSON.stringify(result)}`;
      if (ttlProblem(want) === null) {
        expect(isPlan(result) && result.workflow === "add-caching-layer" ? (result.params as { ttlSeconds?: number }).ttlSeconds : "no plan", ctx).toBe(want);
      } else {
        expect(isClarify(result) && result.missing.includes("ttlSeconds"), ctx).toBe(true);
        if (isClarify(result)) expect(result.clarify, ctx).toContain("86400");
      }
      if (isPlan(result) && result.workflow === "add-caching-layer") {
        plans++;
        const ttl = (result.params as { ttlSeconds?: number }).ttlSeconds;
        const deployment = randomConfig(r);
        if (ttl !== undefined) expect(planCacheTtls(deployment, ttl).refused === null || hasDuplicate(deployment), ctx).toBe(true);
      } else asked++;
    }
    expect(plans).toBeGreaterThan(300);
    expect(asked).toBeGreaterThan(300);
  });
});
