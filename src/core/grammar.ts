/**
 * The grammar a workflow's intent is written with, shared by the offline planner: clauses, durations, counts and
 * the words that mark a source ("from postgres") or a move. It imports nothing that knows about workflows.
 */
import { Text, matchAll, oneOf } from "./text.js";

/** Verbs that start a new request inside one message: "add redis, then move metadata to opensearch". */
const CLAUSE_VERBS = [
  "add", "set", "create", "move", "migrate", "switch", "route", "send", "put", "enable", "configure", "remove", "delete",
  "drop", "change", "update", "slap", "throw", "spin", "hook", "wire", "mount", "attach", "bump", "raise", "lower",
  "increase", "decrease", "alert", "page", "install", "turn", "make", "use", "keep", "build",
];
const CLAUSE_BREAK = new RegExp(
  String.raw`\s*(?:;|\.\s+|,?\s+(?:and|then|also|plus|&)\s+(?:then\s+|also\s+)?(?=${oneOf(CLAUSE_VERBS)}\b)|,\s*(?=${oneOf(CLAUSE_VERBS)}\b))`,
);

/** The request cut into the requests it strings together. */
export function clauses(t: Text): Text[] {
  const out: Text[] = [];
  let from = 0;
  for (const m of matchAll(CLAUSE_BREAK, t.lower)) {
    if (m.index > from) out.push(t.slice(from, m.index));
    from = m.index + m[0].length;
  }
  out.push(t.slice(from));
  return out.filter((c) => c.lower.trim() !== "");
}

/** Moving something from one place to another. */
export const MOVE = /\b(?:move|moving|migrate|migrating|switch|switching|swap|port|transfer|shift|replatform|replace|change)\b/;

/** Marks the word right after it as where something comes from: test it against the text just before a mention. */
export const FROM_MARK = new RegExp(
  `\\b${oneOf(["from", "off", "off of", "out of", "away from", "leaving", "currently on", "currently in", "currently", "replace", "replacing", "instead of"])}` +
    String.raw`\s+(?:the\s+)?(?:current\s+|old\s+|existing\s+)?$`,
);

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001, millisecond: 0.001, milliseconds: 0.001,
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86_400, day: 86_400, days: 86_400,
  w: 604_800, week: 604_800, weeks: 604_800,
  month: 2_592_000, months: 2_592_000,
  y: 31_536_000, year: 31_536_000, years: 31_536_000,
};
/** A duration unit, as a capturing group. */
export const UNIT = "(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|months?|y|years?)";
/** How many seconds one `unit` is (1 for an unknown unit). */
export const unitSeconds = (unit: string): number => UNIT_SECONDS[unit] ?? 1;
export const seconds = (n: string, unit = "s"): number => Number(n) * unitSeconds(unit);

/** A Prometheus duration ("30d", "2w", "5m"); months have no Prometheus unit and become days. */
export function promDuration(n: string, unit: string): string {
  const u = unit.toLowerCase();
  if (/^months?$/.test(u)) return `${Number(n) * 30}d`;
  if (u === "ms" || /^millis/.test(u)) return `${n}ms`;
  return `${n}${u[0] ?? "s"}`;
}

/** "2,000", "10_000", "5k" as a number. */
export const count = (s: string): number => {
  const n = Number(s.replace(/[,_]/g, "").replace(/k$/i, ""));
  return /k$/i.test(s) ? n * 1000 : n;
};
