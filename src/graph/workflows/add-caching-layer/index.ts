import type { WorkflowModule } from "../module.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { cachingPreflight } from "./caches.js";
import { cachingFacets } from "./facets.js";
import { CachingParams } from "./params.js";
import { cleanupCaching, rollbackCaching } from "./rollback.js";
import { AnalyzeCurrentPerformance } from "./steps/analyze-current-performance.js";
import { ConfigureCaching } from "./steps/configure-caching.js";
import { DesignCachingStrategy } from "./steps/design-caching-strategy.js";
import { EnableCachingGradually } from "./steps/enable-caching-gradually.js";
import { EstimateCostImpact } from "./steps/estimate-cost-impact.js";
import { GeneratePerformanceReport } from "./steps/generate-performance-report.js";
import { MonitorCachePerformance } from "./steps/monitor-cache-performance.js";
import { OptimizeCacheSettings } from "./steps/optimize-cache-settings.js";
import { ProvisionCacheInfrastructure } from "./steps/provision-cache-infrastructure.js";
import { WarmCache } from "./steps/warm-cache.js";

/** Workflow 16: add a caching layer (Redis, Varnish or a CDN) with gradual rollout and auto-rollback. */
export const workflow: WorkflowModule = {
  summary: "add a caching layer",
  capabilities: ["metrics", "config", "cache", "traffic", "tiles", "cost"],
  priority: 30,
  intent,
  tool,
  facets: cachingFacets,
  def: {
    id: "add-caching-layer",
    title: "Add caching layer",
    params: CachingParams,
    steps: [
      AnalyzeCurrentPerformance,
      DesignCachingStrategy,
      EstimateCostImpact,
      ProvisionCacheInfrastructure,
      ConfigureCaching,
      WarmCache,
      EnableCachingGradually,
      MonitorCachePerformance,
      OptimizeCacheSettings,
      GeneratePerformanceReport,
    ],
    preflight: (deployment, adapters, params) => cachingPreflight(deployment, adapters, CachingParams.parse(params)),
    rollback: rollbackCaching,
    cleanup: cleanupCaching,
  },
};
