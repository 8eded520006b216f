import type { WorkflowModule } from "../module.js";
import { observabilityFacets } from "./facets.js";
import { intent } from "./intent.js";
import { tool } from "./tool.js";
import { ObservabilityParams } from "./params.js";
import { rollbackObservability } from "./rollback.js";
import { ApplyPrometheusChanges } from "./steps/apply-prometheus-changes.js";
import { DesignObservabilityChanges } from "./steps/design-observability-changes.js";
import { DocumentChanges } from "./steps/document-changes.js";
import { IdentifyObservabilityGap } from "./steps/identify-observability-gap.js";
import { MonitorObservabilityHealth } from "./steps/monitor-observability-health.js";
import { TestAlerts } from "./steps/test-alerts.js";
import { UpdateAlertmanagerRoutes } from "./steps/update-alertmanager-routes.js";
import { UpdateGrafanaDashboards } from "./steps/update-grafana-dashboards.js";
import { ValidateConfigurationSyntax } from "./steps/validate-configuration-syntax.js";
import { WaitForConfigReload } from "./steps/wait-for-config-reload.js";

/** Workflow 20: Prometheus rules, Alertmanager routes, Grafana dashboards, retention; proved before applied; a removal is a delete gate. */
export const workflow: WorkflowModule = {
  summary: "change alerts, dashboards or retention",
  capabilities: ["observability", "metrics"],
  priority: 10,
  intent,
  tool,
  facets: observabilityFacets,
  def: {
    id: "modify-observability",
    title: "Modify observability",
    params: ObservabilityParams,
    steps: [
      IdentifyObservabilityGap,
      DesignObservabilityChanges,
      ValidateConfigurationSyntax,
      ApplyPrometheusChanges,
      WaitForConfigReload,
      UpdateGrafanaDashboards,
      UpdateAlertmanagerRoutes,
      TestAlerts,
      MonitorObservabilityHealth,
      DocumentChanges,
    ],
    rollback: rollbackObservability,
  },
};
