import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { Provisioned, type SettingState } from "../../../../tools/storage/types.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { IdentifyStorageRequirement, Requirement } from "./identify-storage-requirement.js";

const settingsTable = (title: string, xs: readonly SettingState[]) => ({
  kind: "table" as const,
  title,
  columns: ["setting", "wanted", "found", "outcome", "note"],
  rows: xs.map((x) => [x.setting, x.wanted, x.found, x.outcome, x.note]),
});

export const ProvisionStorageBackend = defineStep({
  name: "ProvisionStorageBackend",
  description: "Create the bucket, container or directory (public access blocked, versioning, encryption, lifecycle), or adopt the deployment's own",
  input: z.object({ requirement: Requirement }),
  output: z.object({ resource: Provisioned }),
  prepare: (view) => ({ requirement: view.output(IdentifyStorageRequirement) }),
  async run(ctx, { requirement: r }) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const found = await storage.inspect(r.target, r.settings);
    if (found.refuse) throw new AgentError("conflict", found.refuse);
    // Before acting: a crash half way leaves the rollback asking the backend what this key created.
    const { key } = await ctx.journal.intend(null, [{ kind: "resource", capability: "storage", id: null, resourceKind: r.target.kind, description: `${r.target.kind} ${r.target.container}`, created: found.creates }]);
    const resource = await storage.provision(r.target, r.settings, key);
    await ctx.journal.done(null, [{
      kind: "resource", capability: "storage", id: resource.id, resourceKind: r.target.kind, description: `${r.target.kind} ${resource.location}`, created: resource.created,
      ...(resource.created ? { deletes: `${resource.location} and every object in it (all of it was copied by this run)` } : {}),
    }]);
    ctx.progress(`${resource.created ? "created" : "adopted"} ${resource.location}: ${resource.settings.map((s) => `${s.setting} ${s.outcome}`).join(", ")}`);
    return { output: { resource }, reason: `${resource.created ? "created" : "adopted"} ${resource.location}` };
  },
  gate: {
    kind: "provision",
    async describe(ctx, view) {
      const r = view.output(IdentifyStorageRequirement);
      const found = await storageOf(ctx.adapters, ctx.deployment).inspect(r.target, r.settings);
      const where = `${r.target.kind} ${r.target.container}${r.target.region ? ` (${r.target.region})` : ""}`;
      return {
        action: found.refuse ? `Refused: ${found.refuse}` : `${found.action} for ${ctx.deployment}'s rasters`,
        why: [`Requirement: ${r.dataType}; ${r.accessPattern}${r.residency ? `; residency: ${r.residency}` : ""}.`, ...r.notes].join(" "),
        risk: found.refuse
          ? "Approving fails this step: nothing is created or adopted."
          : found.creates
            ? `Low: a new, empty ${where}, private, billed by what is stored (${r.backend.monthlyUsdPerGb === null ? "price unknown" : `$${r.backend.monthlyUsdPerGb}/GB-month`}). No data moves and no traffic reaches it before the later gates.`
            : `Low: nothing is created; the existing ${where} (owner ${found.owner}) is used as it is. Its settings are not changed.`,
        change: {
          resources: [{ kind: r.target.kind, name: r.target.container, backend: r.backend.name, region: r.target.region, action: found.refuse ? "refuse" : found.creates ? "create" : "adopt", ...(found.owner ? { owner: found.owner } : {}) }],
          sections: [settingsTable(`${where}: lifecycle, versioning, encryption, public access`, found.settings)],
        },
      };
    },
  },
});
