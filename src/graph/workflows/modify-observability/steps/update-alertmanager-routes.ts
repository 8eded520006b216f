import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { defineStep } from "../../../step.js";
import { restoreFiles, writeFiles } from "../apply.js";
import { Design } from "../design.js";
import { observabilityOf } from "../observability.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";

export const UpdateAlertmanagerRoutes = defineStep({
  name: "UpdateAlertmanagerRoutes",
  description: "Write the Alertmanager config atomically (journalled byte for byte), reload it and confirm alertmanager_config_last_reload_successful; a failed reload puts the file back at once",
  input: z.object({ design: Design }),
  output: z.object({ written: z.boolean(), detail: z.string() }),
  prepare: (view) => ({ design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const files = design.files.filter((f) => f.target === "alertmanager");
    if (files.length === 0) return { output: { written: false, detail: "no route changed" }, reason: "no route changed" };
    await writeFiles(ctx, obs, files);
    const r = await obs.reloadAlertmanager();
    if (!r.ok) {
      const restored = await restoreFiles(ctx, obs, files, () => obs.reloadAlertmanager());
      throw new AgentError("failed", `Alertmanager did not take the new config: ${r.detail}; ${restored}`);
    }
    ctx.progress(`Alertmanager reloaded (${r.detail})`);
    return { output: { written: true, detail: r.detail }, reason: `reload confirmed: ${r.detail}` };
  },
});
