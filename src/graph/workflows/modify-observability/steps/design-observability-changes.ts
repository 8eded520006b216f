import { z } from "zod";
import { defineStep } from "../../../step.js";
import { Design, designChanges } from "../design.js";
import { observabilityOf, readFound } from "../observability.js";
import { ObservabilityParams } from "../params.js";
import { AgentError } from "../../../../core/errors.js";

export const DesignObservabilityChanges = defineStep({
  name: "DesignObservabilityChanges",
  description: "Design the change against what the deployment holds: rule YAML with PromQL on Honua's real series, the route tree, dashboard panel JSON, retention flags",
  input: z.object({ params: ObservabilityParams }),
  output: Design,
  prepare: (view) => ({ params: ObservabilityParams.parse(view.params) }),
  async run(ctx, { params }) {
    if (!params.changes?.length) throw new AgentError("bad-input", "no change was asked for");
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const design = designChanges(params.changes, await readFound(obs));
    if (design.files.length === 0 && design.dashboards.length === 0) throw new AgentError("in-place", `nothing to change: ${design.summary.join("; ")}`);
    ctx.progress(design.summary.join("; "));
    return { output: design, reason: design.summary.join("; ") };
  },
});
