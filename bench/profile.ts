/**
 * V8's sampling CPU profiler on this process's main thread, read back by time window: which functions the samples
 * taken inside given spans fell in (self time) and which frames they were under (total time). The profile's
 * timestamps are microseconds of the monotonic clock `process.hrtime` reads, so a span is two `hrtimeUs()` readings.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const hrtimeUs = (): number => Number(process.hrtime.bigint() / 1000n);

export class Profiler {
  private readonly session = new Session();

  async start(intervalUs = 50): Promise<void> {
    this.session.connect();
    await this.session.post("Profiler.enable");
    await this.session.post("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.session.post("Profiler.start");
  }

  /** Stops, writes the whole profile to `file` (open it in Chrome's DevTools; the spans go beside it) and sums the samples inside `spans`. */
  async stop(file: string, spans: [number, number][], top = 25): Promise<{ samplesInSpans: number; msInSpans: number; selfMs: { fn: string; ms: number }[]; totalMs: { fn: string; ms: number }[] }> {
    const { profile } = (await this.session.post("Profiler.stop")) as { profile: CpuProfile };
    this.session.disconnect();
    writeFileSync(file, JSON.stringify(profile));
    writeFileSync(`${file}.spans.json`, JSON.stringify(spans));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const label = (n: ProfileNode) => {
      const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench|test)\//, "$1/");
      return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
    };
    const self = new Map<string, number>();
    const total = new Map<string, number>();
    let t = profile.startTime;
    let inSpans = 0;
    let usInSpans = 0;
    for (let i = 0; i < profile.samples.length; i++) {
      const dt = profile.timeDeltas[i] ?? 0;
      t += dt;
      if (!spans.some(([a, b]) => t >= a && t <= b)) continue;
      const leaf = byId.get(profile.samples[i]!);
      if (!leaf || leaf.callFrame.functionName === "(idle)") continue;
      inSpans++;
      usInSpans += dt;
      self.set(label(leaf), (self.get(label(leaf)) ?? 0) + dt);
      const seen = new Set<string>();
      for (let n: ProfileNode | undefined = leaf; n; n = byId.get(parent.get(n.id) ?? -1)) {
        const l = label(n);
        if (seen.has(l)) continue;
        seen.add(l);
        total.set(l, (total.get(l) ?? 0) + dt);
      }
    }
    const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, us]) => ({ fn, ms: Number((us / 1000).toFixed(2)) }));
    return { samplesInSpans: inSpans, msInSpans: Number((usInSpans / 1000).toFixed(1)), selfMs: rank(self), totalMs: rank(total) };
  }
}
