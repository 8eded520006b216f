import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { connectivityProbe } from "../../../../tools/storage/probe.js";
import { BackendTarget } from "../../../../tools/storage/types.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { IdentifyStorageRequirement } from "./identify-storage-requirement.js";
import { ProvisionStorageBackend } from "./provision-storage-backend.js";

export const TestStorageConnectivity = defineStep({
  name: "TestStorageConnectivity",
  description: "Prove write, list, read and delete on the new backend with a probe object (removed afterwards)",
  input: z.object({ target: BackendTarget, location: z.string() }),
  output: z.object({ checks: z.array(z.object({ operation: z.enum(["write", "list", "read", "delete"]), ok: z.boolean(), detail: z.string(), ms: z.number() })) }),
  prepare: (view) => ({ target: view.output(IdentifyStorageRequirement).target, location: view.output(ProvisionStorageBackend).resource.location }),
  async run(ctx, { target, location }) {
    const store = storageOf(ctx.adapters, ctx.deployment).store(target);
    // A probe name per run: a replay after a crash writes (and deletes) the same object again, nothing more.
    const checks = await connectivityProbe(store, target.prefix, ctx.idempotencyKey().replace(/[^A-Za-z0-9._-]/g, "_"));
    const failed = checks.filter((c) => !c.ok);
    if (failed.length) throw new AgentError("failed", `${location}: ${failed.map((c) => `${c.operation} failed (${c.detail})`).join("; ")}`);
    return { output: { checks }, reason: checks.map((c) => `${c.operation} ${c.ms} ms`).join(", ") };
  },
});
