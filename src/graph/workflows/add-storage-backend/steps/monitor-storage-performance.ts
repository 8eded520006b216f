import { z } from "zod";
import { MetricsSummary, Verdict } from "../../../../core/metrics.js";
import { storageSignal } from "../../../../tools/storage/signal.js";
import { monitorWindow } from "../../../patterns/monitor-window.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { bytes, usd } from "../format.js";
import { IdentifyStorageRequirement, Requirement } from "./identify-storage-requirement.js";
import { MigrateExistingData } from "./migrate-existing-data.js";
import { ValidateDataAccess } from "./validate-data-access.js";

const Backend = z.object({ backend: z.string(), p95Ms: z.number().nullable(), throughputBps: z.number().nullable(), storedBytes: z.number(), monthlyUsd: z.number().nullable() });

export const MonitorStoragePerformance = defineStep({
  name: "MonitorStoragePerformance",
  description: "Watch the full window: per-backend read latency and throughput, Honua's serving metrics, monthly storage cost; roll back on degradation; then delete moved sources if asked",
  input: z.object({
    requirement: Requirement,
    watch: z.array(z.object({ target: z.custom<Requirement["target"]>(), keys: z.array(z.string()), baselineP95Ms: z.number().nullable() })),
    copyKey: z.string(),
  }),
  output: z.object({ window: MetricsSummary, verdict: Verdict, reason: z.string(), backends: z.array(Backend), deletedSources: z.number().int(), markdown: z.string() }),
  prepare: (view) => ({
    requirement: view.output(IdentifyStorageRequirement),
    watch: view.output(ValidateDataAccess).watch,
    copyKey: view.output(MigrateExistingData).copyKey,
  }),
  async run(ctx, input) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const r = input.requirement;
    const signal = storageSignal(storage, input.watch);
    const w = await monitorWindow(ctx, { minutes: ctx.deploymentConfig.monitoring.windowMinutes, baseline: r.baseline, trafficShare: 100, signals: [signal] });
    const written = await storage.ledger.written(input.copyKey);
    const moved = written.reduce((a, x) => a + x.size, 0);
    const readings = signal.last();
    const price = (b: string) => (b === r.backend.name ? r.backend.monthlyUsdPerGb : b === r.current.backend ? r.current.monthlyUsdPerGb : null);
    const backends = input.watch.map((b, i) => {
      const stored = b.target.backend === r.backend.name ? moved : r.move ? 0 : moved;
      const p = price(b.target.backend);
      return { backend: b.target.backend, p95Ms: readings[i]?.p95Ms ?? null, throughputBps: readings[i]?.throughputBps ?? null, storedBytes: stored, monthlyUsd: p === null ? null : Number(((stored / 1024 ** 3) * p).toFixed(6)) };
    });
    let deletedSources = 0;
    if (w.verdict === "healthy" && r.move && written.length) {
      // The approved move ends here: only after the copies were verified, the catalog points at them and the window was healthy.
      const { key } = await ctx.journal.intend("delete-sources", [{ kind: "irreversible", description: `${written.length} source objects (${bytes(moved)}) deleted from ${r.current.backend ?? r.current.provider} after their copies served` }]);
      for (const rec of written) {
        const at = storage.resolve(rec.source);
        if (at) await at.store.remove(at.key);
        deletedSources++;
      }
      await ctx.journal.done("delete-sources");
      ctx.progress(`deleted ${deletedSources} source objects (${key})`);
    }
    const row = (b: z.infer<typeof Backend>) => `| ${b.backend} | ${b.p95Ms ?? "n/a"} ms | ${b.throughputBps === null ? "n/a" : `${bytes(b.throughputBps)}/s`} | ${bytes(b.storedBytes)} (this run's objects) | ${b.monthlyUsd === null ? "n/a" : usd(b.monthlyUsd)} |`;
    const markdown = [
      `## Storage on ${ctx.deployment}: ${r.backend.name} (${r.target.kind} ${r.target.container})`,
      "",
      `Window: ${w.reason} (${w.verdict}). Honua p95 ${w.window.p95Ms} ms (before ${r.baseline.p95Ms} ms), errors ${w.window.errorRate}.`,
      "",
      "| backend | read p95 | throughput | stored | monthly cost |",
      "|---|---|---|---|---|",
      ...backends.map(row),
      "",
      r.move ? `${deletedSources} source objects deleted after the window.` : "Sources kept (copy, not move).",
    ].join("\n");
    return {
      output: { window: w.window, verdict: w.verdict, reason: w.reason, backends, deletedSources, markdown },
      verdict: w.verdict,
      reason: w.reason,
      metrics: { after: w.window },
    };
  },
});
