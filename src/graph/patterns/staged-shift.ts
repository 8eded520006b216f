import { z } from "zod";
import { MetricsSummary, Verdict } from "../../core/metrics.js";
import type { ChangeSection } from "../../core/sections.js";
import { defineStep, type GateDescription, type RunView, type StepContext, type TypedStep } from "../step.js";
import { monitorWindow, type Signal } from "./monitor-window.js";

/** One stage of a staged shift: the share set, and what its window said. */
export const StageOutput = z.object({
  percent: z.number(),
  window: MetricsSummary,
  verdict: Verdict,
  reason: z.string(),
  evidence: z.string().nullable(),
  signals: z.array(z.object({ name: z.string(), verdict: Verdict, reason: z.string(), figures: z.record(z.string(), z.number().nullable()) })).default([]),
});
export type StageOutput = z.infer<typeof StageOutput>;

const StageInput = z.object({ percent: z.number().int().min(1).max(100), feature: z.string(), baseline: MetricsSummary, watch: z.unknown().optional() });

/** The share the run found on `feature` before it first moved it: where a rollback puts it back. */
export async function foundShare(ctx: StepContext, feature: string): Promise<number | null> {
  for (const e of await ctx.journal.entries()) for (const f of e.effects) if (f.kind === "share" && f.feature === feature) return f.before;
  return null;
}

export interface StagedShiftOptions {
  name: string;
  description: string;
  /** The traffic feature moved (the cache path, the read share of a new store, the new backend's routing share). */
  feature(view: RunView): string;
  /** Increasing percentages ending at 100. */
  stages(view: RunView): number[];
  /** What each stage's window is judged against. */
  baseline(view: RunView): MetricsSummary;
  /** What the signals and the stage hook need from the run so far (JSON-plain; kept in the stage's input). */
  watch?(view: RunView): unknown;
  /** Signals watched besides Honua's serving metrics (they read the deployment's own capabilities). */
  signals?(ctx: StepContext, watch: unknown): Signal[];
  /** Runs before the share moves: a check that throws (e.g. the stores disagree) keeps the share where it is. */
  beforeStage?(ctx: StepContext, percent: number, watch: unknown): Promise<void>;
  /** Runs after the share is set and before the stage is watched (e.g. Honua's config for the new path at 100%); journals what it changes. */
  onStage?(ctx: StepContext, percent: number, watch: unknown): Promise<void>;
  /** What the gate card says moves ("the redis cache", "reads from the new store"). */
  what(view: RunView): string;
  /** More for the card (notes from the design step, mismatch figures). */
  why?(view: RunView): string[];
  /** More change sections for the card (e.g. a validation table), inside the plan hash. */
  sections?(ctx: StepContext, view: RunView, percent: number): Promise<ChangeSection[]>;
  /** How long each stage is watched; the deployment's `stageMinutes` by default. */
  minutes?(ctx: StepContext): number;
}

/**
 * Moves a share of one feature's traffic in stages: a `traffic` gate before each stage, the share journalled (the
 * rollback puts back the share found) and set, then the stage watched; a degraded window rolls back on its own.
 */
export function stagedShift(o: StagedShiftOptions): TypedStep<z.infer<typeof StageInput>, StageOutput> {
  return defineStep({
    name: o.name,
    description: o.description,
    input: StageInput,
    output: StageOutput,
    stages: (view) => o.stages(view),
    prepare: (view, stage) => ({ percent: stage ?? 100, feature: o.feature(view), baseline: o.baseline(view), ...(o.watch ? { watch: o.watch(view) } : {}) }),
    async run(ctx, { percent, feature, baseline, watch }, _stage) {
      await o.beforeStage?.(ctx, percent, watch);
      const from = await ctx.adapters.traffic.share(feature);
      const { key } = await ctx.journal.intend(null, [{ kind: "share", feature, before: from, after: percent }]);
      await ctx.adapters.traffic.setShare(feature, percent, key);
      await ctx.journal.done(null);
      await o.onStage?.(ctx, percent, watch);
      const minutes = o.minutes?.(ctx) ?? ctx.deploymentConfig.monitoring.stageMinutes;
      const w = await monitorWindow(ctx, { minutes, baseline, trafficShare: percent, signals: o.signals?.(ctx, watch) ?? [] });
      ctx.progress(`${percent}% on ${feature}: ${w.reason}`);
      return {
        output: { percent, window: w.window, verdict: w.verdict, reason: w.reason, evidence: w.evidence, signals: w.signals },
        verdict: w.verdict,
        reason: `${percent}%: ${w.reason}`,
      };
    },
    gate: {
      kind: "traffic",
      async describe(ctx, view, stage): Promise<GateDescription> {
        const feature = o.feature(view);
        const stages = o.stages(view);
        const to = stage ?? 100;
        const from = await ctx.adapters.traffic.share(feature);
        const back = (await foundShare(ctx, feature)) ?? from;
        const m = ctx.deploymentConfig.monitoring;
        const minutes = o.minutes?.(ctx) ?? m.stageMinutes;
        return {
          action: `Route ${to}% of ${ctx.deployment} traffic through ${o.what(view)} (now ${from}%), then watch for ${minutes} min`,
          why: [`Stage ${stages.indexOf(to) + 1} of ${stages.length} (${stages.join(" -> ")}%).`, ...(o.why?.(view) ?? [])].join(" "),
          risk: `Automatic rollback to ${back}% and the config this run found if errors exceed ${(m.errorRateThreshold * 100).toFixed(1)}% or p95 exceeds baseline x ${m.latencyFactor} by more than ${m.latencyMinDeltaMs} ms; nothing this run did not change is touched.`,
          change: { traffic: { from, to }, ...(o.sections ? { sections: await o.sections(ctx, view, to) } : {}) },
        };
      },
    },
  });
}

