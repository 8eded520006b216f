import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { composeRouters } from "../src/tools/traffic/composite.js";
import type { TrafficRouter } from "../src/tools/types.js";

const memoryRouter = (feature: string, log: string[]): TrafficRouter => {
  let share = 0;
  return {
    features: () => [feature],
    share: async () => share,
    setShare: async (_f, p, key) => void (log.push(`${feature}=${p}@${key}`), (share = p)),
  };
};

describe("traffic routers keyed by the feature each moves", () => {
  it("routes each feature to its own router and refuses one no router moves", async () => {
    const log: string[] = [];
    const r = composeRouters([memoryRouter("cache", log), memoryRouter("metadata-reads", log)]);
    expect(r.features?.()).toEqual(["cache", "metadata-reads"]);
    await r.setShare("metadata-reads", 10, "k1");
    expect(await r.share("metadata-reads")).toBe(10);
    expect(await r.share("cache")).toBe(0);
    await expect(r.share("storage-routing")).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/no traffic router moves "storage-routing"; the routers here move: cache, metadata-reads/) });
    expect(log).toEqual(["metadata-reads=10@k1"]);
  });

  it("takes one router or a list in honua-agent.yaml, and refuses two routers for one feature", () => {
    const nginx = { kind: "nginx", include: "/etc/nginx/honua-split.conf", primary: "a", candidate: "b" };
    const one = parseConfig({ deployments: { x: { provider: "local", approvers: ["a"], traffic: nginx } } }, "t", {});
    expect(one.config.deployments.x!.traffic).toMatchObject({ kind: "nginx", feature: "cache" });
    const two = parseConfig({ deployments: { x: { provider: "local", approvers: ["a"], traffic: [nginx, { ...nginx, include: "/etc/nginx/reads.conf", feature: "metadata-reads" }] } } }, "t", {});
    expect(Array.isArray(two.config.deployments.x!.traffic)).toBe(true);
    expect(() => parseConfig({ deployments: { x: { provider: "local", approvers: ["a"], traffic: [nginx, { ...nginx, include: "/etc/nginx/other.conf" }] } } }, "t", {})).toThrow(/two routers move "cache"; give each router its own feature/);
  });
});
