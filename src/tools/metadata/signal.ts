import { slowerReason, slowerThan } from "../../core/monitoring.js";
import type { Signal } from "../signal.js";
import type { MetadataStoreKind, SampleQuery } from "./types.js";

/**
 * The new store under read traffic: the sampled reads timed on it (p95 against the p95 measured at validation) and
 * failed reads. No reading is `inconclusive`, never healthy.
 */
export function metadataSignal(kind: MetadataStoreKind, queries: readonly SampleQuery[], baselineP95Ms: number | null): Signal & { last(): { p95Ms: number | null; errors: number; reads: number } | null } {
  let last: { p95Ms: number | null; errors: number; reads: number } | null = null;
  return {
    name: "metadata-store",
    async read(adapters, _from, _to, { monitoring }) {
      const cap = adapters.metadata;
      if (!cap) return { verdict: "inconclusive", reason: "no metadata capability on this deployment", figures: {} };
      const r = await cap.probe(cap.target(kind), queries);
      last = r;
      const figures = { p95Ms: r.p95Ms, baselineP95Ms, errors: r.errors, reads: r.reads };
      if (r.p95Ms === null) return { verdict: "inconclusive", reason: `new ${kind} store: no read succeeded (${r.errors} of ${r.reads} failed)`, figures };
      if (r.errors > 0) return { verdict: "degraded", reason: `new ${kind} store: ${r.errors} of ${r.reads} sampled reads failed`, figures };
      if (baselineP95Ms !== null && slowerThan(r.p95Ms, baselineP95Ms, monitoring)) {
        return { verdict: "degraded", reason: `new ${kind} store: ${slowerReason("read p95", r.p95Ms, baselineP95Ms, monitoring)}`, figures };
      }
      return { verdict: "healthy", reason: `new ${kind} store: read p95 ${r.p95Ms} ms (validation ${baselineP95Ms ?? "n/a"} ms), ${r.reads} reads, no errors`, figures };
    },
    last: () => last,
  };
}
