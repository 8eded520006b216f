import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpLog } from "../src/store/oplog.js";
import { RedisCacheOptions } from "../src/tools/cache/redis.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { LocalTileOperations, TilesOptions, compileKey } from "../src/tools/tiles/local.js";
import { countAccessLog, tileOf, tilePath } from "../src/tools/tiles/popular.js";

let dir: string;
let log: OpLog;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-tiles-"));
  log = new OpLog(join(dir, "ops.sqlite"));
  writeFileSync(join(dir, "honua.env"), "Cache__KeyPrefix=honua:\n");
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

const deps = (extra: Partial<ConstructorParameters<typeof LocalTileOperations>[1]> = {}) => ({
  redis: RedisCacheOptions.parse({ url: "redis://127.0.0.1:6379/15" }),
  config: new EnvFileConfigStore(join(dir, "honua.env"), log, "local"),
  log,
  deployment: "local",
  env: {},
  ...extra,
});

describe("tile popularity from an access log", () => {
  it("counts both Honua tile URL forms, only successful GETs, and turns counts into requests per hour", async () => {
    const line = (t: string, path: string, status = 200) => `10.0.0.1 - - [26/Nov/2026:${t} +0000] "GET ${path} HTTP/1.1" ${status} 2048 "-" "Mozilla"`;
    writeFileSync(join(dir, "access.log"), [
      line("10:00:00", "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/100/200"),
      line("10:10:00", "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/100/200?f=mvt"),
      line("10:20:00", "/tiles/roads/11/300/400.mvt"),
      line("10:25:00", "/tiles/roads/11/300/400.mvt", 404),
      line("10:30:00", "/stac/search"),
      line("10:30:00", "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/13/1/2"),
    ].join("\n") + "\n");
    const pop = await countAccessLog(join(dir, "access.log"), 1 << 20);
    expect(pop.hours).toBeCloseTo(0.5, 5);
    expect(pop.tiles.map((t) => `${tilePath(t.tile)}=${t.count}`)).toEqual([
      "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/100/200=2",
      "/tiles/roads/11/300/400.mvt=1",
      "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/13/1/2=1",
    ]);
    const ops = new LocalTileOperations(TilesOptions.parse({ originUrl: "http://127.0.0.1:1", accessLog: join(dir, "access.log") }), deps());
    expect(await ops.popularTiles(10)).toEqual([
      { layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", z: 12, requestsPerHour: 4 },
      { layerId: "roads", tileMatrixSetId: "WebMercatorQuad", z: 11, requestsPerHour: 2 },
      { layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", z: 13, requestsPerHour: 2 },
    ]);
  });

  it("builds the Redis key Honua reads from its template", () => {
    const key = compileKey("{prefix}tile:{layerId}:{tileMatrixSetId}:{z}:{row}:{col}", "honua:");
    expect(key(tileOf("/tiles/roads/11/300/400.mvt")!)).toBe("honua:tile:roads:WebMercatorQuad:11:400:300");
  });

  it("says what is missing instead of warming into an unknown key format", async () => {
    const ops = new LocalTileOperations(TilesOptions.parse({ originUrl: "http://127.0.0.1:1", paths: ["/tiles/roads/11/300/400.mvt"] }), deps());
    await expect(ops.submitJob({ operation: "warm", layerId: "roads", tileMatrixSetId: "WebMercatorQuad", minZoom: 11, maxZoom: 11, maxTiles: 10 }, "k")).rejects.toThrow(/tiles\.redisKey/);
    await expect(ops.submitJob({ operation: "purge", layerId: "roads", tileMatrixSetId: "WebMercatorQuad", minZoom: 11, maxZoom: 11, maxTiles: 10 }, "k2")).rejects.toThrow(/admin API/);
  });
});

describe("warming through Honua's tile-operations admin API (a local HTTP server checks the request)", () => {
  let server: Server;
  let url: string;
  const seen: { method: string; path: string; headers: IncomingHttpHeaders; body: unknown }[] = [];
  beforeEach(async () => {
    seen.length = 0;
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, path: req.url!, headers: req.headers, body: JSON.parse(body || "null") });
        if (req.headers.authorization !== "Bearer t0ken") return void res.writeHead(401).end("no");
        res.writeHead(202, { "content-type": "application/json" }).end(JSON.stringify({ jobId: "job-42", status: "Queued", tilesProcessed: 0 }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => new Promise<void>((r) => server.close(() => r())));

  const job = { operation: "warm" as const, layerId: "parcels", tileMatrixSetId: "WebMercatorQuad", minZoom: 10, maxZoom: 14, maxTiles: 5000 };

  it("posts the job with the token from the named environment variable and an idempotency key, once per key", async () => {
    const ops = new LocalTileOperations(TilesOptions.parse({ originUrl: url, paths: ["/tiles/a/1/1/1.mvt"], adminApi: { url, tokenEnv: "HONUA_ADMIN_TOKEN" } }), deps({ env: { HONUA_ADMIN_TOKEN: "t0ken" } }));
    expect(await ops.submitJob(job, "run-1:WarmCache:0:parcels")).toEqual({ jobId: "job-42", tilesProcessed: 0 });
    expect(seen).toEqual([{ method: "POST", path: "/api/v1/admin/tile-operations/jobs", headers: expect.objectContaining({ "idempotency-key": "run-1:WarmCache:0:parcels", "content-type": "application/json" }), body: job }]);
    await ops.submitJob(job, "run-1:WarmCache:0:parcels");
    expect(seen).toHaveLength(1);
  });

  it("reports a refusal with the server's answer, and a missing token before calling", async () => {
    const ops = new LocalTileOperations(TilesOptions.parse({ originUrl: url, paths: ["/tiles/a/1/1/1.mvt"], adminApi: { url, tokenEnv: "HONUA_ADMIN_TOKEN" } }), deps({ env: { HONUA_ADMIN_TOKEN: "wrong" } }));
    await expect(ops.submitJob(job, "k1")).rejects.toThrow(/HTTP 401 no/);
    const none = new LocalTileOperations(TilesOptions.parse({ originUrl: url, paths: ["/tiles/a/1/1/1.mvt"], adminApi: { url, tokenEnv: "HONUA_ADMIN_TOKEN" } }), deps());
    await expect(none.submitJob(job, "k2")).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/HONUA_ADMIN_TOKEN is not set/) });
    expect(seen).toHaveLength(1);
  });
});
