import type { MetricsSummary, Verdict } from "../../core/metrics.js";
import { judge, summarize } from "../../tools/metrics/observe.js";
import type { DeploymentAdapters } from "../../tools/types.js";
import type { Signal } from "../../tools/signal.js";
import { StepPaused, type StepContext } from "../step.js";

/** What one signal says about the window so far. */
export type { Signal, SignalReading } from "../../tools/signal.js";

/** Honua's serving metrics against the baseline: p95 over baseline x factor, or errors over the threshold, is degraded. */
export function servingSignal(baseline: MetricsSummary, minutes: number): Signal & { last(): MetricsSummary | null } {
  let last: MetricsSummary | null = null;
  return {
    name: "serving",
    async read(adapters, from, to, { monitoring, final }) {
      const every = monitoring.sampleEveryMinutes;
      const samples = await adapters.metrics.samples(from, to, every);
      let window = summarize(samples, to, minutes, null, every);
      if (final) window = { ...window, monthlyCostUsd: await monthlyTotal(adapters) };
      last = window;
      const j = judge(window, baseline, monitoring, adapters.metrics.lastQueries?.()?.source);
      return { ...j, figures: { p95Ms: window.p95Ms, errorRate: window.errorRate, hitRatio: window.hitRatio, samples: window.samples } };
    },
    evidence: (adapters) => adapters.metrics.lastQueries?.() ?? null,
    last: () => last,
  };
}

/** The latest readings in a few words, for the progress line: the serving figures, and any signal not healthy. */
function readingsNote(rs: WindowResult["signals"]): string {
  const parts: string[] = [];
  const serving = rs.find((r) => r.name === "serving");
  const f = serving?.figures ?? {};
  if (typeof f.p95Ms === "number") parts.push(`p95 ${f.p95Ms} ms`);
  if (typeof f.errorRate === "number") parts.push(`errors ${(f.errorRate * 100).toFixed(2)}%`);
  if (typeof f.hitRatio === "number") parts.push(`hit ratio ${(f.hitRatio * 100).toFixed(1)}%`);
  for (const r of rs) if (r.verdict !== "healthy") parts.push(`${r.name} ${r.verdict}`);
  return (parts.length ? parts.join(", ") : "no readings yet").slice(0, 300);
}

async function monthlyTotal(adapters: DeploymentAdapters): Promise<number | null> {
  try {
    const parts = await adapters.cost.monthly();
    return Number(Object.values(parts).reduce((a, b) => a + b, 0).toFixed(2));
  } catch {
    return null;
  }
}

const RANK: Record<Verdict, number> = { healthy: 0, inconclusive: 1, degraded: 2 };

export interface WindowResult {
  /** The serving window (Honua's p95, errors, hit ratio), when the serving signal was watched. */
  window: MetricsSummary;
  verdict: Verdict;
  reason: string;
  /** Every signal's last word. */
  signals: { name: string; verdict: Verdict; reason: string; figures: Record<string, number | null> }[];
  /** Set when the window ended before its time: a degradation, or a stop request. */
  endedEarly: string | null;
  /** Transcript key of the raw data behind the verdict, or null. */
  evidence: string | null;
}

/**
 * Watches a monitoring window (simulated time in the sandbox) over `signals`, serving metrics first, and judges it:
 * the worst signal decides. The window is looked at in slices, so a degradation rolls back as soon as it shows and a
 * cancel or rollback request ends the wait. It starts once per step and stage, even across a crash: a restart waits
 * only for what is left of it.
 */
export async function monitorWindow(
  ctx: StepContext,
  o: { minutes: number; baseline: MetricsSummary; trafficShare?: number | null; signals?: Signal[]; sliceMinutes?: number },
): Promise<WindowResult> {
  const m = ctx.deploymentConfig.monitoring;
  const adapters = ctx.adapters;
  const start = new Date(await ctx.remember("window-start", adapters.clock.now().toISOString()));
  const serving = servingSignal(o.baseline, o.minutes);
  const signals: Signal[] = [serving, ...(o.signals ?? [])];
  const end = start.getTime() + o.minutes * 60_000;
  const slice = Math.max(m.sampleEveryMinutes, o.sliceMinutes ?? o.minutes / 12) * 60_000;
  const readAll = async (to: Date, final: boolean) => {
    const out: WindowResult["signals"] = [];
    for (const s of signals) out.push({ name: s.name, ...(await s.read(adapters, start, to, { monitoring: m, final })) });
    return out;
  };
  const attach = async (): Promise<string | null> => {
    const bodies = Object.fromEntries(signals.map((s) => [s.name, s.evidence?.(adapters) ?? null]).filter(([, b]) => b !== null));
    if (Object.keys(bodies).length === 0) return null;
    // The serving signal's log is the window's evidence as it always was; other signals' logs sit beside it.
    const body = Object.keys(bodies).length === 1 && "serving" in bodies ? bodies.serving : bodies;
    return ctx.attach("window", body);
  };
  const worst = (rs: WindowResult["signals"]) => [...rs].sort((a, b) => RANK[b.verdict] - RANK[a.verdict])[0]!;
  const finish = (rs: WindowResult["signals"], reason: string, endedEarly: string | null, evidence: string | null): WindowResult => ({
    window: { ...serving.last()!, trafficShare: o.trafficShare ?? null },
    verdict: worst(rs).verdict,
    reason,
    signals: rs,
    endedEarly,
    evidence,
  });
  /** Degraded readings the next reading did not confirm: said in the window's reason, never a rollback. */
  const blips: string[] = [];
  for (;;) {
    const now = adapters.clock.now().getTime();
    if (now >= end) break;
    await adapters.clock.sleep(Math.min(slice, end - now));
    const at = adapters.clock.now();
    if (at.getTime() >= end) break;
    const rs = await readAll(at, false);
    const total = Math.round(o.minutes * 60);
    ctx.progress({ done: Math.min(total, Math.max(0, Math.round((at.getTime() - start.getTime()) / 1000))), total, unit: "seconds", rate: 0, note: readingsNote(rs) });
    const bad = rs.find((r) => r.verdict === "degraded");
    if (bad) {
      // A degraded reading is confirmed by a second one before anything is rolled back: one slow smoke query on a
      // busy host is a blip, not a regression. The confirming reading's reason is the one given.
      const final = await readAll(at, true);
      const again = final.find((r) => r.name === bad.name);
      if (!again || again.verdict === "degraded") {
        const reason = `${(again ?? bad).reason} (after ${Math.round((at.getTime() - start.getTime()) / 60_000)} of ${o.minutes} min)`;
        return { ...finish(final, reason, "degraded", await attach()), verdict: "degraded" };
      }
      blips.push(`${bad.reason}, not confirmed by the next reading`);
      ctx.progress(`${bad.name}: ${bad.reason}; the next reading does not confirm it, watching on`);
    }
    const stop = await ctx.stopRequested();
    if (stop) {
      const final = await readAll(at, true);
      return finish(final, `window ended early: ${stop}`, stop, await attach());
    }
    const paused = await ctx.pauseRequested?.();
    if (paused) {
      const minutes = (at.getTime() - start.getTime()) / 60_000;
      throw new StepPaused(`left the watch window after ${Number(minutes.toFixed(2))} of ${o.minutes} min for the pause by ${paused.by}; continuing watches on from the same start`);
    }
  }
  const final = await readAll(new Date(Math.max(end, start.getTime())), true);
  const w = worst(final);
  const said = final.length === 1 ? w.reason : final.map((r) => `${r.name}: ${r.reason}`).join("; ");
  const reason = blips.length ? `${said} (${blips.length} unconfirmed: ${blips.slice(0, 2).join("; ")}${blips.length > 2 ? "; ..." : ""})` : said;
  return finish(final, reason, null, await attach());
}
