import { z } from "zod";
import { ConfigChange } from "../../../../core/sections.js";
import { renderDiff } from "../../../../tools/config/diff.js";
import { applyConfig } from "../../../patterns/config.js";
import { defineStep } from "../../../step.js";
import { IdentifyStorageRequirement } from "./identify-storage-requirement.js";

/** The new backend's own FileStorage keys, written now; the provider switch itself waits for the routing gate. */
export function backendKeys(keys: Record<string, string>, currentProvider: string, newProvider: string): { keys: Record<string, string>; note: string | null } {
  const { FileStorage__Provider: _, ...own } = keys;
  if (currentProvider === newProvider) {
    return { keys: {}, note: `Honua holds one ${newProvider} configuration and it serves the current storage: the new backend's keys are written at the routing step (primary), else the new backend is reached through the hrefs alone` };
  }
  return { keys: own, note: null };
}

export const ConfigureStorageProvider = defineStep({
  name: "ConfigureStorageProvider",
  description: "Write the new backend's FileStorage keys into Honua's config (journalled); the provider switch waits for the routing gate",
  input: z.object({ keys: z.record(z.string(), z.string()), currentProvider: z.string(), newProvider: z.string() }),
  output: z.object({ changes: z.array(ConfigChange), diff: z.string(), notes: z.array(z.string()) }),
  prepare: (view) => {
    const r = view.output(IdentifyStorageRequirement);
    return { keys: r.honuaKeys, currentProvider: r.current.provider, newProvider: r.backend.provider };
  },
  async run(ctx, input) {
    const { keys, note } = backendKeys(input.keys, input.currentProvider, input.newProvider);
    const changes = await applyConfig(ctx, keys);
    const diff = renderDiff(changes);
    ctx.progress(changes.length ? `config:\n${diff}` : `config: nothing to write now${note ? ` (${note})` : ""}`);
    return { output: { changes, diff, notes: note ? [note] : [] }, reason: changes.length ? `${changes.length} FileStorage key(s) written` : (note ?? "nothing to write") };
  },
});
