/** Requests refused before any workflow is chosen: destructive ones, and ones that are not changes at all. */
import { inOrder, matchAll, oneOf, type Matcher } from "../core/text.js";
import { derived } from "../graph/workflows/registry.js";
import { byPriority, type RefusalReason } from "./registered.js";

/** Requests that are not modifications at all (questions, restarts, scaling), recognised by how they start. */
const NOT_A_CHANGE = new RegExp(
  `^${oneOf([
    "scale", "restart", "reboot", "redeploy", "deploy", "roll ?back", "rollback", "revert", "undo", "downgrade", "rotate",
    "flush", "clear", "invalidate", "silence", "mute", "ack", "acknowledge", "resize", "failover", "fail over", "promote",
    "restore", "show", "list", "what", "what's", "whats", "why", "who", "where", "tell", "explain", "write", "compose",
    "check", "inspect", "analy[sz]e", "audit", "describe", "ping", "status", "is", "are", "does", "do", "did", "was",
    "were", "how", "give me",
  ])}\\b`,
);
const OFF_TOPIC: readonly Matcher[] = [
  /\b(?:replicas?|poems?|haikus?|jokes?|songs?|stor(?:y|ies)|essays?|limericks?|recipes?|weather|bitcoin|autoscal\w*)\b/,
  inOrder(/\b(?:show|give|send|tell|print|dump|reveal|leak|post)\b/, /\b(?:passwords?|credentials?|secrets?|keys?|tokens?)\b/),
  // Software upgrades ("upgrade redis to 7.2"), not schema upgrades.
  /\b(?:upgrade|update|bump|patch|downgrade)\s+(?:the\s+)?(?:[\w-]+\s+){0,2}(?:to\s+(?:version\s+|v)?\d+(?:\.\d+)*(?![\w%])|version\b)/,
];
const DESTRUCTIVE_VERB = new RegExp(
  `\\b${oneOf([
    "delete", "destroy", "drop", "wipe", "nuke", "purge", "erase", "truncate", "tear down", "teardown", "shut down",
    "shutdown", "terminate", "decommission", "remove", "deprovision", "rm -rf", "kill", "obliterate", "trash",
  ])}\\b`,
);
/** What a destructive-sounding verb may act on inside a workflow (an index, an alert...): gated there, not refused. */
const safeObject = derived(() => new RegExp(`\\b${oneOf([...byPriority().flatMap((p) => p.intent.vocabulary.safeObjects), "below", "under"])}\\b`));
const EVERYTHING = /\b(?:all|every|everything|entire|whole|any)\b/;
const DESTRUCTIVE_SQL = /^(?:drop\s+(?:database|schema|owned)|truncate|delete\s+from)\b|\bcascade\b/i;

function destructive(lower: string): boolean {
  const safe = safeObject();
  return matchAll(DESTRUCTIVE_VERB, lower).some((m) => {
    const rest = lower.slice(m.index + m[0].length);
    const window = (rest.split(/[,;.]|\band\b|\bthen\b/)[0] ?? "").split(/\s+/).slice(0, 7).join(" ");
    if (/^\s*from\b/.test(rest) && /^delete/.test(m[0])) return true;
    return EVERYTHING.test(window) || !safe.test(window);
  });
}

/** Why the request is refused before a workflow is chosen, or undefined. */
export function refusal(lower: string, statements: readonly string[]): RefusalReason | undefined {
  if (statements.some((s) => DESTRUCTIVE_SQL.test(s)) || destructive(lower)) return "destructive";
  if (NOT_A_CHANGE.test(lower) || OFF_TOPIC.some((re) => re.test(lower))) return "out-of-scope";
  return undefined;
}
