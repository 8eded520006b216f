import type { Signal } from "../signal.js";
import type { ObservabilityCapability } from "./types.js";

/** What the change is judged against: the targets that were already down and the evaluation failures so far. */
export interface ObservabilityBaseline {
  down: readonly string[];
  ruleEvaluationFailures: number;
  /** Rules the change added or modified: each must be loaded and healthy. */
  rules: readonly string[];
  /** Series those rules read: none at all is no data. */
  metrics: readonly string[];
}

/**
 * Scrape and rule-evaluation health after the change: a target down that was up before, a changed rule failing to
 * evaluate or missing, or new rule evaluation failures are degraded; the changed rules' series gone is no data.
 */
export function observabilitySignal(obs: ObservabilityCapability, base: ObservabilityBaseline): Signal & { last(): Record<string, unknown> | null } {
  let last: Record<string, unknown> | null = null;
  return {
    name: "observability",
    async read() {
      const targets = await obs.targets();
      const rules = await obs.loadedRules();
      const failures = await obs.ruleEvaluationFailures();
      const series = await obs.series(base.metrics);
      const newlyDown = targets.filter((t) => t.health === "down" && !base.down.some((d) => d.startsWith(`${t.job}/${t.instance}`))).map((t) => `${t.job}/${t.instance}: ${t.lastError ?? "down"}`);
      const broken = rules.filter((r) => base.rules.includes(r.name) && r.health === "err").map((r) => `${r.name}: ${r.lastError ?? "error"}`);
      const missing = base.rules.filter((n) => !rules.some((r) => r.name === n));
      const empty = base.metrics.filter((m) => (series[m] ?? 0) === 0);
      const newFailures = failures - base.ruleEvaluationFailures;
      last = { targets, newlyDown, broken, missing, newFailures, series };
      const figures = { targetsUp: targets.filter((t) => t.health === "up").length, targetsDown: targets.length - targets.filter((t) => t.health === "up").length, rulesLoaded: rules.length, newEvaluationFailures: newFailures };
      const bad = [...newlyDown.map((d) => `target down: ${d}`), ...broken.map((b) => `rule failing: ${b}`), ...missing.map((m) => `rule not loaded: ${m}`), ...(newFailures > 0 ? [`${newFailures} new rule evaluation failure(s)`] : [])];
      if (bad.length) return { verdict: "degraded", reason: `observability degraded (${bad.join("; ")})`, figures };
      if (base.metrics.length && empty.length === base.metrics.length) return { verdict: "inconclusive", reason: `no data: ${empty.join(", ")} have no series; the changed rules cannot fire`, figures };
      return { verdict: "healthy", reason: `scrapes and rule evaluation healthy (${figures.targetsUp} targets up, ${rules.length} rules, no new evaluation failures)`, figures };
    },
    evidence: () => last,
    last: () => last,
  };
}
