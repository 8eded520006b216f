import { CloudFrontInfra } from "../tools/cache/cloudfront.js";
import { ElastiCacheInfra } from "../tools/cache/elasticache.js";
import type { CacheSection } from "../tools/cache/section.js";
import { VarnishInfra } from "../tools/cache/varnish.js";
import { CloudWatchMetrics } from "../tools/metrics/cloudwatch.js";
import { PrometheusMetrics } from "../tools/metrics/prometheus.js";
import type { MetricsSection } from "../tools/metrics/section.js";
import { CloudFrontTraffic } from "../tools/traffic/cloudfront.js";
import type { TrafficRouterSection } from "../tools/traffic/section.js";
import type { CacheInfra, MetricsSource, TrafficRouter } from "../tools/types.js";

/** The adapters for cloud services, metric servers and Varnish, from their sections (validated by each adapter's own option schema). */
type CacheSectionIn = Exclude<CacheSection, { redis: unknown }>;
type MetricsSectionIn = Exclude<MetricsSection, { source: "probe" }>;
type TrafficSectionIn = Extract<TrafficRouterSection, { kind: "cloudfront" }>;

export function cloudCache(section: CacheSectionIn): CacheInfra {
  if ("elasticache" in section) return new ElastiCacheInfra(section.elasticache);
  if ("cloudfront" in section) return new CloudFrontInfra(section.cloudfront);
  return new VarnishInfra(section.varnish);
}

export function cloudMetrics(section: MetricsSectionIn): MetricsSource {
  if (section.source === "prometheus") {
    const { source: _, ...options } = section;
    return new PrometheusMetrics(options);
  }
  const { source: _, ...options } = section;
  return new CloudWatchMetrics(options);
}

export function cloudTraffic(section: TrafficSectionIn): TrafficRouter {
  const { kind: _, ...options } = section;
  return new CloudFrontTraffic(options);
}
