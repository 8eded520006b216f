/**
 * Which deployment a request names: a known name or alias in a deployment position ("on prod", "prod's", "prod:"),
 * several of them, or a plain word in such a position that is not a known deployment (asked about, never guessed).
 */
import { resolveDeployment, type AgentConfig } from "../config.js";
import { Text, matchAll, unique, type Span } from "../core/text.js";
import { derived } from "../graph/workflows/registry.js";
import { byPriority } from "./registered.js";

const PREPOSITIONS = new Set(["to", "in", "on", "for", "of", "at", "against", "from", "into", "onto", "across"]);
const DETERMINERS = new Set(["the", "our", "my", "a", "an", "this", "that"]);
const ENVIRONMENT_WORDS = new Set(["deployment", "environment", "env", "cluster", "stack", "instance", "site", "tenant"]);
/** A word followed by one of these names a thing (a collection, an endpoint...), not a deployment; workflows add theirs. */
const THINGS = ["endpoint", "endpoints", "api", "layer", "layers", "collection", "collections", "tiles", "data", "queries", "traffic", "requests"];
/** Words that follow a preposition in ordinary requests and are never deployment names; workflows add theirs. */
const COMMON_WORDS = [
  "it", "this", "that", "them", "all", "both", "everything", "everywhere", "anything", "me", "us", "you", "top", "place",
  "there", "here", "now", "today", "tomorrow", "tonight", "stages", "steps", "step", "batches", "batch", "tiles", "tile",
  "data", "items", "item", "collections", "collection", "layers", "layer", "api", "apis", "endpoint", "endpoints",
  "requests", "request", "traffic", "users", "service", "services", "server", "servers", "honua", "reads", "writes",
  "queries", "query", "performance", "speed", "cost", "each", "every", "new", "old", "minutes", "minute", "seconds",
  "hours", "days", "weeks", "months", "years", "ms", "rate", "gradual", "gradually", "once", "default", "defaults",
  "later", "phases", "chunks", "parallel", "peak", "case", "order", "west", "east", "europe", "north", "south",
  "central", "then", "and", "or", "with", "usage", "cpu", "memory", "ogc", "wms", "wmts", "wfs", "good", "real", "sure",
  "speedup", "elsewhere", "use",
];

const words = derived(() => {
  const vocab = byPriority().map((p) => p.intent.vocabulary);
  return {
    notDeployments: new Set([...COMMON_WORDS, ...DETERMINERS, ...vocab.flatMap((v) => [...v.notDeployments, ...v.triggers])]),
    things: new Set([...THINGS, ...vocab.flatMap((v) => v.things)]),
  };
});
interface Token {
  start: number;
  end: number;
  word: string;
  lower: string;
  possessive: boolean;
  colon: boolean;
  next: string;
}

function tokenize(t: Text): Token[] {
  const raw = matchAll(/\S+/, t.orig);
  return raw.map((m, i) => {
    const lead = /^[("'`[<*_]*/.exec(m[0])?.[0].length ?? 0;
    const trail = /(?:'s)?[)"'`\]>.,!?:;*]*$/i.exec(m[0].slice(lead))?.[0] ?? "";
    const start = m.index + lead;
    const end = m.index + m[0].length - trail.length;
    const word = t.orig.slice(start, end);
    return {
      start,
      end,
      word,
      lower: word.toLowerCase(),
      possessive: /^'s/i.test(trail),
      colon: trail.includes(":"),
      next: (raw[i + 1]?.[0] ?? "").toLowerCase(),
    };
  });
}

export type DeploymentFinding =
  | { kind: "known"; name: string; spans: Span[] }
  | { kind: "several"; names: string[]; spans: Span[] }
  | { kind: "none"; spans: Span[] };

/** A rollout "stage" is not the staging alias: "stage 1", "stage by stage", "each stage". */
const ORDINALS = new Set([
  "each", "every", "per", "first", "second", "third", "final", "last", "next", "one", "a", "another", "single", "canary",
  "rollout", "by", "rolling",
]);

export function knownDeployments(t: Text, config: AgentConfig): DeploymentFinding {
  const toks = tokenize(t);
  const hits = toks.flatMap((tok, i) => {
    const name = resolveDeployment(config, tok.word);
    const prev = toks[i - 1]?.lower ?? "";
    const endsPhrase = tok.end < t.orig.length && t.orig[tok.end] !== " ";
    if (!name || (!endsPhrase && /^(?:\d+%?|by)$/.test(tok.next)) || ORDINALS.has(prev)) return [];
    const positioned =
      PREPOSITIONS.has(prev) || tok.possessive || tok.colon || ENVIRONMENT_WORDS.has(tok.next.replace(/\W+$/, "")) ||
      (DETERMINERS.has(prev) && PREPOSITIONS.has(toks[i - 2]?.lower ?? "")) ||
      // "to prod and staging": the second name is in the same position as the first.
      (/^(?:and|or|&|\+)$/.test(prev) && resolveDeployment(config, toks[i - 2]?.word ?? "") !== undefined);
    return [{ name, positioned, span: phraseSpan(t, tok) }];
  });
  const spans = hits.map((h) => h.span);
  const preferred = hits.some((h) => h.positioned) ? hits.filter((h) => h.positioned) : hits;
  const names = unique(preferred.map((h) => h.name));
  if (names.length === 0) return { kind: "none", spans };
  if (names.length > 1) return { kind: "several", names, spans };
  return { kind: "known", name: names[0] ?? "", spans };
}

/** "on the prod deployment", "prod's", "prod:" — the whole phrase, so it can be cut from descriptions. */
function phraseSpan(t: Text, tok: Token): Span {
  const before = /(?:\b(?:on|in|for|to|at|of|from|against|into|onto)\s+(?:the\s+)?)$/.exec(t.lower.slice(0, tok.start));
  const after = /^(?:'s|:)?(?:\s+(?:deployment|environment|env|cluster))?/.exec(t.lower.slice(tok.end));
  return [before ? before.index : tok.start, tok.end + (after?.[0].length ?? 0)];
}

/** A plain name in a deployment position that is not a known deployment: asked about, never guessed. */
export function unknownDeployment(t: Text, claimed: ReadonlySet<string>): string | undefined {
  const { notDeployments, things } = words();
  const toks = tokenize(t);
  const nameLike = (w: string) => /^[a-z][a-z0-9_-]{0,39}$/i.test(w);
  // "to deployment qa-7", "on the staging-2 environment": the grammar says where the name is. A name after the
  // environment word wins; a preposition or an article is never the name.
  const named = toks.findIndex((tok, i) => ENVIRONMENT_WORDS.has(tok.lower) && (PREPOSITIONS.has(toks[i - 1]?.lower ?? "") || DETERMINERS.has(toks[i - 1]?.lower ?? "")) && nameLike(toks[i + 1]?.word ?? "") && !notDeployments.has(toks[i + 1]!.lower) && !PREPOSITIONS.has(toks[i + 1]!.lower));
  if (named >= 0 && !claimed.has(toks[named + 1]!.lower)) return toks[named + 1]!.word;
  const hit = toks.find((tok, i) => {
    if (!nameLike(tok.word) || notDeployments.has(tok.lower) || claimed.has(tok.lower) || PREPOSITIONS.has(tok.lower) || DETERMINERS.has(tok.lower)) return false;
    const next = tok.next.replace(/[.,!?;:]+$/, "");
    if (tok.possessive || ENVIRONMENT_WORDS.has(next) || (i === 0 && tok.colon)) return true;
    const prev = toks[i - 1]?.lower ?? "";
    return PREPOSITIONS.has(prev) && !things.has(next) && !/^[(.[]/.test(tok.next) && !/^\d/.test(next);
  });
  return hit?.word;
}
