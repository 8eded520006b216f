import { z } from "zod";
import { CloudFrontInfra, CloudFrontOptions } from "../tools/cache/cloudfront.js";
import { ElastiCacheInfra, ElastiCacheOptions } from "../tools/cache/elasticache.js";
import { VarnishInfra, VarnishOptions } from "../tools/cache/varnish.js";
import { CloudWatchMetrics, CloudWatchMetricsOptions } from "../tools/metrics/cloudwatch.js";
import { PrometheusMetrics, PrometheusMetricsOptions } from "../tools/metrics/prometheus.js";
import { CloudFrontTraffic, CloudFrontTrafficOptions } from "../tools/traffic/cloudfront.js";
import type { CacheInfra, MetricsSource, TrafficRouter } from "../tools/types.js";

/**
 * The adapters for cloud services, metric servers and Varnish, behind the same deployment sections as the
 * local ones; each section is validated by its adapter's own option schema.
 */

export const CloudCacheSections = [
  z.object({ elasticache: ElastiCacheOptions }).strict(),
  z.object({ cloudfront: CloudFrontOptions }).strict(),
  z.object({ varnish: VarnishOptions }).strict(),
] as const;

export const CloudMetricsSections = [
  PrometheusMetricsOptions.extend({ source: z.literal("prometheus") }),
  CloudWatchMetricsOptions.extend({ source: z.literal("cloudwatch") }),
] as const;

export const CloudTrafficSections = [CloudFrontTrafficOptions.extend({ kind: z.literal("cloudfront") })] as const;

type CacheSectionIn = z.infer<(typeof CloudCacheSections)[number]>;
type MetricsSectionIn = z.infer<(typeof CloudMetricsSections)[number]>;
type TrafficSectionIn = z.infer<(typeof CloudTrafficSections)[number]>;

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
