import type { WorkflowModule } from "../module.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { ObservabilityParams } from "./params.js";
import { hasRemoval, notYetAvailable } from "../planned.js";

const id = "modify-observability";
/** Workflow 20: Prometheus rules, Grafana dashboards, Alertmanager routes; a removal is a delete gate. */
const def = {
  id,
  title: "Modify observability",
  params: ObservabilityParams,
  unavailable: "the observability adapters (promtool, Prometheus reload, Grafana, amtool) are not in this version",
  steps: [
    notYetAvailable(id, "IdentifyObservabilityGap"),
    notYetAvailable(id, "DesignObservabilityChanges"),
    notYetAvailable(id, "ValidateConfigurationSyntax"),
    notYetAvailable(id, "ApplyPrometheusChanges", (view) => (hasRemoval(view) ? "delete" : "provision")),
    notYetAvailable(id, "WaitForConfigReload"),
    notYetAvailable(id, "UpdateGrafanaDashboards"),
    notYetAvailable(id, "UpdateAlertmanagerRoutes"),
    notYetAvailable(id, "TestAlerts"),
    notYetAvailable(id, "MonitorObservabilityHealth"),
    notYetAvailable(id, "DocumentChanges"),
  ],
  rollback: async () => ({ restored: [], leftovers: [] }),
} satisfies WorkflowModule["def"];

export const workflow: WorkflowModule = {
  summary: "change alerts, dashboards or retention",
  capabilities: ["observability", "metrics"],
  priority: 10,
  intent,
  tool,
  def,
};
