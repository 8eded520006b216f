import { z } from "zod";
import { dashboardRestoreTarget } from "../../../../tools/observability/base.js";
import { OBSERVABILITY, type DashboardState } from "../../../../tools/observability/types.js";
import { defineStep } from "../../../step.js";
import { Design } from "../design.js";
import { observabilityOf } from "../observability.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";

export const UpdateGrafanaDashboards = defineStep({
  name: "UpdateGrafanaDashboards",
  description: "Save each dashboard through Grafana's HTTP API (/api/dashboards/db) against the version it was designed on, the previous version number journalled for the rollback",
  input: z.object({ design: Design }),
  output: z.object({ dashboards: z.array(z.object({ uid: z.string(), title: z.string(), from: z.number().int().nullable(), to: z.number().int().nullable() })) }),
  prepare: (view) => ({ design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const out: { uid: string; title: string; from: number | null; to: number | null }[] = [];
    for (const d of design.dashboards) {
      const name = `grafana:${d.uid}`;
      const before: DashboardState = d.beforeVersion === null ? { absent: true } : d.after === null ? { recreate: { ...d.before!, uid: d.uid } } : { version: d.beforeVersion };
      const { key } = await ctx.journal.intend(name, [{ kind: "restore", capability: OBSERVABILITY, target: dashboardRestoreTarget(d.uid), before: JSON.stringify(before), after: JSON.stringify(d.after === null ? { absent: true } : { saved: ctx.idempotencyKey(name) }) }]);
      if (d.after === null) {
        await obs.restoreDashboard(d.uid, { absent: true }, key);
        out.push({ uid: d.uid, title: d.title, from: d.beforeVersion, to: null });
      } else {
        const saved = await obs.saveDashboard(d.after, key);
        out.push({ uid: d.uid, title: d.title, from: d.beforeVersion, to: saved.version });
      }
      await ctx.journal.done(name);
    }
    ctx.progress(out.map((d) => `"${d.title}" ${d.from ?? "new"} -> ${d.to ?? "deleted"}`).join(", ") || "no dashboard to change");
    return { output: { dashboards: out }, reason: out.length ? `${out.length} dashboard(s) saved` : "no dashboard changed" };
  },
});
