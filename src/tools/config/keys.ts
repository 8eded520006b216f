/**
 * Honua's settings as .NET configuration reads them: keys are case-insensitive and `:` is `__`
 * (`ConnectionStrings:redis` = `ConnectionStrings__Redis`), and some deployments spell a setting another way
 * altogether (compose files use `HONUA_REDIS_URL`). A setting is found in any of its spellings, and a change is
 * written where it already lives, in the spelling it already has: never a second spelling beside it.
 */

/** The one form two spellings of the same key share. */
export const canonicalKey = (key: string): string => key.replace(/:/g, "__").toLowerCase();

/** Other names a deployment may give a setting (canonical form): what the server or its packaging reads as the same thing. */
const ALIASES: Readonly<Record<string, readonly string[]>> = {
  connectionstrings__redis: ["honua_redis_url"],
};

/** Every canonical spelling of `key`: itself first, then its aliases. */
export function spellingsOf(key: string): string[] {
  const c = canonicalKey(key);
  return [c, ...(ALIASES[c] ?? [])];
}

/** True when `a` and `b` name the same setting (same key in another case or separator, or a known alias). */
export const sameSetting = (a: string, b: string): boolean => spellingsOf(a).includes(canonicalKey(b));

export interface Setting {
  /** The key as it is spelled where it lives. */
  key: string;
  value: string;
}

/** Every spelling of `key` present in `values`, the exact spelling first. More than one is a conflict to report, not to guess. */
export function findSettings(values: Readonly<Record<string, string>>, key: string): Setting[] {
  const wanted = spellingsOf(key);
  const found = Object.entries(values)
    .filter(([k]) => wanted.includes(canonicalKey(k)))
    .map(([k, value]) => ({ key: k, value }));
  return found.sort((a, b) => Number(b.key === key) - Number(a.key === key) || wanted.indexOf(canonicalKey(a.key)) - wanted.indexOf(canonicalKey(b.key)));
}

/** The setting `key` in whatever spelling it has (the exact spelling wins), or undefined. */
export const findSetting = (values: Readonly<Record<string, string>>, key: string): Setting | undefined => findSettings(values, key)[0];

/** The value of `key` in any spelling, or undefined. */
export const settingValue = (values: Readonly<Record<string, string>>, key: string): string | undefined => findSetting(values, key)?.value;
