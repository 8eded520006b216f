import { createHash } from "node:crypto";
import { z } from "zod";
import { defineStep } from "../../../step.js";
import { Design } from "../design.js";
import { ApplyPrometheusChanges } from "./apply-prometheus-changes.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";
import { MonitorObservabilityHealth } from "./monitor-observability-health.js";
import { TestAlerts } from "./test-alerts.js";
import { UpdateGrafanaDashboards } from "./update-grafana-dashboards.js";
import { Validation, ValidateConfigurationSyntax } from "./validate-configuration-syntax.js";

const sha = (s: string | null) => (s === null ? "absent" : createHash("sha256").update(s).digest("hex").slice(0, 12));

export const DocumentChanges = defineStep({
  name: "DocumentChanges",
  description: "Write the change log: what changed where (files with their hashes before and after, dashboard versions), what proved it, where the test alerts went, how the window looked",
  input: z.object({
    design: Design,
    validation: Validation,
    restartNeeded: z.array(z.string()),
    dashboards: z.array(z.object({ uid: z.string(), title: z.string(), from: z.number().int().nullable(), to: z.number().int().nullable() })),
    alerts: z.array(z.object({ labels: z.record(z.string(), z.string()), routedTo: z.array(z.string()), detail: z.string() })),
    window: z.object({ verdict: z.string(), reason: z.string() }),
  }),
  output: z.object({ markdown: z.string(), attachment: z.string() }),
  prepare: (view) => ({
    design: view.output(DesignObservabilityChanges),
    validation: view.output(ValidateConfigurationSyntax),
    restartNeeded: view.output(ApplyPrometheusChanges).restartNeeded,
    dashboards: view.output(UpdateGrafanaDashboards).dashboards,
    alerts: view.output(TestAlerts).alerts,
    window: view.output(MonitorObservabilityHealth),
  }),
  async run(ctx, i) {
    const markdown = [
      `## Observability change on ${ctx.deployment} (run ${ctx.run})`,
      "",
      ...i.design.summary.map((s) => `- ${s}`),
      "",
      "| file | before | after |",
      "|---|---|---|",
      ...i.design.files.map((f) => `| ${f.path} | ${sha(f.before)} | ${sha(f.after)} |`),
      ...(i.dashboards.length ? ["", "| dashboard | version before | version after |", "|---|---|---|", ...i.dashboards.map((d) => `| ${d.title} (${d.uid}) | ${d.from ?? "new"} | ${d.to ?? "deleted"} |`)] : []),
      "",
      "Checks: " + i.validation.checks.map((c) => `${c.check} (${c.ok ? "passed" : "failed"})`).join(", ") + ".",
      ...(i.validation.untested.length ? [`Checked by promtool only: ${i.validation.untested.map((u) => `${u.rule} (${u.why})`).join("; ")}.`] : []),
      ...(i.alerts.length ? ["", ...i.alerts.map((a) => `- test alert ${a.labels.alertname} -> ${a.routedTo.join(", ")}: ${a.detail}`)] : []),
      "",
      `Health window: ${i.window.verdict} (${i.window.reason}).`,
      ...(i.restartNeeded.length ? ["", `**Restart needed:** ${i.restartNeeded.join(" ")}`] : []),
    ].join("\n");
    const attachment = await ctx.attach("change-log", markdown);
    return { output: { markdown, attachment }, reason: "change log written" };
  },
});
