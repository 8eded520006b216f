import { z } from "zod";
import { IMAGE_KEY, imageWithVersion } from "../../../../tools/config/k8s.js";
import { applyConfig } from "../../../patterns/config.js";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";
import { Safety, ValidateMigrationSafety } from "./validate-migration-safety.js";

export const CodeUpdate = z.object({
  needed: z.boolean(),
  version: z.string().nullable(),
  rolledOut: z.boolean(),
  /** The container image before and after, where the deployment's config holds Honua's image. */
  image: z.object({ from: z.string(), to: z.string() }).nullable().default(null),
  why: z.array(z.string()),
});

/** Which statements the running Honua cannot ignore: a new NOT NULL column it does not write, a column it still reads. */
function codeImpact(safety: z.infer<typeof Safety>): string[] {
  const why: string[] = [];
  for (const s of safety.statements) {
    for (const o of s.ops) {
      if (o.expect.kind === "column" && o.expect.notNull) why.push(`${o.expect.table}.${o.expect.column} is NOT NULL now: every Honua write must set it`);
      if (o.expect.kind === "no-column") why.push(`${o.expect.table}.${o.expect.column} is gone: no Honua version in service may still read it`);
      if (o.expect.kind === "no-table") why.push(`${o.expect.name} is gone: no Honua version in service may still read it`);
    }
  }
  return why;
}

export const UpdateApplicationCode = defineStep({
  name: "UpdateApplicationCode",
  description: "Roll out the Honua version the change needs (named in the deployment's database section) through the config's rollout and wait until its pods are ready; an index, an extension or a nullable column needs none",
  input: z.object({ safety: Safety }),
  output: CodeUpdate,
  prepare: (view) => ({ safety: view.output(ValidateMigrationSafety) }),
  async run(ctx, { safety }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const why = codeImpact(safety);
    const version = db.honuaVersion;
    if (!version) {
      const kinds = [...new Set(safety.statements.flatMap((s) => s.ops.map((o) => o.expect.kind)))].join(", ");
      const note = why.length ? why : [`the running Honua keeps working unchanged (${kinds}): it neither needs nor sees the change until it uses it`];
      return { output: { needed: false, version: null, rolledOut: false, image: null, why: note }, reason: why.length ? `no Honua version named; check: ${why.join("; ")}` : "no new Honua version needed" };
    }
    const config = ctx.adapters.config;
    const from = (await config.read())[IMAGE_KEY];
    if (from === undefined) {
      return {
        output: { needed: true, version, rolledOut: false, image: null, why: [...why, `the deployment names Honua ${version} for this change, and its config (${ctx.deploymentConfig.config?.kind ?? "sandbox"}) holds no container image to roll out: deploy ${version} with the pipeline that deploys Honua`] },
        verdict: "inconclusive",
        reason: `Honua ${version} is needed and this deployment's config holds no Honua image honua-agent could roll out: deploy ${version}, then continue; or roll back`,
      };
    }
    const to = imageWithVersion(from, version);
    if (from === to) {
      return { output: { needed: true, version, rolledOut: true, image: { from, to }, why: [...why, `Honua ${version} already runs (${to})`] }, reason: `Honua ${version} already runs` };
    }
    const how = config.imageRollout?.() ?? null;
    if (!how) {
      return {
        output: { needed: true, version, rolledOut: false, image: { from, to }, why: [...why, `nothing rolls ${to} out and waits for it (config.rollout is not configured), so it was not written`] },
        verdict: "inconclusive",
        reason: `Honua ${version} is needed: configure config.rollout (docs/local.md) or deploy ${to} yourself, then continue; or roll back`,
      };
    }
    ctx.progress(`rolling out ${to}: ${how}`);
    // Journalled like any config change: a replay finishes the same rollout, the rollback puts the old image back.
    await applyConfig(ctx, { [IMAGE_KEY]: to });
    return { output: { needed: true, version, rolledOut: true, image: { from, to }, why: [...why, `rolled out ${to} (was ${from}): ${how}`] }, reason: `Honua ${version} rolled out and ready` };
  },
});
