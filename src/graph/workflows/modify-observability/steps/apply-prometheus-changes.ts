import { z } from "zod";
import { renderSection, type ChangeSection } from "../../../../core/sections.js";
import { defineStep, type RunView } from "../../../step.js";
import { hasRemoval } from "../../planned.js";
import { writeFiles } from "../apply.js";
import { Design } from "../design.js";
import { observabilityOf } from "../observability.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";
import { Validation, ValidateConfigurationSyntax } from "./validate-configuration-syntax.js";

/** The files this step writes: rule files, PrometheusRule manifests, the retention file (Alertmanager's waits for its own step). */
export const prometheusFiles = (d: Design) => d.files.filter((f) => f.target !== "alertmanager");

/** A removal anywhere in the change (a rule, a route, a dashboard or a panel) makes the one gate a `delete`. */
export const gateKind = (view: RunView) => (hasRemoval(view) || view.maybeOutput(DesignObservabilityChanges)?.removal ? "delete" : "provision");

/** Every file and dashboard of the change as a diff, and what proved it: all of it inside the hash the approval binds. */
export function changeSections(design: Design, validation: Validation): ChangeSection[] {
  return [
    ...design.files.map((f): ChangeSection => ({ kind: "textDiff", title: f.target === "alertmanager" ? "Alertmanager config" : f.target === "retention" ? "Prometheus retention (needs a restart)" : f.target.startsWith("manifest:") ? "PrometheusRule manifest" : "Prometheus rules", path: f.path, diff: f.diff })),
    ...design.dashboards.map((d): ChangeSection => ({ kind: "textDiff", title: `Grafana dashboard "${d.title}"${d.beforeVersion === null ? " (new)" : ` (version ${d.beforeVersion} kept for rollback)`}`, path: `grafana:${d.uid}`, diff: d.diff })),
    { kind: "table", title: "Checks run before anything is applied", columns: ["check", "command", "result"], rows: validation.checks.map((c) => [c.check, c.command, c.ok ? "passed" : "FAILED"]) },
  ];
}

export const ApplyPrometheusChanges = defineStep({
  name: "ApplyPrometheusChanges",
  description: "Write the rule files (and PrometheusRule manifests, retention flags) atomically, the previous version of each kept and journalled byte for byte",
  input: z.object({ design: Design }),
  output: z.object({ written: z.array(z.string()), restartNeeded: z.array(z.string()) }),
  prepare: (view) => ({ design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const written = await writeFiles(ctx, obs, prometheusFiles(design));
    ctx.progress(written.length ? `wrote ${written.join(", ")}` : "no Prometheus file to write");
    return { output: { written, restartNeeded: design.restart }, reason: `${written.length} file(s) written${design.restart.length ? "; retention needs a Prometheus restart" : ""}` };
  },
  gate: {
    kind: gateKind,
    async describe(ctx, view) {
      const design = view.output(DesignObservabilityChanges);
      const validation = view.output(ValidateConfigurationSyntax);
      const removal = gateKind(view) === "delete";
      const sections = changeSections(design, validation);
      const untested = validation.untested.map((u) => `${u.rule}: checked by promtool only (${u.why})`);
      return {
        action: `${removal ? "Remove from" : "Change"} ${ctx.deployment}'s observability: ${design.summary.join("; ")}`,
        why: [`Requested change, designed against ${observabilityOf(ctx.adapters, ctx.deployment).describe()}.`, ...design.notes, ...untested].join(" "),
        risk: [
          removal ? "A removed alert stops paging; a removed route sends its alerts to the default receiver; a deleted dashboard loses its history." : "Low: every file passed promtool/amtool and the unit tests; a failed reload puts the files back.",
          ...design.restart,
          "Rollback restores every file byte for byte and each dashboard's version.",
        ].join(" "),
        change: { sections, resources: [] },
      };
    },
  },
});

/** For the terminal and the tests: the gate's sections as text. */
export const renderChange = (sections: readonly ChangeSection[]) => sections.map((s) => renderSection(s)).map((r) => [r.title, ...r.lines].join("\n")).join("\n\n");
