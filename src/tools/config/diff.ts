import type { ConfigChange } from "../../core/sections.js";
import { findSettings } from "./keys.js";
import { AgentError } from "../../core/errors.js";

/**
 * The changes that take `current` to `desired` (null in desired removes a key); unchanged keys are left out.
 * A key is matched the way .NET configuration matches it (case-insensitive, `:` = `__`, known aliases), and a
 * change names the key in the spelling it already has, so it is written where it lives. Two spellings of one
 * setting are refused: which one Honua reads is not knowable from here.
 */
export function diffConfig(current: Record<string, string>, desired: Record<string, string | null>): ConfigChange[] {
  return Object.entries(desired)
    .map(([key, after]) => {
      const found = findSettings(current, key);
      if (found.length > 1) {
        throw new AgentError("conflict", `${key} is set ${found.length} times in different spellings (${found.map((f) => f.key).join(", ")}); Honua's configuration merges them unpredictably. Keep one, then ask again`);
      }
      return { key: found[0]?.key ?? key, before: found[0]?.value ?? null, after };
    })
    .filter((c) => c.before !== c.after);
}

/** Undo: every key back to its `before`, newest change first. */
export function inverse(changes: ConfigChange[]): ConfigChange[] {
  return [...changes].reverse().map((c) => ({ key: c.key, before: c.after, after: c.before }));
}

export function renderDiff(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.before === null ? "+" : c.after === null ? "-" : "~"} ${c.key}: ${c.before ?? "(unset)"} -> ${c.after ?? "(unset)"}`).join("\n");
}
