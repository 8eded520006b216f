import { undoOf } from "../core/journal.js";
import { AgentError } from "../core/errors.js";
import type { Leftover, RollbackResult, StepContext } from "./step.js";

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** What a capability's adapter offers a rollback: what an unfinished creation left, deleting it, putting a setting back. */
interface CapabilityHooks {
  provisioned?(idempotencyKey: string): Promise<{ id: string; description: string } | null>;
  deprovision?(id: string, idempotencyKey: string): Promise<void>;
}
const capabilityOf = (ctx: StepContext, id: string): CapabilityHooks | undefined =>
  (ctx.adapters as unknown as Record<string, CapabilityHooks | undefined>)[id];

/** The leftover kind cleanup hands to the traffic router (a CloudFront staging copy, a routing policy). */
export const TRAFFIC_LEFTOVER = "traffic";
/** The leftover kind of keys a run wrote into a cache it did not create (deleted by exact key, never by pattern). */
export const KEYS_LEFTOVER = "keys";

/**
 * Restores what this run changed, from its journal only, newest first: each config key, traffic share and capability
 * setting back to the value the run found before it first changed it. What the run did not change is never touched;
 * a run that changed nothing restores nothing. Each part is tried even when another fails; then the rollback fails
 * naming what must be restored by hand. What the run created is returned as leftovers for the `delete` gate.
 */
export async function rollbackFromJournal(ctx: StepContext): Promise<RollbackResult> {
  const entries = await ctx.journal.entries();
  const undo = undoOf(entries);
  const restored: string[] = [];
  const failed: string[] = [];
  // A capability that restores many targets at once (storage: asset hrefs, one catalog transaction) is asked once, at
  // the place of its newest restore, with every value it must put back.
  type Bulk = { restoreAll?: (items: { target: string; value: string }[], key: string) => Promise<void> };
  const bulkOf = (capability: string) => (ctx.adapters as unknown as Record<string, Bulk | undefined>)[capability];
  const bulk = new Map<string, { target: string; value: string }[]>();
  for (const s of undo.steps) if (s.kind === "restore" && bulkOf(s.capability)?.restoreAll) bulk.set(s.capability, [...(bulk.get(s.capability) ?? []), { target: s.target, value: s.to }]);
  for (const [capability, items] of bulk) {
    try {
      await bulkOf(capability)!.restoreAll!(items, ctx.idempotencyKey(`restore:${capability}`));
      restored.push(`${capability}: ${items.length} value(s) restored in one call (${items.slice(0, 3).map((i) => i.target).join(", ")}${items.length > 3 ? ", ..." : ""})`);
    } catch (e) {
      failed.push(`${capability} (${items.length} values): ${errorText(e)}`);
    }
  }
  for (const s of undo.steps) {
    if (s.kind === "restore" && bulk.has(s.capability)) continue;
    try {
      switch (s.kind) {
        case "share": {
          // The router tells what it serves now; a share already back where the run found it needs no reload.
          if ((await ctx.adapters.traffic.share(s.feature)) === s.to) break;
          await ctx.adapters.traffic.setShare(s.feature, s.to, ctx.idempotencyKey(`share:${s.feature}`));
          restored.push(`${s.feature} traffic share -> ${s.to}%`);
          break;
        }
        case "config":
          await ctx.adapters.config.apply(s.changes, ctx.idempotencyKey("config"));
          restored.push(...s.changes.map((c) => `${c.key} -> ${c.after ?? "(unset)"}`));
          break;
        case "restore": {
          // A capability's own setting goes back through that capability (Redis maxmemory-policy through the cache).
          const cap = (ctx.adapters as unknown as Record<string, { restore?: (target: string, value: string, key: string) => Promise<void> } | undefined>)[s.capability];
          if (!cap?.restore) throw new AgentError("failed", `no way to restore ${s.capability} ${s.target}`);
          await cap.restore(s.target, s.to, ctx.idempotencyKey(`restore:${s.capability}:${s.target}`));
          restored.push(`${s.capability} ${s.target} -> ${s.to}`);
          break;
        }
      }
    } catch (e) {
      const what = s.kind === "share" ? `traffic share -> ${s.to}%${s.feature === "cache" ? "" : ` (${s.feature})`}` : s.kind === "config" ? "config" : `${s.capability} ${s.target} -> ${s.to}`;
      failed.push(`${what}: ${errorText(e)}`);
    }
  }
  if (failed.length) {
    throw new AgentError("failed", `rollback incomplete (${failed.join("; ")}); restored: ${restored.join(", ") || "nothing"}; what failed must be restored by hand`);
  }

  const leftovers: Leftover[] = [];
  const owner = (r: { capability: string }) => (r.capability === "cache" ? {} : { capability: r.capability });
  for (const r of undo.resources.filter((r) => r.created)) {
    if (r.id !== null) {
      leftovers.push({ id: r.id, kind: r.resourceKind, description: r.description, ...(r.deletes ? { deletes: r.deletes } : {}), ...(r.resourceKind === KEYS_LEFTOVER ? {} : owner(r)) });
      continue;
    }
    // The side effect never reported what it made (a crash, a timeout): ask the capability what its key created.
    const cap = capabilityOf(ctx, r.capability);
    if (r.capability !== "tiles" && cap?.provisioned) {
      const left = await cap.provisioned(r.key);
      if (left) leftovers.push({ id: left.id, kind: r.resourceKind, description: `${left.description} (created by a provision that did not finish)`, ...owner(r) });
    } else if (r.capability === "tiles" && ctx.adapters.tiles.written) {
      const left = await ctx.adapters.tiles.written(r.key);
      if (left) leftovers.push({ id: r.key, kind: KEYS_LEFTOVER, description: left.description, deletes: left.deletes });
    }
  }
  // What the traffic router built to split requests (e.g. a CloudFront staging copy) is disabled at the found share but
  // still billed. Asked only when this run moved traffic: a run that never did must not offer to delete what an earlier
  // run left and someone chose to keep.
  const routed = entries.some((e) => e.effects.some((f) => f.kind === "share"));
  if (routed && ctx.adapters.traffic.leftovers) {
    try {
      for (const l of await ctx.adapters.traffic.leftovers()) leftovers.push({ id: l.id, kind: TRAFFIC_LEFTOVER, description: l.description });
    } catch (e) {
      // Traffic and config are restored; failing the rollback now would also drop the other leftovers from the delete gate.
      ctx.progress(`could not list what the traffic router left behind (${errorText(e)}); check for a staging distribution or routing policy by hand`);
    }
  }
  return { restored, leftovers, ...(undo.irreversible.length ? { notRestored: undo.irreversible } : {}) };
}

/**
 * Deletes what a rollback left behind; runs only after a `delete` decision. Traffic leftovers first (a staging copy
 * may serve with a policy the cache owns), then keys the run wrote, then what it created.
 */
export async function cleanupLeftovers(ctx: StepContext, leftovers: readonly (Pick<Leftover, "id" | "kind"> & Partial<Pick<Leftover, "capability" | "description">>)[]): Promise<void> {
  const rank = (l: Pick<Leftover, "kind">) => (l.kind === TRAFFIC_LEFTOVER ? 0 : l.kind === KEYS_LEFTOVER ? 1 : 2);
  for (const l of [...leftovers].sort((a, b) => rank(a) - rank(b))) {
    if (l.kind === TRAFFIC_LEFTOVER) {
      const traffic = ctx.adapters.traffic;
      if (!traffic.deprovision) throw new AgentError("failed", `the traffic router cannot delete ${l.id}; delete it by hand`);
      await traffic.deprovision(l.id, ctx.idempotencyKey(l.id));
    } else if (l.kind === KEYS_LEFTOVER) {
      const tiles = ctx.adapters.tiles;
      if (!tiles.discard) throw new AgentError("failed", `the tile warmer cannot delete the keys of ${l.id}; delete them by hand`);
      await tiles.discard(l.id, ctx.idempotencyKey(`keys:${l.id}`));
    } else {
      const cap = capabilityOf(ctx, l.capability ?? "cache");
      if (!cap?.deprovision) throw new AgentError("failed", `nothing here can delete ${l.description ?? l.id}; delete it by hand`);
      await cap.deprovision(l.id, ctx.idempotencyKey(l.id));
    }
  }
}
