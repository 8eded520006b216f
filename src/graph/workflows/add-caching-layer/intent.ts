import { Text, lexicon, unique } from "../../../core/text.js";
import { UNIT, seconds, unitSeconds } from "../../../core/grammar.js";
import { HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE, ttlProblem } from "../../../tools/cache/honua-options.js";
import type { Extraction, Missing, WorkflowIntent } from "../module.js";
import { CacheType } from "./params.js";

export const CACHE_TYPES = lexicon({
  redis: ["redis", "elasticache", "elasti-cache"],
  varnish: ["varnish"],
  cloudfront: ["cloudfront", "cloud front", "cdn", "cdns"],
});
const UNSUPPORTED_CACHE = /\b(memcached?|cloudflare|fastly|akamai|hazelcast|squid|dragonfly|keydb)\b/;

const TTL = [
  new RegExp(`\\bttl\\s*(?:of|=|:|to|is|at|around|~)?\\s*(\\d+(?:\\.\\d+)?)\\s*${UNIT}?(?![\\w%])`),
  new RegExp(`\\b(\\d+(?:\\.\\d+)?)[\\s-]*${UNIT}[\\s-]+ttl\\b`),
  new RegExp(`\\b(?:expire|expires|expiry|expiration|expiring)\\s*(?:after|in|of|=|:|at)?\\s*(\\d+(?:\\.\\d+)?)\\s*${UNIT}\\b`),
  new RegExp(`\\bcache[ds]?\\s+(?:[a-z]+\\s+){0,3}?for\\s+(\\d+(?:\\.\\d+)?)\\s*${UNIT}\\b`),
];
const NOT_A_STEP = String.raw`(?!\d|\s*(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|k|x|gb|mb|replicas?|rows|records)\b)`;
const STEP = String.raw`\d{1,3}\s*%?${NOT_A_STEP}`;
const STEP_LIST = new RegExp(
  String.raw`(?<![\w.])${STEP}(?:\s*(?:,\s*(?:then|and)?|\/|->|=>|>|\bthen\b|\band\b|\bto\b)\s*${STEP})+`,
);
const ROLLOUT_CONTEXT = /\b(?:roll ?-?outs?|rolling|roll out|stages?|staged|steps?|canary|ramp\w*|gradual\w*|phases?|increments?|traffic|then)\b/;
const FIRST_STEP = new RegExp(
  String.raw`\b(?:start(?:ing)?|canary|begin(?:ning)?|first|initially|roll ?-?out|ramp(?:ing)?)(?:\s+(?:at|with|of|from|to))?\s+(\d{1,3})(?:\s*%|${NOT_A_STEP})`,
);
const STRAIGHT_TO_100 = /\b(?:straight|directly|immediately)\s+(?:to\s+)?100\s*%|\ball at once\b|\bin one go\b|\b100\s*%\s+(?:immediately|right away|at once)/;
const STEPS_QUESTION = "Rollout steps must be percentages that increase and end at 100 (e.g. 10, 50, 100). Which steps should I use?";

function rolloutSteps(lower: string): number[] | "invalid" | undefined {
  const list = STEP_LIST.exec(lower);
  let steps: number[] | undefined;
  // A bare "10/50/100" is a rollout when it ends at 100 or the request talks about rolling out.
  if (list && (/%|\b100\s*$/.test(list[0]) || ROLLOUT_CONTEXT.test(lower))) steps = (list[0].match(/\d+/g) ?? []).map(Number);
  else if (STRAIGHT_TO_100.test(lower)) steps = [100];
  else {
    const first = FIRST_STEP.exec(lower);
    if (first) steps = [Number(first[1])];
  }
  if (!steps) return undefined;
  if (steps[steps.length - 1] !== 100) steps.push(100);
  const valid = steps.every((v, i) => v >= 1 && v <= 100 && (i === 0 || v > (steps[i - 1] ?? 0)));
  return valid ? steps : "invalid";
}

function extract(t: Text): Extraction {
  const params: Record<string, unknown> = {};
  const missing: Missing[] = [];
  const unsupported = UNSUPPORTED_CACHE.exec(t.lower);
  const types = unique(CACHE_TYPES.find(t.lower).map((m) => m.value));
  if (unsupported) {
    missing.push({ param: "cacheType", question: `${unsupported[1]} isn't a cache I can set up. Should I use redis, varnish or cloudfront?` });
  } else if (types.length === 1) params.cacheType = types[0];

  const ttl = TTL.map((re) => re.exec(t.lower)).find((m) => m);
  if (ttl) {
    const value = seconds(ttl[1] ?? "", ttl[2]);
    if (ttlProblem(value) === null) params.ttlSeconds = value;
    else {
      const unit = ttl[2] ?? "s";
      const given = `${ttl[1] ?? ""} ${unit}${unitSeconds(unit) === 1 ? "" : ` (${Number(value.toPrecision(6))} s)`}`;
      const why = Number.isInteger(value) ? `${HONUA_TTL_RULE}` : `it is not a whole number of seconds, and Honua takes cache TTLs in whole seconds from 1 to ${HONUA_MAX_TTL_SECONDS} (1 day)`;
      missing.push({ param: "ttlSeconds", question: `A TTL of ${given} can't be set: ${why}. What TTL should I use (at most ${HONUA_MAX_TTL_SECONDS} s)?` });
    }
  }
  const steps = rolloutSteps(t.lower);
  if (steps === "invalid") missing.push({ param: "rolloutSteps", question: STEPS_QUESTION });
  else if (steps) params.rolloutSteps = steps;
  return { params, missing, claimed: [] };
}

export const intent: WorkflowIntent = {
  signals: [
    [new RegExp(`\\b(?:cache|caches|cached|caching)\\b|${CACHE_TYPES.source}|${UNSUPPORTED_CACHE.source}`), 4],
    [/\bttl\b/, 3],
  ],
  sqlScore: 0,
  vocabulary: {
    triggers: ["cache", "caches", "cached", "caching", "redis", "varnish", "cloudfront", "elasticache", "memcached", "rollout"],
    notTypos: ["vanish", "catching", "coaching", "cachet", "redid", "reds"],
    notDeployments: [...CACHE_TYPES.words, "cache", "caching", "ttl", "rollout", "hit", "ratio", "front"],
    things: [],
    safeObjects: ["ttl"],
  },
  capability: `add a caching layer (${CacheType.options.join(", ")})`,
  listed: 16,
  extract,
};
