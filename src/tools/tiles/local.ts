import { createHash } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { RespBulkWriter, redisIdOf, withRedis, type RedisCacheOptions } from "../cache/redis.js";
import { settingValue } from "../config/keys.js";
import { maskUrl } from "../../core/secrets.js";
import type { ConfigStore, TileOperations, TileRef } from "../types.js";
import { countAccessLog, tileId, tileOf, tilePath, type Popularity, type Tile } from "./popular.js";

/** `tiles: {...}`: where popularity comes from and how the cache is warmed. */
export const TilesOptions = z
  .object({
    /** Honua itself, not the splitter: warming requests must not count as user traffic. */
    originUrl: z.url(),
    /** An access log in combined/common format (nginx, Apache, a load balancer's export) to count requests in. */
    accessLog: z.string().min(1).optional(),
    /** Tile paths known to be popular, counted once each (added to the log's counts). */
    paths: z.array(z.string().regex(/^\//, "tile paths start with /")).default([]),
    maxLogBytes: z.number().int().positive().default(64 * 2 ** 20),
    /**
     * The Redis key Honua reads a tile from, for warming straight into Redis:
     * `{prefix}` (Cache__KeyPrefix), `{layerId}`, `{tileMatrixSetId}`, `{z}`, `{row}`, `{col}`.
     */
    redisKey: z.string().min(1).optional(),
    /** Fetches in flight while warming. */
    concurrency: z.number().int().min(1).max(128).default(16),
    /** Redis connections the warm writes are spread over (Redis answers one while the agent fills another). */
    writeConnections: z.number().int().min(1).max(8).default(2),
    /** Honua's tile-operations admin API; when set, warming is a job there instead of writes from the agent. */
    adminApi: z
      .object({
        url: z.url(),
        /** Name of the environment variable holding the bearer token (the value is never stored). */
        tokenEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/i).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((t) => t.accessLog !== undefined || t.paths.length > 0, { message: "tiles: give accessLog or paths, so the agent knows which tiles are popular" });
export type TilesOptions = z.infer<typeof TilesOptions>;

const JobResult = z.object({ jobId: z.string(), tilesProcessed: z.number().int() });
/**
 * Written before any tile is: the exact keys a warm job may write (those absent when it looked), the Redis and the
 * prefix. What a cleanup deletes is this list, key by key; a replay after a crash reuses it rather than looking again.
 */
const OwnKeys = z.object({ redis: z.string(), prefix: z.string(), keys: z.array(z.string()) });
const Discarded = z.object({ deleted: z.number().int() });
const AdminAnswer = z.object({
  jobId: z.union([z.string(), z.number()]).optional(),
  id: z.union([z.string(), z.number()]).optional(),
  tilesProcessed: z.number().optional(),
}).loose();

export type WarmProgress = (message: string) => void;

/** `{prefix}tile:{layerId}:...` -> a function; compiled once because warming calls it per tile. */
export function compileKey(template: string, prefix: string): (t: Tile) => string {
  const parts = template.split(/(\{(?:prefix|layerId|tileMatrixSetId|z|row|col)\})/).filter(Boolean).map((p): ((t: Tile) => string) => {
    switch (p) {
      case "{prefix}": return () => prefix;
      case "{layerId}": return (t) => t.layerId;
      case "{tileMatrixSetId}": return (t) => t.tileMatrixSetId;
      case "{z}": return (t) => String(t.z);
      case "{row}": return (t) => String(t.row);
      case "{col}": return (t) => String(t.col);
      default: return () => p;
    }
  });
  return (t) => parts.map((f) => f(t)).join("");
}

/**
 * TileOperations for a real deployment: popularity from the access log, warming through Honua's admin API
 * when configured, else by fetching the popular tiles from the origin and writing them to Redis (pipelined,
 * bounded concurrency) under the key Honua reads, with Honua's configured TTL.
 */
export class LocalTileOperations implements TileOperations {
  constructor(
    readonly options: TilesOptions,
    private readonly deps: {
      redis: RedisCacheOptions | undefined;
      config: ConfigStore;
      log: OpLog;
      deployment: string;
      env: NodeJS.ProcessEnv;
      fetch?: typeof fetch;
    },
  ) {}

  async popularity(): Promise<Popularity> {
    const o = this.options;
    const base: Popularity = o.accessLog ? await countAccessLog(o.accessLog, o.maxLogBytes) : { tiles: [], hours: 1 };
    if (o.paths.length === 0) return base;
    const byId = new Map(base.tiles.map((t) => [tileId(t.tile), { ...t }]));
    for (const p of o.paths) {
      const tile = tileOf(p);
      if (!tile) throw new AgentError("bad-input", `tiles.paths: ${p} is not a Honua tile path`);
      const e = byId.get(tileId(tile)) ?? { tile, count: 0 };
      e.count++;
      byId.set(tileId(tile), e);
    }
    return { tiles: [...byId.values()].sort((a, b) => b.count - a.count), hours: base.hours };
  }

  async popularTiles(limit: number): Promise<TileRef[]> {
    const { tiles, hours } = await this.popularity();
    const groups = new Map<string, TileRef>();
    for (const { tile, count } of tiles) {
      const k = `${tile.layerId}|${tile.tileMatrixSetId}|${tile.z}`;
      const g = groups.get(k) ?? { layerId: tile.layerId, tileMatrixSetId: tile.tileMatrixSetId, z: tile.z, requestsPerHour: 0 };
      g.requestsPerHour += count / hours;
      groups.set(k, g);
    }
    return [...groups.values()].map((g) => ({ ...g, requestsPerHour: Math.round(g.requestsPerHour) })).sort((a, b) => b.requestsPerHour - a.requestsPerHour).slice(0, limit);
  }

  async submitJob(
    job: Parameters<TileOperations["submitJob"]>[0],
    idempotencyKey: string,
    progress: WarmProgress = () => undefined,
  ): Promise<{ jobId: string; tilesProcessed: number }> {
    return this.deps.log.once(this.deps.deployment, "tile-job", idempotencyKey, JobResult, async () => {
      if (this.options.adminApi) return this.adminJob(job, idempotencyKey);
      if (job.operation !== "warm" && job.operation !== "seed") {
        throw new AgentError("unavailable", `tile operation ${job.operation} needs Honua's tile-operations admin API (tiles.adminApi)`);
      }
      const { tiles } = await this.popularity();
      const pick = tiles
        .filter(({ tile }) => tile.layerId === job.layerId && tile.tileMatrixSetId === job.tileMatrixSetId && tile.z >= job.minZoom && tile.z <= job.maxZoom)
        .slice(0, job.maxTiles)
        .map((t) => t.tile);
      const target = await this.target();
      // A tile Honua (or anyone) already cached stays theirs: only absent keys are written (SET NX), and only those
      // are the run's, recorded before the first write so a crash cannot lose which they are.
      const own = this.deps.log.get(this.deps.deployment, "tile-keys", idempotencyKey, OwnKeys) ?? (await this.absentKeys(target, pick));
      this.deps.log.put(this.deps.deployment, "tile-keys", idempotencyKey, own);
      const mine = new Set(own.keys);
      const written = await this.warm(pick.filter((t) => mine.has(target.keyOf(t))), progress, true);
      const jobId = `warm-${createHash("sha256").update(idempotencyKey).digest("hex").slice(0, 10)}`;
      return { jobId, tilesProcessed: written.written };
    });
  }

  /** The keys of `tiles` that are not in Redis now. */
  private async absentKeys(target: { redis: RedisCacheOptions; keyOf: (t: Tile) => string; prefix: string }, tiles: Tile[]): Promise<z.infer<typeof OwnKeys>> {
    const keys = [...new Set(tiles.map(target.keyOf))];
    const absent: string[] = [];
    await withRedis(target.redis, async (r) => {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const p = r.pipeline();
        for (const k of batch) p.exists(k);
        const res = (await p.exec()) ?? [];
        batch.forEach((k, j) => {
          const [err, n] = res[j] ?? [new Error("no reply"), 0];
          if (err) throw new AgentError("unavailable", `Redis EXISTS failed while warming: ${err.message}`);
          if (Number(n) === 0) absent.push(k);
        });
      }
    });
    return { redis: redisIdOf(target.redis), prefix: target.prefix, keys: absent };
  }

  /** What the warm job under this key may have written: its own keys (recorded before writing). */
  async written(idempotencyKey: string): Promise<{ description: string; deletes: string } | null> {
    const own = this.deps.log.get(this.deps.deployment, "tile-keys", idempotencyKey, OwnKeys);
    if (!own || own.keys.length === 0) return null;
    return {
      description: `${own.keys.length} tile keys warmed into Redis ${own.redis} under ${own.prefix}`,
      deletes: `the ${own.keys.length} tile keys this run wrote into Redis ${own.redis}, each by its exact key (every other key, and the Redis itself, stay)`,
    };
  }

  /** Deletes exactly the keys the warm job under `jobKey` wrote (UNLINK by exact key, never a pattern); once per key. */
  async discard(jobKey: string, idempotencyKey: string): Promise<void> {
    const own = this.deps.log.get(this.deps.deployment, "tile-keys", jobKey, OwnKeys);
    if (!own || own.keys.length === 0) return;
    const redis = this.deps.redis;
    if (!redis) throw new AgentError("unavailable", `deployment ${this.deps.deployment} has no cache.redis section to delete warmed keys from`);
    if (redisIdOf(redis) !== own.redis) throw new AgentError("conflict", `the keys were warmed into Redis ${own.redis}, but cache.redis is now ${redisIdOf(redis)}; delete them by hand`);
    await this.deps.log.once(this.deps.deployment, "tile-discard", idempotencyKey, Discarded, () =>
      withRedis(redis, async (r) => {
        let deleted = 0;
        for (let i = 0; i < own.keys.length; i += 1000) deleted += await r.unlink(...own.keys.slice(i, i + 1000));
        return { deleted };
      }),
    );
  }

  /** Where and for how long warmed tiles go: Honua's key prefix and layer TTL, read from its config now. */
  private async target(): Promise<{ redis: RedisCacheOptions; keyOf: (t: Tile) => string; ttl: number; prefix: string }> {
    const o = this.options;
    const redis = this.deps.redis;
    if (!redis) throw new AgentError("unavailable", `deployment ${this.deps.deployment}: warming into Redis needs cache.redis (or tiles.adminApi)`);
    const template = o.redisKey;
    if (!template) throw new AgentError("unavailable", `deployment ${this.deps.deployment}: set tiles.redisKey to the key format Honua reads tiles from (or configure tiles.adminApi)`);
    const read = await this.deps.config.read();
    // As .NET binds them: `"cache": {"keyPrefix": ...}` in appsettings.json is Cache__KeyPrefix.
    const cfg = (key: string): string | undefined => settingValue(read, key);
    const prefix = cfg("Cache__KeyPrefix") ?? redis.keyPrefix;
    const configured = cfg("Cache__LayerTtlSeconds") ?? cfg("Cache__DefaultTtlSeconds");
    const ttl = Math.round(Number(configured ?? 300));
    if (!Number.isFinite(ttl) || ttl <= 0) throw new AgentError("bad-input", `Cache TTL is not a positive number of seconds: ${configured}`);
    const keyOf = compileKey(template, prefix);
    return { redis, keyOf, ttl, prefix };
  }

  /** Fetches `tiles` from the origin and writes them to Redis; returns counts. Used by the warm job and the benchmark. */
  async warm(tiles: Tile[], progress: WarmProgress = () => undefined, onlyNew = false): Promise<{ written: number; failed: number; bytes: number }> {
    const o = this.options;
    const { redis, keyOf, ttl } = await this.target();
    const base = o.originUrl.replace(/\/$/, "");
    const get = this.deps.fetch ? viaFetch(this.deps.fetch) : keepAliveGet(base, o.concurrency);
    const writer = await Writers.open(redis, ttl, o.writeConnections, (n) => progress(`warmed ${n}/${tiles.length} tiles`), onlyNew);
    let failed = 0, bytes = 0, next = 0;
    const worker = async () => {
      while (next < tiles.length) {
        const t = tiles[next++]!;
        try {
          const res = await get.fetch(base + tilePath(t), 10_000);
          const body = res.body;
          if (res.status !== 200) {
            failed++;
            continue;
          }
          bytes += body.length;
          await writer.set(keyOf(t), body);
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(1, tiles.length)) }, worker));
    get.close();
    const w = await writer.finish();
    if (w.written === 0 && writer.firstError) throw new AgentError("failed", `warming wrote nothing to Redis: ${writer.firstError}`);
    return { written: w.written, failed: failed + w.failed, bytes };
  }

  /** Writes tiles already in hand (the Redis side of warming alone; the benchmark compares it with redis-benchmark). */
  async write(entries: { tile: Tile; body: Buffer }[]): Promise<{ written: number; failed: number }> {
    const { redis, keyOf, ttl } = await this.target();
    const writer = await Writers.open(redis, ttl, this.options.writeConnections, () => undefined);
    for (const e of entries) await writer.set(keyOf(e.tile), e.body);
    return writer.finish();
  }

  /** `POST /api/v1/admin/tile-operations/jobs` on Honua. */
  private async adminJob(job: Parameters<TileOperations["submitJob"]>[0], idempotencyKey: string): Promise<{ jobId: string; tilesProcessed: number }> {
    const api = this.options.adminApi!;
    const headers: Record<string, string> = { "content-type": "application/json", "idempotency-key": idempotencyKey };
    if (api.tokenEnv) {
      const token = this.deps.env[api.tokenEnv];
      if (!token) throw new AgentError("unavailable", `tiles.adminApi.tokenEnv: environment variable ${api.tokenEnv} is not set`);
      headers.authorization = `Bearer ${token}`;
    }
    const endpoint = `${api.url.replace(/\/$/, "")}/api/v1/admin/tile-operations/jobs`;
    const url = maskUrl(endpoint);
    let res: Response;
    try {
      res = await (this.deps.fetch ?? fetch)(endpoint, { method: "POST", headers, body: JSON.stringify(job), signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      throw new AgentError("unavailable", `tile-operations API ${url} is not reachable: ${(e as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) throw new AgentError("failed", `tile-operations job refused by ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
    let parsed: z.infer<typeof AdminAnswer>;
    try {
      parsed = AdminAnswer.parse(JSON.parse(text));
    } catch (e) {
      throw new AgentError("failed", `tile-operations answer from ${url} is not the expected JSON: ${(e as Error).message}`);
    }
    const jobId = String(parsed.jobId ?? parsed.id ?? "");
    if (!jobId) throw new AgentError("failed", `tile-operations answer from ${url} names no job id`);
    return { jobId, tilesProcessed: Math.round(parsed.tilesProcessed ?? 0) };
  }
}

/** Several bulk writers used round-robin, reporting as one. */
class Writers {
  private next = 0;
  private constructor(private readonly ws: RespBulkWriter[], private readonly onProgress: (written: number) => void) {}

  static async open(redis: RedisCacheOptions, ttl: number, n: number, onProgress: (written: number) => void, onlyNew = false): Promise<Writers> {
    const holder: { w?: Writers } = {};
    const report = () => holder.w && onProgress(holder.w.written);
    const ws: RespBulkWriter[] = [];
    try {
      for (let i = 0; i < n; i++) ws.push(await RespBulkWriter.open(redis, ttl, report, onlyNew));
    } catch (e) {
      await Promise.all(ws.map((w) => w.finish()));
      throw e;
    }
    holder.w = new Writers(ws, onProgress);
    return holder.w;
  }

  get written(): number {
    return this.ws.reduce((a, w) => a + w.written, 0);
  }

  get firstError(): string | null {
    return this.ws.find((w) => w.firstError)?.firstError ?? null;
  }

  set(key: string, value: Buffer): Promise<void> | undefined {
    return this.ws[this.next++ % this.ws.length]!.set(key, value);
  }

  async finish(): Promise<{ written: number; failed: number }> {
    const rs = await Promise.all(this.ws.map((w) => w.finish()));
    this.onProgress(this.written);
    return { written: rs.reduce((a, r) => a + r.written, 0), failed: rs.reduce((a, r) => a + r.failed, 0) };
  }
}

interface Getter {
  fetch(url: string, timeoutMs: number): Promise<{ status: number; body: Buffer }>;
  close(): void;
}

/**
 * GETs over a keep-alive pool of `sockets` connections. node:http rather than fetch: on a small machine fetch
 * costs two to three times as much per request, and warming is thousands of small requests.
 */
function keepAliveGet(base: string, sockets: number): Getter {
  const https = base.startsWith("https:");
  const agent = https ? new HttpsAgent({ keepAlive: true, maxSockets: sockets }) : new HttpAgent({ keepAlive: true, maxSockets: sockets });
  return {
    fetch: (url, timeoutMs) =>
      new Promise((resolve, reject) => {
        const req = (https ? httpsRequest : httpRequest)(url, { agent, timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
        req.on("error", reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

/** An injected fetch (tests, other transports). */
function viaFetch(f: typeof fetch): Getter {
  return {
    fetch: async (url, timeoutMs) => {
      const res = await f(url, { signal: AbortSignal.timeout(timeoutMs) });
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    },
    close: () => undefined,
  };
}
