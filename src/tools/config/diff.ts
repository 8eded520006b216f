import type { ConfigChange } from "../../graph/state.js";

/**
 * The changes that take `current` to `desired` (null in desired removes a key); unchanged keys are left out.
 * A key is matched case-insensitively when it is not there as written, as .NET configuration reads it
 * (`"cache": {"enabled": false}` in appsettings.json is `Cache__Enabled`).
 */
export function diffConfig(current: Record<string, string>, desired: Record<string, string | null>): ConfigChange[] {
  const lower = new Map(Object.entries(current).map(([k, v]) => [k.toLowerCase(), v]));
  return Object.entries(desired)
    .map(([key, after]) => ({ key, before: current[key] ?? lower.get(key.toLowerCase()) ?? null, after }))
    .filter((c) => c.before !== c.after);
}

/** Undo: every key back to its `before`, newest change first. */
export function inverse(changes: ConfigChange[]): ConfigChange[] {
  return [...changes].reverse().map((c) => ({ key: c.key, before: c.after, after: c.before }));
}

export function renderDiff(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.before === null ? "+" : c.after === null ? "-" : "~"} ${c.key}: ${c.before ?? "(unset)"} -> ${c.after ?? "(unset)"}`).join("\n");
}
