import { slowerReason, slowerThan } from "../../core/monitoring.js";
import type { Signal } from "../signal.js";
import type { DatabaseCapability, DbStats } from "./types.js";

/** What the database looked like before the change: the smoke queries' mean time. */
export interface DatabaseBaseline {
  queryMs: number | null;
}

/**
 * The database's own health during a monitoring window: smoke-query latency against its baseline, sessions waiting on
 * locks, connections against max_connections, replication lag where there is a replica. A reading with neither query
 * times nor connection counts is no data, which is inconclusive, never healthy.
 */
export function databaseSignal(db: DatabaseCapability, baseline: DatabaseBaseline, o: { maxLockWaits?: number; maxConnectionShare?: number; maxLagSeconds?: number } = {}): Signal & { last(): DbStats | null } {
  let last: DbStats | null = null;
  const maxLockWaits = o.maxLockWaits ?? 5;
  const maxShare = o.maxConnectionShare ?? 0.9;
  const maxLag = o.maxLagSeconds ?? 30;
  return {
    name: "database",
    async read(_adapters, _from, _to, { monitoring }) {
      try {
        last = await db.stats();
      } catch (e) {
        last = null;
        return { verdict: "inconclusive", reason: `no database data: ${e instanceof Error ? e.message : String(e)}`, figures: {} };
      }
      const s = last;
      const figures = { queryMs: s.queryMs, baselineQueryMs: baseline.queryMs, lockWaits: s.lockWaits, connections: s.connections, replicationLagSeconds: s.replicationLagSeconds };
      if (s.queryMs === null && s.connections === null) return { verdict: "inconclusive", reason: `no database data from ${db.describe()} (no smoke query answered, no connection count)`, figures };
      const bad: string[] = [];
      if (s.queryMs !== null && baseline.queryMs !== null && baseline.queryMs > 0 && slowerThan(s.queryMs, baseline.queryMs, monitoring)) bad.push(slowerReason("query time", s.queryMs, baseline.queryMs, monitoring));
      if (s.lockWaits !== null && s.lockWaits > maxLockWaits) bad.push(`${s.lockWaits} sessions waiting on locks (> ${maxLockWaits})`);
      if (s.connections !== null && s.maxConnections !== null && s.connections > s.maxConnections * maxShare) bad.push(`${s.connections} of ${s.maxConnections} connections in use`);
      if (s.replicationLagSeconds !== null && s.replicationLagSeconds > maxLag) bad.push(`replica ${s.replicationLagSeconds.toFixed(1)} s behind (> ${maxLag} s)`);
      if (bad.length) return { verdict: "degraded", reason: `database degraded (${bad.join("; ")})`, figures };
      if (s.queryMs === null && db.smokeQueries.length > 0) return { verdict: "inconclusive", reason: "no smoke query answered: query latency unknown", figures };
      return { verdict: "healthy", reason: `database healthy (queries ${s.queryMs ?? "n/a"} ms vs ${baseline.queryMs ?? "n/a"} ms before, ${s.lockWaits ?? 0} lock waits, ${s.connections ?? "?"} connections${s.replicationLagSeconds !== null ? `, replica lag ${s.replicationLagSeconds.toFixed(1)} s` : ""})`, figures };
    },
    evidence: () => last,
    last: () => last,
  };
}
