import { z } from "zod";
import { numberIn, said, withoutNulls } from "../../../core/evidence.js";
import { HONUA_MAX_TTL_SECONDS } from "../../../tools/cache/honua-options.js";
import { defineTool } from "../module.js";
import { CacheType } from "./params.js";

const Args = z.strictObject({
  cacheType: CacheType.nullable().describe("redis (also ElastiCache), varnish, or cloudfront (any CDN)"),
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(HONUA_MAX_TTL_SECONDS)
    .nullable()
    .describe(`cache TTL in seconds, 1..${HONUA_MAX_TTL_SECONDS}: Honua refuses to start with a longer one, so ask (clarify, missing ttlSeconds) when the user wants longer`),
  rolloutSteps: z.array(z.number().int()).nullable().describe("traffic percentages, increasing, ending at 100"),
});

/** Words that name each cache type. */
const NAMED_BY: Record<z.infer<typeof CacheType>, RegExp> = { redis: /redis|elasti-?cache|valkey/, varnish: /varnish/, cloudfront: /cloud ?front|\bcdns?\b|\bedge\b/ };

const TTL_UNITS = [0.001, 1, 60, 3600, 86_400, 604_800, 2_592_000, 31_536_000];

/** A TTL the request states in some unit ("10 min", "an hour", "half a day"). */
function ttlGiven(request: string, ttl: number): boolean {
  const ns = [...request.matchAll(/(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
  if (/\b(?:an?|one)\s+(?:ms|millisecond|sec|second|min|minute|hr|hour|day|week|month|year)\b/.test(request)) ns.push(1);
  if (/\bhalf\s+(?:an?\s+)?(?:hour|day|minute)\b/.test(request)) ns.push(0.5);
  return ns.some((n) => TTL_UNITS.some((u) => Math.abs(n * u - ttl) < 1e-6));
}

export const tool = defineTool({
  args: Args,
  paramNames: ["cacheType", "ttlSeconds", "rolloutSteps"],
  toParams: (args) => withoutNulls(args),
  invented(params, request) {
    const s = said(request);
    if (!s.named(NAMED_BY, params.cacheType)) return `cacheType ${String(params.cacheType)} is not named in the request`;
    if (typeof params.ttlSeconds === "number" && !ttlGiven(s.text, params.ttlSeconds)) return `ttlSeconds ${params.ttlSeconds} is not in the request`;
    const steps = params.rolloutSteps;
    // The closing 100 is implied ("10/50" rolls out to 100).
    const given = steps && steps.at(-1) === 100 ? steps.slice(0, -1) : steps;
    const extra = given?.find((v) => !numberIn(s.text, v));
    if (extra !== undefined) return `rollout step ${extra} is not in the request`;
    return null;
  },
});
