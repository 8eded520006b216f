import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { defineStep } from "../../../step.js";
import { restoreFiles } from "../apply.js";
import { Design } from "../design.js";
import { observabilityOf, within } from "../observability.js";
import { prometheusFiles } from "./apply-prometheus-changes.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";

export const WaitForConfigReload = defineStep({
  name: "WaitForConfigReload",
  description: "Reload Prometheus (/-/reload), confirm prometheus_config_last_reload_successful and that the rules it evaluates are the new ones; a failed reload puts the files back at once",
  input: z.object({ design: Design }),
  output: z.object({ reloaded: z.boolean(), detail: z.string(), loaded: z.array(z.string()) }),
  prepare: (view) => ({ design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const files = prometheusFiles(design);
    if (!files.some((f) => f.target.startsWith("rules:"))) return { output: { reloaded: false, detail: "no rule file changed", loaded: [] }, reason: "nothing to reload" };
    const fail = async (why: string): Promise<never> => {
      const restored = await restoreFiles(ctx, obs, files, () => obs.reloadPrometheus());
      throw new AgentError("failed", `${why}; ${restored}`);
    };
    const r = await obs.reloadPrometheus();
    if (!r.ok) return fail(`Prometheus did not take the new rules: ${r.detail}`);
    const want = design.rules.filter((x) => x.action !== "remove").map((x) => x.name);
    const gone = design.rules.filter((x) => x.action === "remove").map((x) => x.name);
    const loaded = await within(ctx.adapters, obs.confirmSeconds, async () => {
      const names = (await obs.loadedRules()).map((x) => x.name);
      return want.every((n) => names.includes(n)) && gone.every((n) => !names.includes(n)) ? names : null;
    });
    if (!loaded) return fail(`Prometheus reloaded but does not evaluate ${want.join(", ") || "the change"}${gone.length ? ` without ${gone.join(", ")}` : ""} within ${obs.confirmSeconds}s`);
    ctx.progress(`Prometheus reloaded (${r.detail}); evaluating ${want.join(", ") || "the rules"}${gone.length ? `, no longer ${gone.join(", ")}` : ""}`);
    return { output: { reloaded: true, detail: r.detail, loaded: want }, reason: `reload confirmed: ${r.detail}` };
  },
});
