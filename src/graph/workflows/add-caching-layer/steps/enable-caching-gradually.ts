import { stagedShift } from "../../../patterns/staged-shift.js";
import { AnalyzeCurrentPerformance } from "./analyze-current-performance.js";
import { DesignCachingStrategy } from "./design-caching-strategy.js";

export const EnableCachingGradually = stagedShift({
  name: "EnableCachingGradually",
  description: "Shift traffic onto the cache stage by stage (a traffic gate before each), watching each stage",
  feature: (view) => view.output(DesignCachingStrategy).feature,
  stages: (view) => view.output(DesignCachingStrategy).rolloutSteps,
  baseline: (view) => view.output(AnalyzeCurrentPerformance).baseline,
  what: (view) => `the ${view.output(DesignCachingStrategy).cacheType} cache`,
  why: (view) => view.output(DesignCachingStrategy).notes,
});
