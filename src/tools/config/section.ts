import { z } from "zod";
import { RolloutOptions } from "../rollout/k8s.js";
import { K8sTarget } from "./k8s.js";

/** The Honua configuration the agent edits. Relative paths are read from the agent's working directory. */
export const ConfigSection = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("envfile"), path: z.string().min(1) }).strict(),
  z
    .object({
      kind: z.literal("k8s"),
      /** A manifest file or a folder of them (the Deployment, and the ConfigMaps/Secrets it loads). */
      path: z.string().min(1),
      resource: K8sTarget,
      /** How a change becomes live: restart the Deployment and wait for it; `false` when something else restarts the pods. */
      rollout: z
        .union([z.literal(false), RolloutOptions], {
          error: (iss) => (iss.code === "invalid_union" ? "false (something else restarts the pods), or { deployment: <name>, namespace?, apply?, timeoutSeconds?, pollSeconds?, kubeconfig?, context? }" : undefined),
        })
        .optional(),
    })
    .strict()
    .superRefine((c, ctx) => {
      const wl = c.resource.kind === "Deployment" || c.resource.kind === "StatefulSet";
      if (c.rollout && wl && (c.resource.kind !== "Deployment" || c.rollout.deployment !== c.resource.name)) {
        ctx.addIssue({ code: "custom", path: ["rollout", "deployment"], message: `the rollout waits for the ${c.resource.kind} whose env it edits: ${c.resource.kind === "Deployment" ? `deployment: ${c.resource.name}` : "StatefulSets are not rolled out by honua-agent (rollout: false)"}` });
      }
    }),
  z.object({ kind: z.literal("appsettings"), path: z.string().min(1) }).strict(),
]);
export type ConfigSection = z.infer<typeof ConfigSection>;

export const CONFIG_EXAMPLE = "config: { kind: envfile|k8s|appsettings, path: ... }: the Honua configuration the agent edits";
