import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OpLog } from "../src/store/oplog.js";
import { RedisCacheOptions } from "../src/tools/cache/redis.js";
import { AppSettingsConfigStore } from "../src/tools/config/appsettings.js";
import { LocalTileOperations, TilesOptions } from "../src/tools/tiles/local.js";

const DB = 14;
const PREFIX = "honua-adapters-tiles:";
const URL_ = `redis://127.0.0.1:6379/${DB}`;
const TILE = "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/7/9";
const JOB = { operation: "warm" as const, layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", minZoom: 12, maxZoom: 12, maxTiles: 10 };

let admin: Redis;
let dir: string;
let log: OpLog;
beforeAll(async () => {
  admin = new Redis(URL_, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});
afterAll(async () => {
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length) await admin.unlink(...keys);
  await admin.quit();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-adapters-tiles-"));
  log = new OpLog(join(dir, "ops.sqlite"));
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("warming (real Redis at 127.0.0.1:6379)", () => {
  it("reads Honua's key prefix and TTL from an appsettings.json whose sections are cased otherwise", async () => {
    writeFileSync(join(dir, "appsettings.json"), JSON.stringify({ cache: { keyPrefix: PREFIX, layerTtlSeconds: 900 } }, null, 2));
    const tiles = new LocalTileOperations(
      TilesOptions.parse({ originUrl: "http://origin.invalid", paths: [TILE], redisKey: "{prefix}tile:{layerId}:{z}:{row}:{col}" }),
      {
        redis: RedisCacheOptions.parse({ url: URL_ }),
        config: new AppSettingsConfigStore(join(dir, "appsettings.json"), log, "legacy"),
        log, deployment: "legacy", env: {},
        fetch: async () => new Response(Buffer.from("tile-bytes")),
      },
    );
    const job = await tiles.submitJob(JOB, "run-1:WarmCache:0:parcels");
    expect(job.tilesProcessed).toBe(1);
    expect(await admin.get(`${PREFIX}tile:parcels:12:7:9`)).toBe("tile-bytes");
    const ttl = await admin.ttl(`${PREFIX}tile:parcels:12:7:9`);
    expect(ttl).toBeGreaterThan(800);
    expect(ttl).toBeLessThanOrEqual(900);
  });
});

describe("Honua's tile-operations admin API", () => {
  const admin = (fetchImpl: typeof fetch, url = "http://ops:hunter2@honua.invalid:8080") => new LocalTileOperations(
    TilesOptions.parse({ originUrl: "http://honua.invalid", paths: [TILE], adminApi: { url, tokenEnv: "HONUA_ADMIN_TOKEN" } }),
    { redis: undefined, config: { read: async () => ({}), apply: async () => undefined }, log, deployment: "local", env: { HONUA_ADMIN_TOKEN: "tok-secret-1" }, fetch: fetchImpl },
  );

  it("sends the job once per idempotency key with the bearer token, and keeps token and URL password out of errors", async () => {
    const seen: { auth: string | null; key: string | null }[] = [];
    const ok: typeof fetch = async (_u, init) => {
      const h = new Headers(init?.headers);
      seen.push({ auth: h.get("authorization"), key: h.get("idempotency-key") });
      return Response.json({ jobId: "j-1", tilesProcessed: 10 });
    };
    const ops = admin(ok);
    expect(await ops.submitJob(JOB, "run-1:WarmCache:0:parcels")).toEqual({ jobId: "j-1", tilesProcessed: 10 });
    expect(await ops.submitJob(JOB, "run-1:WarmCache:0:parcels")).toEqual({ jobId: "j-1", tilesProcessed: 10 });
    expect(seen).toEqual([{ auth: "Bearer tok-secret-1", key: "run-1:WarmCache:0:parcels" }]);

    const refused = (await admin(async () => new Response("nope", { status: 403 })).submitJob(JOB, "k2").catch((e: unknown) => e)) as Error;
    expect(refused.message).toMatch(/refused by http:\/\/ops:\*\*\*@honua\.invalid:8080\/api\/v1\/admin\/tile-operations\/jobs: HTTP 403/);
    const down = (await admin(async () => { throw new TypeError("fetch failed"); }).submitJob(JOB, "k3").catch((e: unknown) => e)) as Error;
    expect(down).toMatchObject({ code: "unavailable", message: expect.stringMatching(/not reachable: fetch failed/) });
    for (const e of [refused, down]) expect(e.message).not.toMatch(/hunter2|tok-secret/);
  });
});

describe("tile popularity sources", () => {
  it("a missing access log is named with the option that points at it", async () => {
    const tiles = new LocalTileOperations(TilesOptions.parse({ originUrl: "http://honua.invalid", accessLog: join(dir, "gone.log") }), {
      redis: undefined, config: { read: async () => ({}), apply: async () => undefined }, log, deployment: "local", env: {},
    });
    await expect(tiles.popularTiles(10)).rejects.toMatchObject({ code: "not-found", message: expect.stringMatching(/^tiles\.accessLog: .*gone\.log cannot be read \(ENOENT\)/) });
  });
});
