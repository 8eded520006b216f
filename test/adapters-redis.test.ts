import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { OpLog } from "../src/store/oplog.js";
import { realAdapters } from "../src/providers/real.js";
import { RedisCacheInfra, RedisCacheOptions, honuaConnectionString } from "../src/tools/cache/redis.js";
import { CrashingLog, startRedisServer } from "./fixtures/redis-server.js";

// A private redis-server, so changing maxmemory-policy disturbs no one else's Redis.
let server: Awaited<ReturnType<typeof startRedisServer>>;
let url: string;
let admin: Redis;
let dir: string;
const SPEC = { engine: "redis" as const, nodeType: "cache.t4g.small", memoryGb: 0.5, evictionPolicy: "allkeys-lru" };

beforeAll(async () => {
  server = await startRedisServer();
  url = server.url;
  admin = new Redis(url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await admin?.quit();
  server?.stop();
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "honua-adapters-redis-"));
  await admin.config("SET", "maxmemory-policy", "noeviction");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const policy = async () => ((await admin.config("GET", "maxmemory-policy")) as string[])[1];


describe("adopted Redis under replay (a private redis-server)", () => {
  it("a provision replayed after a crash between CONFIG SET and the journal still restores the original policy on release", async () => {
    const log = new CrashingLog(join(dir, "ops.sqlite"));
    try {
      const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url, keyPrefix: "honua-replay:" }), log, "local");
      log.crashOn = "redis-adopt";
      await expect(infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0")).rejects.toThrow(/crash/);
      expect(await policy()).toBe("allkeys-lru"); // the effect happened, the record did not
      const r = await infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0");
      expect(r.nodeType).toContain("maxmemory-policy noeviction -> allkeys-lru");
      await infra.deprovision(r.id, "run-1:CleanupAfterRollback:0");
      expect(await policy()).toBe("noeviction");
    } finally {
      log.close();
    }
  });

  it("a release replayed after a crash before it was journalled restores the policy once and deletes no key", async () => {
    const log = new CrashingLog(join(dir, "ops.sqlite"));
    try {
      const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url, keyPrefix: "honua-release:" }), log, "local");
      const r = await infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0");
      await admin.set("honua-release:tile:a", "1");
      await admin.set("other:key", "keep");
      log.crashOn = "redis-release";
      await expect(infra.deprovision(r.id, "run-1:CleanupAfterRollback:0")).rejects.toThrow(/crash/);
      await admin.set("honua-release:tile:b", "written meanwhile");
      await infra.deprovision(r.id, "run-1:CleanupAfterRollback:0");
      expect(await policy()).toBe("noeviction");
      expect((await admin.keys("honua-release:*")).sort()).toEqual(["honua-release:tile:a", "honua-release:tile:b"]);
      expect(await admin.get("other:key")).toBe("keep");
    } finally {
      log.close();
    }
  });

  it("a release restores the policy found by the adoptions since the last release, not by an older cycle", async () => {
    const log = new OpLog(join(dir, "ops.sqlite"));
    try {
      const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url, keyPrefix: "honua-cycles:" }), log, "local");
      const a = await infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0");
      await infra.deprovision(a.id, "run-1:CleanupAfterRollback:0");
      expect(await policy()).toBe("noeviction");
      await admin.config("SET", "maxmemory-policy", "volatile-lru"); // an operator's change between two runs
      const b = await infra.provision(SPEC, "run-2:ProvisionCacheInfrastructure:0");
      await infra.deprovision(b.id, "run-2:CleanupAfterRollback:0");
      expect(await policy()).toBe("volatile-lru");
    } finally {
      log.close();
    }
  });

  it("prices the Redis while Honua's config points at it, in any spelling", async () => {
    const log = new OpLog(join(dir, "ops.sqlite"));
    try {
      const { config } = parseConfig({ deployments: { x: {
        provider: "local", approvers: ["a"],
        cache: { redis: { url, nodeType: "cache.t4g.small" } },
        metrics: { source: "probe", urls: ["http://127.0.0.1:9/tiles/a/1/0/0.mvt"] },
        config: { kind: "envfile", path: "x.env" },
        traffic: { kind: "nginx", include: "x.conf", primary: "p", candidate: "c" },
      } } }, "t", {});
      const a = realAdapters("x", config.deployments.x!, { log, env: {}, cwd: dir });
      writeFileSync(join(dir, "x.env"), "Cache__Enabled=true\n");
      await a.cache.provision(SPEC, "run-1:P:0"); // adopted, but Honua does not use it yet
      expect(await a.cost.monthly()).toEqual({});
      writeFileSync(join(dir, "x.env"), `ConnectionStrings__redis=${honuaConnectionString({ url })}\n`);
      expect(Object.keys(await a.cost.monthly())).toContain("cache:redis");
      writeFileSync(join(dir, "x.env"), "Cache__Enabled=true\n"); // rolled back
      expect(await a.cost.monthly()).toEqual({});
    } finally {
      log.close();
    }
  });
});
