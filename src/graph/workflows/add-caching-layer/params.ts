import { z } from "zod";
import { HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE } from "../../../tools/cache/honua-options.js";

export const CacheType = z.enum(["redis", "varnish", "cloudfront"]);

const percent = z.number().int().min(1).max(100);

/** A param the user did not give is absent; the Design step fills it and says why. */
export const CachingParams = z
  .object({
    cacheType: CacheType.optional(),
    /** The cache TTL in seconds, for every cache type: Honua refuses to start with a cache TTL outside 1..86400. */
    ttlSeconds: z
      .number()
      .int(`ttlSeconds must be a whole number of seconds: ${HONUA_TTL_RULE}`)
      .min(1, HONUA_TTL_RULE)
      .max(HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE)
      .optional(),
    rolloutSteps: z
      .array(percent)
      .min(1)
      .refine((s) => s.every((v, i) => i === 0 || v > s[i - 1]!), "rollout steps must increase")
      .refine((s) => s[s.length - 1] === 100, "the last rollout step must be 100")
      .optional(),
  })
  .strict();
export type CachingParams = z.infer<typeof CachingParams>;
