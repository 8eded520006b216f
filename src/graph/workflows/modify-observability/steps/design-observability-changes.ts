import { z } from "zod";
import { defineStep } from "../../../step.js";
import { Design, designChanges } from "../design.js";
import { observabilityOf, readFound } from "../observability.js";
import { ObservabilityParams } from "../params.js";
import { AgentError } from "../../../../core/errors.js";
import { hasEnvelope } from "../../../../core/evidence.js";

export const DesignObservabilityChanges = defineStep({
  name: "DesignObservabilityChanges",
  description: "Design the change against what the deployment holds: rule YAML with PromQL on Honua's real series, the route tree, dashboard panel JSON, retention flags",
  input: z.object({ params: ObservabilityParams }),
  output: Design,
  prepare: (view) => ({ params: ObservabilityParams.parse(view.params) }),
  async run(ctx, { params }) {
    if (!params.changes?.length) throw new AgentError("bad-input", "no change was asked for");
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const found = await readFound(obs);
    // Dashboard models go into checkpointed state: an object shaped like LangChain's serialization envelope would be revived on load.
    const bad = found.dashboards.find((d) => hasEnvelope(d.model));
    if (bad) throw new AgentError("bad-input", `dashboard "${bad.summary.title}" holds an object with an lc key, which the run's state cannot keep as data; it is not changed from here`);
    const design = designChanges(params.changes, found);
    if (design.files.length === 0 && design.dashboards.length === 0) throw new AgentError("in-place", `nothing to change: ${design.summary.join("; ")}`);
    ctx.progress(design.summary.join("; "));
    return { output: design, reason: design.summary.join("; ") };
  },
});
