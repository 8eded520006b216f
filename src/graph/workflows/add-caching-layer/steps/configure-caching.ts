import { z } from "zod";
import { ConfigChange } from "../../../../core/sections.js";
import { diffConfig, renderDiff } from "../../../../tools/config/diff.js";
import { applyConfig } from "../../../patterns/config.js";
import { defineStep } from "../../../step.js";
import { DesignCachingStrategy } from "./design-caching-strategy.js";
import { ProvisionCacheInfrastructure } from "./provision-cache-infrastructure.js";

export const ConfigureCaching = defineStep({
  name: "ConfigureCaching",
  description: "Point Honua at the cache and set TTLs (config keys), journalling what each key was for the rollback",
  input: z.object({ desired: z.record(z.string(), z.string()), endpoint: z.string() }),
  output: z.object({ changes: z.array(ConfigChange), diff: z.string(), fileDiff: z.string().nullable() }),
  prepare: (view) => ({ desired: view.output(DesignCachingStrategy).honuaConfig, endpoint: view.output(ProvisionCacheInfrastructure).resource.endpoint }),
  async run(ctx, { desired, endpoint }) {
    const filled = Object.fromEntries(Object.entries(desired).map(([k, v]) => [k, v.replace("{endpoint}", endpoint)]));
    const fileDiff = (await ctx.adapters.config.preview?.(diffConfig(await ctx.adapters.config.read(), filled))) ?? null;
    const changes = await applyConfig(ctx, filled);
    const diff = renderDiff(changes);
    ctx.progress(`config:\n${fileDiff ?? diff}`);
    return { output: { changes, diff, fileDiff } };
  },
});
