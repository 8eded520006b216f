import { AgentError } from "../../core/errors.js";
import type { TrafficRouter } from "../types.js";

/**
 * Several routers as one, each asked only about the features it moves: the cache path through nginx, the read share
 * of a new metadata store through its own router. A feature no router moves is refused, naming the ones there are.
 */
export function composeRouters(routers: readonly TrafficRouter[]): TrafficRouter {
  if (routers.length === 1) return routers[0]!;
  const of = (feature: string): TrafficRouter => {
    const r = routers.find((x) => (x.features?.() ?? ["cache"]).includes(feature));
    if (!r) throw new AgentError("unavailable", `no traffic router moves "${feature}"; the routers here move: ${routers.flatMap((x) => x.features?.() ?? ["cache"]).join(", ")}`);
    return r;
  };
  return {
    features: () => routers.flatMap((r) => r.features?.() ?? ["cache"]),
    share: async (feature) => of(feature).share(feature),
    setShare: async (feature, percent, key) => of(feature).setShare(feature, percent, key),
    leftovers: async () => (await Promise.all(routers.map((r) => r.leftovers?.() ?? Promise.resolve([])))).flat(),
    deprovision: async (id, key) => {
      for (const r of routers) {
        const mine = (await r.leftovers?.()) ?? [];
        if (mine.some((l) => l.id === id) && r.deprovision) return r.deprovision(id, key);
      }
      throw new AgentError("failed", `no traffic router owns ${id}; delete it by hand`);
    },
  };
}
