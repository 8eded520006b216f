import { describe, expect, it } from "vitest";
import { BUILTIN_CONFIG, parseConfig } from "../src/config.js";
import { planOffline } from "../src/planner/offline.js";
import { requireSections } from "../src/tools/sections.js";
import "../src/tools/observability/section.js";

const { config } = parseConfig(BUILTIN_CONFIG, "builtin", {});
const plan = (request: string) => planOffline(request, config);

describe("the requests of issue 14 plan to concrete changes (offline planner)", () => {
  it.each([
    ["add a high error rate alert for prod that pages on-call", [{ kind: "alert-rule", action: "add", spec: { metric: "error_rate", severity: "critical" } }]],
    ["the TileLatencyHigh alert on prod is too noisy, raise it to 800 ms", [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }]],
    ["add a cache hit rate panel on prod", [{ kind: "dashboard", action: "modify", spec: { panels: ["cache hit rate"] } }]],
    ["route critical alerts to #honua-oncall on prod", [{ kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#honua-oncall" } }]],
    ["remove the DiskAlmostFull alert on prod", [{ kind: "alert-rule", action: "remove", name: "DiskAlmostFull" }]],
  ])("%s", (request, changes) => {
    expect(plan(request)).toMatchObject({ workflow: "modify-observability", deployment: "prod", params: { changes } });
  });
});

describe("a local deployment without an observability section", () => {
  it("is asked for one, with an example, when the workflow is planned there", () => {
    expect(() => requireSections("lab", { provider: "local", metrics: {} }, ["observability", "metrics"], "change observability")).toThrow(
      /needs a section in honua-agent\.yaml to change observability:\n {2}- observability: the Prometheus, Alertmanager and Grafana .*observability: \{ prometheus: \{ url: http:\/\/127\.0\.0\.1:9090, rulesDir/,
    );
  });
});
