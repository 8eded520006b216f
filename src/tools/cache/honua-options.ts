/**
 * Honua's cache options as its `CacheOptionsValidator` checks them at startup. A config that breaks a rule keeps
 * Honua from starting, so every TTL the agent writes is planned here first.
 *
 * The rules, from honua-server (`CacheOptions` ranges and `CacheOptionsValidator`):
 * - Default, Service and Layer TTLs are whole seconds in 1..86400; Query and Negative TTLs in 1..3600;
 * - LayerTtlSeconds <= ServiceTtlSeconds (a layer entry may not outlive its service);
 * - NegativeTtlSeconds <= max(Default, Service, Layer) / 10, in integer division;
 * - JitterPercentage within 0..0.5.
 * Unset keys take the values of Honua's shipped appsettings.json (`CACHE_TTL_KEYS`); an image without that file
 * falls back to the option class's own defaults (`CODE_DEFAULTS`), so a plan must hold under both.
 */
import { findSettings } from "../config/keys.js";

/** The five TTL keys with the defaults Honua ships (appsettings.json). */
export const CACHE_TTL_KEYS = {
  Cache__DefaultTtlSeconds: 300,
  Cache__ServiceTtlSeconds: 300,
  Cache__LayerTtlSeconds: 300,
  Cache__QueryTtlSeconds: 30,
  Cache__NegativeTtlSeconds: 30,
} as const;
export const JITTER_KEY = "Cache__JitterPercentage";

export interface CacheTtls {
  defaultTtl: number;
  serviceTtl: number;
  layerTtl: number;
  queryTtl: number;
  negativeTtl: number;
  jitter: number;
}
type Field = keyof CacheTtls;

/** Each option's canonical key. */
export const CACHE_OPTION_KEYS: Readonly<Record<Field, string>> = {
  defaultTtl: "Cache__DefaultTtlSeconds",
  serviceTtl: "Cache__ServiceTtlSeconds",
  layerTtl: "Cache__LayerTtlSeconds",
  queryTtl: "Cache__QueryTtlSeconds",
  negativeTtl: "Cache__NegativeTtlSeconds",
  jitter: JITTER_KEY,
};
/** One value per option, built field by field. */
const byField = <T>(of: (f: Field) => T): Record<Field, T> => ({
  defaultTtl: of("defaultTtl"), serviceTtl: of("serviceTtl"), layerTtl: of("layerTtl"), queryTtl: of("queryTtl"), negativeTtl: of("negativeTtl"), jitter: of("jitter"),
});
const FIELDS = Object.keys(byField(() => 0)) as Field[];

/** The defaults of Honua's shipped configuration: what an unset key means on a standard image. */
export const SHIPPED_DEFAULTS: Readonly<CacheTtls> = {
  defaultTtl: CACHE_TTL_KEYS.Cache__DefaultTtlSeconds,
  serviceTtl: CACHE_TTL_KEYS.Cache__ServiceTtlSeconds,
  layerTtl: CACHE_TTL_KEYS.Cache__LayerTtlSeconds,
  queryTtl: CACHE_TTL_KEYS.Cache__QueryTtlSeconds,
  negativeTtl: CACHE_TTL_KEYS.Cache__NegativeTtlSeconds,
  jitter: 0.2,
};
/** The option class's own defaults, in force when the shipped appsettings.json is not in the image. */
export const CODE_DEFAULTS: Readonly<CacheTtls> = { defaultTtl: 1800, serviceTtl: 3600, layerTtl: 1800, queryTtl: 30, negativeTtl: 60, jitter: 0.2 };

/** The longest TTL Honua accepts for the tiles/layers cache, in seconds (1 day). */
export const HONUA_MAX_TTL_SECONDS = 86_400;
/** Why a requested TTL outside 1..86400 s is not planned. */
export const HONUA_TTL_RULE = `Honua refuses to start with a cache TTL outside 1..${HONUA_MAX_TTL_SECONDS} seconds (1 day) (CacheOptionsValidator)`;

const RANGE: Readonly<Record<Field, readonly [number, number]>> = {
  defaultTtl: [1, HONUA_MAX_TTL_SECONDS],
  serviceTtl: [1, HONUA_MAX_TTL_SECONDS],
  layerTtl: [1, HONUA_MAX_TTL_SECONDS],
  queryTtl: [1, 3600],
  negativeTtl: [1, 3600],
  jitter: [0, 0.5],
};
const NEGATIVE_DIVISOR = 10;

/** How .NET binds an int: optional sign and surrounding blanks, decimal digits, within Int32. */
const INT = /^\s*[+-]?\d+\s*$/;
const DOUBLE = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

interface Raw {
  /** "unset": no spelling of the key; "set": a value Honua can bind; "invalid": one it cannot. */
  state: "unset" | "set" | "invalid";
  value: number;
  /** The value as written, when present. */
  text: string | null;
}

function parseField(field: Field, text: string): number | null {
  if (field === "jitter") return DOUBLE.test(text) ? Number(text) : null;
  if (!INT.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= -2_147_483_648 && n <= 2_147_483_647 ? n : null;
}

function readRaw(config: Readonly<Record<string, string>>, defaults: Readonly<CacheTtls>): { raw: Record<Field, Raw>; problems: string[]; spellings: Record<Field, number> } {
  const problems: string[] = [];
  const found = byField((f) => findSettings(config, CACHE_OPTION_KEYS[f]));
  const raw = byField((field): Raw => {
    const [first, ...others] = found[field];
    if (!first) return { state: "unset", value: defaults[field], text: null };
    if (others.some((o) => o.value !== first.value)) {
      const all = found[field].map((f) => `${f.key}=${f.value}`).join(", ");
      problems.push(`${CACHE_OPTION_KEYS[field]} is set in ${found[field].length} spellings with different values (${all}): .NET reads only one of them; ${first.key} is assumed here`);
    }
    const n = parseField(field, first.value);
    if (n !== null) return { state: "set", value: n, text: first.value };
    const what = field === "jitter" ? "not a number" : "not a whole number of seconds";
    problems.push(`${first.key} is ${JSON.stringify(first.value)}: ${what}, so Honua cannot bind it and will not start; its default ${defaults[field]} is assumed here`);
    return { state: "invalid", value: defaults[field], text: first.value };
  });
  return { raw, problems, spellings: byField((f) => found[f].length) };
}

const optionsOf = (raw: Record<Field, Raw>): CacheTtls => byField((f) => raw[f].value);

/**
 * The effective options from a deployment's config in any spelling (keys.ts), Honua's shipped defaults where
 * unset (or `defaults`, e.g. `CODE_DEFAULTS`). Non-numeric values are problems, not NaN: the default is assumed.
 */
export function readCacheOptions(config: Readonly<Record<string, string>>, defaults: Readonly<CacheTtls> = SHIPPED_DEFAULTS): { options: CacheTtls; problems: string[] } {
  const { raw, problems } = readRaw(config, defaults);
  return { options: optionsOf(raw), problems };
}

/** The longest positive TTL, which bounds the negative one. */
const longest = (o: CacheTtls): number => Math.max(o.defaultTtl, o.serviceTtl, o.layerTtl);
const negativeBound = (o: CacheTtls): number => Math.floor(longest(o) / NEGATIVE_DIVISOR);

/** Every rule the options break, as sentences naming the key, the value and the rule; empty when Honua would start. */
export function checkCacheOptions(o: CacheTtls): string[] {
  const out: string[] = [];
  for (const field of FIELDS) {
    const [min, max] = RANGE[field];
    const v = o[field];
    const key = CACHE_OPTION_KEYS[field];
    if (field !== "jitter" && !Number.isInteger(v)) out.push(`${key} is ${v}: Honua requires a whole number of seconds`);
    else if (!(v >= min && v <= max)) out.push(`${key} is ${v}: Honua requires ${min}..${max}${field === "jitter" ? "" : " seconds"}`);
  }
  if (o.layerTtl > o.serviceTtl) {
    out.push(`Cache__LayerTtlSeconds ${o.layerTtl} > Cache__ServiceTtlSeconds ${o.serviceTtl}: Honua requires LayerTtlSeconds <= ServiceTtlSeconds (a layer entry may not outlive its service)`);
  }
  if (o.negativeTtl > negativeBound(o)) {
    out.push(`Cache__NegativeTtlSeconds ${o.negativeTtl} > ${negativeBound(o)}: Honua requires NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10 (here ${longest(o)} / 10, rounded down)`);
  }
  return out;
}

export interface CacheTtlPlan {
  /** Keys to write, in Honua's canonical spelling (the caller maps them to the spelling a setting already has). */
  set: Record<string, string>;
  /** What was corrected or pinned beyond the request, and why. */
  notes: string[];
  /** Why nothing can be planned, or null. */
  refused: string | null;
}

const refuse = (why: string): CacheTtlPlan => ({ set: {}, notes: [], refused: why });

/** Why `ttlSeconds` is not a TTL Honua accepts for the tiles/layers cache, or null when it is. */
export function ttlProblem(ttlSeconds: number): string | null {
  if (!Number.isInteger(ttlSeconds)) return `a TTL of ${ttlSeconds} s is not a whole number of seconds, and Honua takes whole seconds from 1 to ${HONUA_MAX_TTL_SECONDS}`;
  if (ttlSeconds < 1 || ttlSeconds > HONUA_MAX_TTL_SECONDS) return `a TTL of ${ttlSeconds} s is out of range: ${HONUA_TTL_RULE}`;
  return null;
}

/**
 * The TTL keys to write so the tiles/layers cache (Default and Layer TTL) holds entries for `ttlSeconds`: the config
 * that results from `current` plus these keys always passes `checkCacheOptions`, under Honua's shipped defaults and
 * its code defaults alike. Where a kept value would break a rule it is corrected, and `notes` says what and why:
 * the Service TTL is raised, never lowered; the Query TTL, the Negative TTL and the jitter stay as the deployment
 * has them unless a rule forces a change. `refused` is set (and `set` empty) when no correction can honour the
 * request. Keys whose current value already fits are not in `set`.
 */
export function planCacheTtls(current: Readonly<Record<string, string>>, ttlSeconds: number): CacheTtlPlan {
  const bad = ttlProblem(ttlSeconds);
  if (bad) return refuse(bad);
  const { raw, spellings } = readRaw(current, SHIPPED_DEFAULTS);
  for (const f of FIELDS) {
    const found = findSettings(current, CACHE_OPTION_KEYS[f]);
    if (new Set(found.map((s) => s.value)).size > 1) {
      return refuse(`${CACHE_OPTION_KEYS[f]} is set in ${found.length} spellings with different values (${found.map((s) => `${s.key}=${s.value}`).join(", ")}); which one Honua reads is not knowable from here. Keep one, then ask again`);
    }
  }

  const notes: string[] = [];
  const target = optionsOf(raw);
  const was = (f: Field) => (raw[f].state === "unset" && target[f] === SHIPPED_DEFAULTS[f] ? `${target[f]} (unset: Honua's shipped default)` : String(target[f]));
  for (const f of ["serviceTtl", "queryTtl", "negativeTtl", "jitter"] as const) {
    if (raw[f].state === "invalid") {
      notes.push(`${CACHE_OPTION_KEYS[f]} set to its default ${SHIPPED_DEFAULTS[f]}: ${JSON.stringify(raw[f].text)} is not a ${f === "jitter" ? "number" : "whole number of seconds"}, and Honua cannot start with it`);
    }
    const [min, max] = RANGE[f];
    const fixed = Math.min(Math.max(target[f], min), max);
    if (fixed !== target[f]) {
      notes.push(`${CACHE_OPTION_KEYS[f]} ${fixed > target[f] ? "raised" : "lowered"} ${target[f]} -> ${fixed}: Honua requires ${min}..${max}${f === "jitter" ? "" : " seconds"}`);
      target[f] = fixed;
    }
  }
  target.defaultTtl = ttlSeconds;
  target.layerTtl = ttlSeconds;
  if (target.serviceTtl < target.layerTtl) {
    notes.push(`Cache__ServiceTtlSeconds raised ${was("serviceTtl")} -> ${target.layerTtl}: Honua requires LayerTtlSeconds <= ServiceTtlSeconds`);
    target.serviceTtl = target.layerTtl;
  }
  // A negative TTL of at least 1 s needs a longest TTL of at least 10 s; the Service TTL is the one that may grow.
  if (negativeBound(target) < 1) {
    notes.push(`Cache__ServiceTtlSeconds raised ${was("serviceTtl")} -> ${NEGATIVE_DIVISOR}: Honua requires 1 <= NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10`);
    target.serviceTtl = NEGATIVE_DIVISOR;
  }
  if (target.negativeTtl > negativeBound(target)) {
    notes.push(`Cache__NegativeTtlSeconds lowered ${was("negativeTtl")} -> ${negativeBound(target)}: Honua requires NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10 (${longest(target)} / 10, rounded down)`);
    target.negativeTtl = negativeBound(target);
  }

  const set: Record<string, string> = {};
  for (const f of FIELDS) {
    const r = raw[f];
    const requested = f === "defaultTtl" || f === "layerTtl";
    const write = r.state === "set" ? r.value !== target[f] : r.state === "invalid" || requested || target[f] !== SHIPPED_DEFAULTS[f];
    if (write) set[CACHE_OPTION_KEYS[f]] = String(target[f]);
  }
  // Unset, the Negative TTL is 30 s from the shipped appsettings.json but 60 s on an image without that file (a
  // larger unset Service TTL there only helps): where 60 would break the rule, it is written.
  const negativeKey = CACHE_OPTION_KEYS.negativeTtl;
  const bare = readCacheOptions({ ...current, ...set }, CODE_DEFAULTS).options;
  if (raw.negativeTtl.state === "unset" && !(negativeKey in set) && bare.negativeTtl > negativeBound(bare)) {
    set[negativeKey] = String(target.negativeTtl);
    notes.push(`${negativeKey} written as ${target.negativeTtl}: it is unset, and on an image without Honua's shipped appsettings.json it is ${bare.negativeTtl}, more than ${longest(bare)} / 10, which keeps Honua from starting`);
  }
  const after = { ...current, ...set };
  const left = [SHIPPED_DEFAULTS, CODE_DEFAULTS].flatMap((d) => checkCacheOptions(readCacheOptions(after, d).options));
  if (left.length) return refuse(`no TTL plan for ${ttlSeconds} s passes Honua's checks: ${[...new Set(left)].join("; ")}`);
  // The caller writes each key where the setting lives; a setting with two homes has none to write to.
  const several = FIELDS.filter((f) => CACHE_OPTION_KEYS[f] in set && spellings[f] > 1).map((f) => CACHE_OPTION_KEYS[f]);
  if (several.length) return refuse(`${several.join(", ")} ${several.length > 1 ? "are" : "is"} set in several spellings; which one Honua reads is not knowable from here. Keep one, then ask again`);
  return { set, notes, refused: null };
}
