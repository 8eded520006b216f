import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { snapshot } from "../../../../tools/metrics/observe.js";
import { defineStep } from "../../../step.js";
import { ObservabilityParams } from "../params.js";
import { observabilityOf, readFound } from "../observability.js";
import { MEASURES } from "../templates.js";
import { metricNames } from "../promql.js";

export const Inventory = z.object({
  source: z.string(),
  files: z.array(z.object({ target: z.string(), path: z.string(), bytes: z.number().int().nullable() })),
  rules: z.array(z.object({ name: z.string(), type: z.string(), health: z.string(), metrics: z.array(z.string()) })),
  dashboards: z.array(z.object({ uid: z.string(), title: z.string(), version: z.number().int(), panels: z.array(z.string()) })).nullable(),
  targets: z.object({ up: z.number().int(), down: z.array(z.string()) }),
  ruleEvaluationFailures: z.number(),
  /** Honua measures with no alert watching them. */
  unwatched: z.array(z.string()),
  /** Series the loaded rules read that Prometheus does not have: rules that can never fire. */
  noData: z.array(z.string()),
  baseline: MetricsSummary.nullable(),
});
export type Inventory = z.infer<typeof Inventory>;

export const IdentifyObservabilityGap = defineStep({
  name: "IdentifyObservabilityGap",
  description: "Read the deployment's rule files, loaded rules, scrape targets, Alertmanager config and Grafana dashboards; find what is not watched and what can never fire",
  input: z.object({ params: ObservabilityParams }),
  output: Inventory,
  prepare: (view) => ({ params: ObservabilityParams.parse(view.params) }),
  async run(ctx) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const found = await readFound(obs);
    const loaded = await obs.loadedRules();
    const targets = await obs.targets();
    const rules = loaded.map((r) => ({ name: r.name, type: r.type, health: r.health, metrics: metricNames(r.expr) }));
    const recorded = new Set(loaded.filter((r) => r.type === "recording").map((r) => r.name));
    const read = [...new Set(rules.flatMap((r) => r.metrics))].filter((m) => !recorded.has(m) && m !== "ALERTS");
    const counts = await obs.series(read);
    const noData = read.filter((m) => (counts[m] ?? 0) === 0);
    const watched = new Set(loaded.filter((r) => r.type === "alerting").flatMap((r) => metricNames(r.expr)));
    const unwatched = MEASURES.filter((m) => !metricNames(m.expr).some((x) => watched.has(x))).map((m) => m.id);
    const m = ctx.deploymentConfig.monitoring;
    // Honua's own serving metrics: the monitoring window compares against them. A deployment without them still gets its rules changed.
    let baseline: MetricsSummary | null = null;
    try {
      baseline = await snapshot(ctx.adapters, 60, m.sampleEveryMinutes);
    } catch (e) {
      ctx.progress(`no serving baseline (${e instanceof Error ? e.message : String(e)}); the health watch will judge scrape and rule health only`);
    }
    const inventory: Inventory = {
      source: obs.describe(),
      files: found.files.map((f) => ({ target: f.target, path: f.path, bytes: f.content === null ? null : Buffer.byteLength(f.content) })),
      rules,
      dashboards: found.dashboards.length || (await obs.dashboards()) !== null ? found.dashboards.map((d) => ({ uid: d.summary.uid, title: d.summary.title, version: d.summary.version, panels: d.model.panels.map((p) => p.title ?? "") })) : null,
      targets: { up: targets.filter((t) => t.health === "up").length, down: targets.filter((t) => t.health !== "up").map((t) => `${t.job}/${t.instance}: ${t.lastError ?? t.health}`) },
      ruleEvaluationFailures: await obs.ruleEvaluationFailures(),
      unwatched,
      noData,
      baseline,
    };
    ctx.progress(`${rules.length} rules loaded, ${inventory.targets.up} targets up${noData.length ? `, no series for ${noData.join(", ")}` : ""}`);
    return {
      output: inventory,
      reason: `${rules.length} rules, ${found.dashboards.length} dashboards; unwatched: ${unwatched.join(", ") || "none"}`,
      ...(baseline ? { metrics: { before: baseline } } : {}),
    };
  },
});
