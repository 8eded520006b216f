import { slowerReason, slowerThan } from "../../core/monitoring.js";
import type { Signal } from "../signal.js";
import type { BackendTarget, ProbeReading, StorageCapability } from "./types.js";

/** One backend the storage signal reads: a few of its objects, and what it read like before the change. */
export interface WatchedBackend {
  target: BackendTarget;
  keys: string[];
  /** p95 of the same reads before the change; null: none measured (then only errors can degrade it). */
  baselineP95Ms: number | null;
}

/**
 * Per-backend storage health: timed reads of a few objects on each backend the change touches. A backend degrades
 * when its read errors exceed the error threshold or its p95 exceeds its own baseline x the latency factor; one that
 * answered no read at all is no data, which is inconclusive, never healthy.
 */
export function storageSignal(storage: StorageCapability, backends: readonly WatchedBackend[]): Signal & { last(): ProbeReading[] } {
  let last: ProbeReading[] = [];
  return {
    name: "storage",
    async read(_adapters, _from, _to, { monitoring }) {
      last = [];
      for (const b of backends) last.push(await storage.probe(storage.store(b.target), b.keys));
      const figures: Record<string, number | null> = {};
      const bad: string[] = [];
      const none: string[] = [];
      for (const [i, r] of last.entries()) {
        const base = backends[i]!.baselineP95Ms;
        figures[`${r.backend}.p95Ms`] = r.p95Ms;
        figures[`${r.backend}.throughputBps`] = r.throughputBps;
        figures[`${r.backend}.errorRate`] = r.reads ? Number((r.errors / r.reads).toFixed(4)) : null;
        if (r.reads === 0 || r.p95Ms === null) none.push(`${r.backend}: no read answered`);
        else if (r.errors / r.reads > monitoring.errorRateThreshold) bad.push(`${r.backend}: ${r.errors} of ${r.reads} reads failed`);
        else if (base !== null && slowerThan(r.p95Ms, base, monitoring)) bad.push(`${r.backend}: ${slowerReason("read p95", r.p95Ms, base, monitoring)}`);
      }
      if (bad.length) return { verdict: "degraded", reason: `storage degraded (${bad.join("; ")})`, figures };
      if (none.length) return { verdict: "inconclusive", reason: `no storage data (${none.join("; ")}); check the backends' reachability`, figures };
      return { verdict: "healthy", reason: `storage reads healthy (${last.map((r) => `${r.backend} p95 ${r.p95Ms} ms`).join(", ")})`, figures };
    },
    evidence: () => last,
    last: () => last,
  };
}
