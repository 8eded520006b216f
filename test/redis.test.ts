import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OpLog } from "../src/store/oplog.js";
import { RedisCacheInfra, RedisCacheOptions } from "../src/tools/cache/redis.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { LocalTileOperations, TilesOptions } from "../src/tools/tiles/local.js";
import { startOrigin, tileBody, type Origin } from "../src/dev/origin.js";
import { startRedisServer } from "./fixtures/redis-server.js";

// A database of its own on the machine's Redis; only keys under PREFIX are written and removed.
const DB = 11;
const PREFIX = "honua-test-redis:";
const URL_ = `redis://127.0.0.1:6379/${DB}`;
const SPEC = { engine: "redis" as const, nodeType: "cache.t4g.small", memoryGb: 0.5, evictionPolicy: "allkeys-lru" };

let admin: Redis;
let dir: string;
let log: OpLog;
let policyBefore: string;

beforeAll(async () => {
  admin = new Redis(URL_, { maxRetriesPerRequest: 1, lazyConnect: true });
  await admin.connect().catch((e: unknown) => {
    throw new Error(`these tests need Redis at 127.0.0.1:6379 (.ci/run starts redis-server): ${String(e)}`);
  });
  policyBefore = ((await admin.config("GET", "maxmemory-policy")) as string[])[1]!;
});
afterAll(async () => {
  await admin.config("SET", "maxmemory-policy", policyBefore);
  await admin.quit();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-redis-"));
  log = new OpLog(join(dir, "ops.sqlite"));
});
afterEach(async () => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length) await admin.unlink(...keys);
  await admin.unlink("someone-else:key");
});

describe("Redis cache adapter (real Redis at 127.0.0.1:6379)", () => {
  it("adopts the Redis: checks it, reads version and memory, sets the eviction policy, and answers a replay with the first result", async () => {
    const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url: URL_, keyPrefix: PREFIX }), log, "local");
    await admin.config("SET", "maxmemory-policy", "noeviction");
    const r = await infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0");
    expect(r).toMatchObject({ id: `redis:127.0.0.1:6379/${DB}`, engine: "redis", endpoint: `127.0.0.1:6379,defaultDatabase=${DB}` });
    expect(r.nodeType).toMatch(/^redis 7\.\d+\.\d+, adopted; .*maxmemory-policy noeviction -> allkeys-lru/);
    expect(((await admin.config("GET", "maxmemory-policy")) as string[])[1]).toBe("allkeys-lru");
    const again = await infra.provision(SPEC, "run-1:ProvisionCacheInfrastructure:0");
    expect(again).toEqual(r);

    // Release: the policy goes back and no key is deleted, not even under Honua's prefix: the Redis and what is in
    // it are the deployment's (keys a run warmed are deleted by the warmer, by exact key).
    await admin.set(`${PREFIX}tile:a`, "1");
    await admin.set(`${PREFIX}tile:b`, "2");
    await admin.set("someone-else:key", "keep");
    await infra.deprovision(r.id, "run-1:CleanupAfterRollback:0");
    expect((await admin.keys(`${PREFIX}*`)).sort()).toEqual([`${PREFIX}tile:a`, `${PREFIX}tile:b`]);
    expect(await admin.get("someone-else:key")).toBe("keep");
    expect(((await admin.config("GET", "maxmemory-policy")) as string[])[1]).toBe("noeviction");
    expect(r).toMatchObject({ created: false, replaced: [{ target: "maxmemory-policy", before: "noeviction", after: "allkeys-lru" }] });
  });

  it("records a refused CONFIG SET instead of failing (a Redis with CONFIG disabled)", async () => {
    const locked = await startRedisServer(["--rename-command", "CONFIG", ""]);
    try {
      const url = locked.url;
      const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url }), log, "locked");
      const r = await infra.provision(SPEC, "k");
      expect(r.nodeType).toMatch(/maxmemory-policy noeviction kept: CONFIG SET refused/);
    } finally {
      locked.stop();
    }
  });

  it("says the Redis is unreachable, and refuses a URL with a password but no reference for Honua", async () => {
    const infra = new RedisCacheInfra(RedisCacheOptions.parse({ url: "redis://127.0.0.1:9/0", connectTimeoutMs: 300 }), log, "down");
    await expect(infra.provision(SPEC, "k")).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/not reachable/) });
    const bad = RedisCacheOptions.safeParse({ url: "redis://:s3cret@10.0.0.5:6379" });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toMatch(/reference/);
    expect(RedisCacheOptions.parse({ url: "redis://:s3cret@10.0.0.5:6379", connectionString: "env:HONUA_REDIS" }).connectionString).toBe("env:HONUA_REDIS");
  });
});

describe("warming into Redis (real Redis, a local origin)", () => {
  let origin: Origin;
  beforeEach(async () => {
    writeFileSync(join(dir, "honua.env"), `Cache__KeyPrefix=${PREFIX}\nCache__LayerTtlSeconds=900\n`);
    origin = await startOrigin({ name: "primary", envFile: join(dir, "honua.env"), workMs: 1 });
  });
  afterEach(() => origin.close());

  it("fetches the most requested tiles from the origin and writes them with Honua's key prefix and TTL", async () => {
    const paths = Array.from({ length: 40 }, (_, i) => `/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/${12 + (i % 2)}/${i}/${i + 1}`);
    writeFileSync(join(dir, "access.log"), [...paths, ...paths.slice(0, 10)].map((p) => `127.0.0.1 - - [26/Nov/2026:23:00:00 +0000] "GET ${p} HTTP/1.1" 200 2048 "-" "probe"`).join("\n") + "\n");
    const config = new EnvFileConfigStore(join(dir, "honua.env"), log, "local");
    const tiles = new LocalTileOperations(
      TilesOptions.parse({ originUrl: origin.url, accessLog: join(dir, "access.log"), redisKey: "{prefix}tile:{layerId}:{tileMatrixSetId}:{z}:{row}:{col}" }),
      { redis: RedisCacheOptions.parse({ url: URL_, keyPrefix: PREFIX }), config, log, deployment: "local", env: {} },
    );
    const popular = await tiles.popularTiles(10);
    expect(popular.map((t) => `${t.layerId}/${t.z}`).sort()).toEqual(["parcels/12", "parcels/13"]);
    const progress: string[] = [];
    const job = await tiles.submitJob({ operation: "warm", layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", minZoom: 12, maxZoom: 13, maxTiles: 30 }, "run-1:WarmCache:0:parcels", (m) => progress.push(m));
    expect(job.tilesProcessed).toBe(30);
    expect(progress.at(-1)).toBe("warmed 30/30 tiles");
    const keys = await admin.keys(`${PREFIX}tile:*`);
    expect(keys).toHaveLength(30);
    const first = paths[0]!.split("/");
    const key = `${PREFIX}tile:parcels:WebMercatorQuad:${first[7]}:${first[8]}:${first[9]}`;
    expect(Buffer.compare((await admin.getBuffer(key))!, tileBody(paths[0]!))).toBe(0); // the tile most requested comes first
    const ttl = await admin.ttl(key);
    expect(ttl).toBeGreaterThan(800);
    expect(ttl).toBeLessThanOrEqual(900);
    // Same idempotency key: the recorded job, no second warm.
    const fetched = origin.stats.requests;
    expect(await tiles.submitJob({ operation: "warm", layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", minZoom: 12, maxZoom: 13, maxTiles: 30 }, "run-1:WarmCache:0:parcels")).toEqual(job);
    expect(origin.stats.requests).toBe(fetched);
  });

  it("writes only keys that are absent, records them before writing, and a discard deletes exactly those", async () => {
    const paths = Array.from({ length: 12 }, (_, i) => `/ogc/tiles/collections/roads/tiles/WebMercatorQuad/12/${i}/${i}`);
    writeFileSync(join(dir, "access.log"), paths.map((p) => `127.0.0.1 - - [26/Nov/2026:23:00:00 +0000] "GET ${p} HTTP/1.1" 200 2048 "-" "probe"`).join("\n") + "\n");
    const config = new EnvFileConfigStore(join(dir, "honua.env"), log, "local");
    const tiles = new LocalTileOperations(
      TilesOptions.parse({ originUrl: origin.url, accessLog: join(dir, "access.log"), redisKey: "{prefix}tile:{layerId}:{tileMatrixSetId}:{z}:{row}:{col}" }),
      { redis: RedisCacheOptions.parse({ url: URL_, keyPrefix: PREFIX }), config, log, deployment: "local", env: {} },
    );
    // Honua already cached two of the tiles, and another writer shares the prefix.
    const cached = [`${PREFIX}tile:roads:WebMercatorQuad:12:0:0`, `${PREFIX}tile:roads:WebMercatorQuad:12:1:1`];
    for (const k of cached) await admin.set(k, "honua's own");
    await admin.set(`${PREFIX}someone-elses-key`, "keep");
    const job = await tiles.submitJob({ operation: "warm", layerId: "roads", tileMatrixSetId: "WebMercatorQuad", minZoom: 12, maxZoom: 12, maxTiles: 100 }, "run-9:WarmCache:0:roads");
    expect(job.tilesProcessed).toBe(10);
    for (const k of cached) expect(await admin.get(k)).toBe("honua's own"); // never overwritten
    expect(await tiles.written("run-9:WarmCache:0:roads")).toMatchObject({ description: expect.stringMatching(/^10 tile keys warmed into Redis redis:127\.0\.0\.1:6379\/\d+ under honua-test-redis:/) });
    expect(await tiles.written("run-other:WarmCache:0:roads")).toBeNull();

    await tiles.discard("run-9:WarmCache:0:roads", "run-9:CleanupAfterRollback:0:keys");
    const left = (await admin.keys(`${PREFIX}*`)).sort();
    expect(left).toEqual([...cached, `${PREFIX}someone-elses-key`].sort());
    // A replayed discard changes nothing.
    await admin.set(`${PREFIX}tile:roads:WebMercatorQuad:12:5:5`, "written after the discard");
    await tiles.discard("run-9:WarmCache:0:roads", "run-9:CleanupAfterRollback:0:keys");
    expect(await admin.get(`${PREFIX}tile:roads:WebMercatorQuad:12:5:5`)).toBe("written after the discard");
  });
});
