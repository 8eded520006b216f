/**
 * Request hygiene before anything is read: typographic characters and mentions normalised, typos in trigger words
 * corrected, attempts to steer the agent found, greetings and sign-offs trimmed.
 */
import { Text, editDistance, oneOf, type Span } from "../core/text.js";
import { derived } from "../graph/workflows/registry.js";
import { byPriority } from "./registered.js";

export const normalizeChars = (s: string): string =>
  s
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2192\u21d2\u27f6]/g, "->")
    .replace(/[\u2013\u2014]/g, "-")
    // Starting only where a run of spaces starts: a match tried inside a long run would rescan it (quadratic).
    .replace(/(?<!\s)\s*(?:percent|pct)\b/gi, "%")
    .replace(/<@[\w]+>|(?<!\w)@honua[\w-]*/gi, " ");

// ---------------------------------------------------------------------------------------------- typos

/** Every workflow's trigger words, and the real words near them that are never corrected. */
const typoTables = derived(() => {
  const triggers = byPriority().flatMap((p) => p.intent.vocabulary.triggers);
  return { triggers, known: new Set(triggers), notTypos: new Set(byPriority().flatMap((p) => p.intent.vocabulary.notTypos)) };
});

function correction(word: string, keep: ReadonlySet<string>): string | undefined {
  const { triggers, known, notTypos } = typoTables();
  if (known.has(word) || notTypos.has(word) || keep.has(word)) return undefined;
  const budget = word.length >= 8 ? 2 : 1;
  let best: string | undefined;
  let bestDistance = budget + 1;
  for (const v of triggers) {
    if (v[0] !== word[0] || Math.abs(v.length - word.length) > budget) continue;
    const dist = editDistance(word, v);
    if (dist < bestDistance) [best, bestDistance] = [v, dist];
  }
  return best;
}

/** Corrects typos of trigger words ("cahce", "redsi", "dashbaord"); words in `keep` (deployment names) never. */
export function fixTypos(s: string, keep: ReadonlySet<string>): string {
  // Whole words only, and not CamelCase names (HighErrorRate) or parts of identifiers (honua-cold, features.geom).
  return s.replace(/(?<![\w\-./:@#])[A-Za-z]{5,}(?![\w\-/:@#]|\.\w)/g, (w) => {
    const lower = w.toLowerCase();
    const plain = w === lower || w === w.toUpperCase() || w === w[0] + lower.slice(1);
    return (plain && correction(lower, keep)) || w;
  });
}

// ---------------------------------------------------------------------------------------------- manipulation

/**
 * Attempts to steer the agent. They are cut out of the request: the plan has no field for approvals,
 * so whatever legitimate change is left gets the normal gated plan, and nothing left means a refusal.
 */
const SKIP = [
  "skip", "skipping", "bypass", "bypassing", "disable", "disabling", "turn off", "switch off", "remove", "ignore",
  "override", "circumvent", "avoid", "suspend", "waive", "without", "no", "forget",
];
const SAFEGUARDS = [
  "approvals?", "approval gates?", "approval steps?", "gates?", "gating", "sign-?offs?", "reviews?", "confirmations?",
  "two-person rule", "2-person rule", "checks", "guardrails", "interrupts?", "auto-?rollbacks?", "rollbacks?", "backups?", "locks?",
];
export const MANIPULATION = [
  /\bignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|your|system|all|these|those)(?:\s+(?:instructions?|rules|prompts?|guidelines|policies|constraints|messages?))?/,
  new RegExp(`\\b${oneOf(SKIP)}\\s+(?:the\\s+|all\\s+|any\\s+|every\\s+|of\\s+)*(?:human\\s+|manual\\s+|safety\\s+)?${oneOf(SAFEGUARDS)}\\b`),
  /\bauto-?approv\w*(?:\s*[:=]?\s*\[[^\]]*\]|\s+(?:it|this|everything|all|gates?|provision|traffic|delete))*/,
  /\b(?:just\s+)?approve\s+(?:it|this|that|everything|all|them|yourself|automatically|on my behalf|every\w*)\b/,
  /\b(?:it'?s\s+|already\s+|pre-?)?approved(?:\s+(?:by|from)\s+[\w@.-]+)?/,
  /\b(?:don'?t|do not|no need to|never)\s+(?:ask|wait|bother|stop|pause)\b(?:\s+(?:for|me|anyone|approval|on|at))*/,
  /\byou are now\b[^.,;]*|\bpretend\b[^.,;]*|\b(?:system prompt|developer mode|jailbreak|admin mode|god mode|sudo mode)\b/,
  /\bas (?:an?\s+)?(?:admin|administrator|root|superuser)\b/,
  /\bi(?:'m| am)\s+(?:the\s+|an?\s+)?(?:admin|approver|on-?call|owner|cto|boss)\b/,
  /\bapprov\w*\b/,
];

// ---------------------------------------------------------------------------------------------- greetings

const PREAMBLE = new RegExp(
  `^(?:${oneOf([
    "hey", "hi", "hello", "yo", "ok", "okay", "so", "please", "pls", "plz", "kindly", "bot", "agent", "honua", "can you",
    "could you", "would you", "will you", "can we", "could we", "let's", "lets", "we need to", "we need", "i need you to",
    "i need", "i want you to", "i want to", "i want", "i'd like you to", "i'd like to", "i'd like", "we'd like to",
    "we want to", "go ahead and", "time to", "need to", "want to", "help me", "quick one", "then", "and", "also",
  ])}\\b[\\s,:;!.-]*)+`,
);
const SIGN_OFFS = ["please", "pls", "plz", "thanks", "thank you", "thx", "ty", "asap", "cheers", "kthx", "and", "then"];
const isTrailingPunctuation = (c: string): boolean => /[\s,;:!?.]/.test(c);
const isWordChar = (c: string | undefined): boolean => c !== undefined && /\w/.test(c);

/**
 * Where the sign-offs and punctuation at the end of the text begin (its length when there are none). Read from
 * the end, one token at a time: linear in the text, where an end-anchored regex would be tried from every
 * position and rescan the tail each time (a long "please please … plea" took seconds).
 */
function trailerStart(lower: string): number {
  let end = lower.length;
  for (;;) {
    let i = end;
    while (i > 0 && isTrailingPunctuation(lower[i - 1]!)) i--;
    if (i < end) {
      end = i;
      continue;
    }
    const word = SIGN_OFFS.find((w) => end >= w.length && lower.endsWith(w, end) && !isWordChar(lower[end - w.length - 1]));
    if (!word) return end;
    end -= word.length;
  }
}

/** The request without greetings, politeness and sign-offs at either end. */
export function tidy(t: Text): Text {
  const lead = PREAMBLE.exec(t.lower);
  const trail = trailerStart(t.lower);
  const spans: Span[] = [];
  if (lead) spans.push([0, lead[0].length]);
  if (trail < t.lower.length) spans.push([trail, t.lower.length]);
  const leadingPunctuation = /^[\s,;:.!-]+/.exec(t.lower);
  if (leadingPunctuation) spans.push([0, leadingPunctuation[0].length]);
  return spans.length ? tidy(t.without(spans)) : t;
}
