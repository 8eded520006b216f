import { z } from "zod";
import { CloudFrontOptions } from "./cloudfront.js";
import { ElastiCacheOptions } from "./elasticache.js";
import { RedisCacheOptions } from "./redis.js";
import { VarnishOptions } from "./varnish.js";

/** `cache: { redis: {...} } | { elasticache: {...} } | { cloudfront: {...} } | { varnish: {...} }`: exactly one. */
export const CacheSection = z.union(
  [
    z.object({ redis: RedisCacheOptions }).strict(),
    z.object({ elasticache: ElastiCacheOptions }).strict(),
    z.object({ cloudfront: CloudFrontOptions }).strict(),
    z.object({ varnish: VarnishOptions }).strict(),
  ],
  { error: "exactly one of { redis: {...} }, { elasticache: {...} }, { cloudfront: {...} }, { varnish: {...} }" },
);
export type CacheSection = z.infer<typeof CacheSection>;

export const CACHE_EXAMPLE = "cache: { redis: { url: redis://127.0.0.1:6379 } }, or elasticache / cloudfront / varnish";
