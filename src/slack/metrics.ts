import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Engine } from "../engine.js";
import { RunStatus } from "../core/records.js";

export type SlackMetrics = ReturnType<typeof slackMetrics>;

/**
 * Prometheus metrics of the Slack front, on its own registry (several servers may live in one process,
 * e.g. in tests). Runs by status and gates waiting are read from the engine at scrape time.
 */
export function slackMetrics(engine: Engine, opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "honua_agent_" });
  const runs = new Gauge({
    name: "honua_agent_runs",
    help: "Runs by status",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>(RunStatus.options.map((s) => [s, 0]));
      for (const r of await engine.runs()) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      this.reset();
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
  const gatesWaiting = new Gauge({
    name: "honua_agent_gates_waiting",
    help: "Approval requests waiting for a decision, by gate kind",
    labelNames: ["kind"] as const,
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>();
      for (const g of await engine.pendingGates()) if (g.kind !== "paused") counts.set(g.kind, (counts.get(g.kind) ?? 0) + 1);
      this.reset();
      for (const kind of ["provision", "traffic", "delete", "inconclusive", "rollback"]) this.set({ kind }, counts.get(kind) ?? 0);
    },
  });
  const decisionLatency = new Histogram({
    name: "honua_agent_decision_latency_seconds",
    help: "From an approval request being shown to its decision in Slack",
    labelNames: ["kind", "decision"] as const,
    buckets: [5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600],
    registers: [registry],
  });
  const ackLatency = new Histogram({
    name: "honua_agent_slack_ack_latency_seconds",
    help: "From a Slack request arriving to its acknowledgement being sent (HTTP mode)",
    labelNames: ["kind"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const rejectedRequests = new Counter({
    name: "honua_agent_slack_rejected_requests_total",
    help: "Slack requests refused before processing (bad signature, stale or future timestamp)",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const duplicates = new Counter({
    name: "honua_agent_slack_duplicates_total",
    help: "Slack retries, duplicate event ids and replayed clicks that were ignored",
    registers: [registry],
  });
  const rollbacks = new Counter({ name: "honua_agent_rollbacks_announced_total", help: "Automatic rollbacks announced in Slack", registers: [registry] });
  return { registry, runs, gatesWaiting, decisionLatency, ackLatency, rejectedRequests, duplicates, rollbacks };
}
