import { AgentError } from "../../../core/errors.js";
import type { ObservabilityCapability } from "../../../tools/observability/types.js";
import type { DeploymentAdapters } from "../../../tools/types.js";
import type { Found } from "./design.js";

/** The deployment's observability capability, or a message naming the section it needs. */
export function observabilityOf(adapters: DeploymentAdapters, deployment: string): ObservabilityCapability {
  if (!adapters.observability) throw new AgentError("unavailable", `deployment ${deployment} has no observability section in honua-agent.yaml (Prometheus URL and rules folder, Alertmanager, Grafana)`);
  return adapters.observability;
}

/** What the deployment holds now: every file the agent may edit and every dashboard with its model. */
export async function readFound(obs: ObservabilityCapability): Promise<Found> {
  const files = await obs.files();
  const listed = await obs.dashboards();
  const list = listed ?? [];
  const dashboards = [];
  for (const summary of list) {
    const d = await obs.dashboard(summary.uid);
    if (d) dashboards.push({ summary: { ...summary, version: d.version }, model: d.model });
  }
  return { files, dashboards, ...obs.layout(), grafana: listed !== null };
}

/** Waits up to `seconds` (the deployment's clock: simulated in the sandbox) for `check` to give a value. */
export async function within<T>(adapters: DeploymentAdapters, seconds: number, check: () => Promise<T | null>): Promise<T | null> {
  const end = adapters.clock.now().getTime() + seconds * 1000;
  for (;;) {
    const v = await check();
    if (v !== null) return v;
    if (adapters.clock.now().getTime() >= end) return null;
    await adapters.clock.sleep(Math.min(500, Math.max(1, end - adapters.clock.now().getTime())));
  }
}
