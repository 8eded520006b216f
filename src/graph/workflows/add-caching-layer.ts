import { CachingParams } from "../../planner/plan.js";
import * as s from "../../tools/cache/steps.js";
import type { WorkflowDef } from "../step.js";

/** Workflow 16: add a caching layer (Redis, Varnish or a CDN) with gradual rollout and auto-rollback. */
export const addCachingLayer: WorkflowDef = {
  id: "add-caching-layer",
  title: "Add caching layer",
  params: CachingParams,
  steps: [
    s.AnalyzeCurrentPerformance,
    s.DesignCachingStrategy,
    s.EstimateCostImpact,
    s.ProvisionCacheInfrastructure,
    s.ConfigureCaching,
    s.WarmCache,
    s.EnableCachingGradually,
    s.MonitorCachePerformance,
    s.OptimizeCacheSettings,
    s.GeneratePerformanceReport,
  ],
  preflight: (deployment, adapters, params) => s.cachingPreflight(deployment, adapters, CachingParams.parse(params)),
  rollback: s.rollbackCaching,
  cleanup: s.cleanupCaching,
};
