import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { Redis } from "ioredis";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { maskUrl } from "../../core/secrets.js";
import type { CacheInfra, CacheResource, CacheSpec } from "../types.js";
import { lazyModule } from "../../core/lazy.js";

/** `cache: { redis: {...} }`: a Redis the deployment already runs; the agent adopts it and starts nothing. */
export const RedisCacheOptions = z
  .object({
    /** How the agent reaches it: `redis://[user:password@]host:port[/db]` or `rediss://`. */
    url: z.string().regex(/^rediss?:\/\/[^\s]+$/, "cache.redis.url: a redis:// or rediss:// URL"),
    /**
     * What Honua gets in `ConnectionStrings__Redis`. Default: the URL in StackExchange.Redis form
     * (`host:port[,ssl=true][,defaultDatabase=N]`). Must be a reference (`env:...`, `aws:secretsmanager:...`)
     * when the URL carries a password: a secret never goes into the config diff or the run state.
     */
    connectionString: z.string().min(1).optional(),
    /**
     * Honua's `Cache__KeyPrefix` when the Honua config does not set one. A prefix the config already sets is used as
     * it is (and must agree with this one when both are given). Nothing is ever deleted by prefix: a cleanup deletes
     * only the keys a run wrote, by exact key.
     */
    keyPrefix: z.string().min(1).default("honua:"),
    /** Set `maxmemory-policy` to the strategy's eviction policy on adoption (refusal is recorded, not fatal). */
    setEvictionPolicy: z.boolean().default(true),
    /** The price-table node this Redis corresponds to (src/tools/cost/prices.ts), for cost; none: self-hosted, $0. */
    nodeType: z.string().min(1).optional(),
    connectTimeoutMs: z.number().int().positive().default(3000),
  })
  .strict()
  .superRefine((o, ctx) => {
    const u = safeUrl(o.url);
    if (!u) ctx.addIssue({ code: "custom", path: ["url"], message: `not a URL: ${maskUrl(o.url)}` });
    else if (u.password && !o.connectionString) {
      ctx.addIssue({ code: "custom", path: ["connectionString"], message: "the Redis URL has a password: give connectionString as a reference (env:NAME or aws:secretsmanager:ARN) so the secret never lands in the Honua config diff or the run state" });
    }
    if (o.connectionString && /password=(?!\s*$)/i.test(o.connectionString) && !/^(env:|aws:|ref:)/.test(o.connectionString)) {
      ctx.addIssue({ code: "custom", path: ["connectionString"], message: "holds a literal password; use a reference (env:NAME or aws:secretsmanager:ARN)" });
    }
  });
export type RedisCacheOptions = z.infer<typeof RedisCacheOptions>;

function safeUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

const dbOf = (u: URL): number => Number(u.pathname.replace(/^\//, "") || "0");

/** `redis:host:port/db`: how a Redis (and what was written into it) is named in the journal and on cards. */
export function redisIdOf(o: Pick<RedisCacheOptions, "url">): string {
  const u = new URL(o.url);
  return `redis:${u.hostname}:${u.port || 6379}/${dbOf(u)}`;
}

/** `ConnectionStrings__Redis` for this Redis, without credentials. */
export function honuaConnectionString(o: Pick<RedisCacheOptions, "url" | "connectionString">): string {
  if (o.connectionString) return o.connectionString;
  const u = new URL(o.url);
  const parts = [`${u.hostname}:${u.port || "6379"}`];
  if (u.protocol === "rediss:") parts.push("ssl=true");
  if (dbOf(u) !== 0) parts.push(`defaultDatabase=${dbOf(u)}`);
  return parts.join(",");
}

/** The client, imported on first use: the cache section's options are read by every command (see core/lazy.ts). */
const ioredis = lazyModule(() => import("ioredis"));

/** Opens a connection for one operation and closes it: the agent holds no Redis connection between steps. */
export async function withRedis<T>(o: Pick<RedisCacheOptions, "url" | "connectTimeoutMs">, fn: (r: Redis) => Promise<T>): Promise<T> {
  const { Redis } = await ioredis();
  const r = new Redis(o.url, { lazyConnect: true, connectTimeout: o.connectTimeoutMs, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false });
  r.on("error", () => undefined); // surfaced by the failing command below
  try {
    await r.connect();
  } catch (e) {
    r.disconnect();
    const u = new URL(o.url);
    throw new AgentError("unavailable", `Redis at ${u.hostname}:${u.port || 6379} is not reachable: ${(e as Error).message}`);
  }
  try {
    return await fn(r);
  } finally {
    await r.quit().catch(() => r.disconnect());
  }
}

const infoField = (info: string, field: string): string | undefined => new RegExp(`^${field}:(.*)$`, "m").exec(info)?.[1]?.trim();

const Adoption = z.object({
  id: z.string(),
  endpoint: z.string(),
  nodeType: z.string(),
  createdAt: z.string(),
  version: z.string(),
  maxmemoryBytes: z.number(),
  usedMemoryBytes: z.number(),
  /** The policy found; restored on release when the agent changed it. */
  previousPolicy: z.string(),
  policy: z.string(),
  policyNote: z.string(),
});
export type Adoption = z.infer<typeof Adoption>;

const Release = z.object({ id: z.string(), deletedKeys: z.number(), policyRestored: z.string() });
const Restored = z.object({ target: z.string(), value: z.string() });
const PolicyFound = z.object({ policy: z.string() });

/**
 * The adoptions of `id` since it was last released, oldest first: the first of them found the policy the Redis had
 * before the agent touched it (a second run may adopt a Redis the first left adopted).
 */
export function adoptionsSinceRelease(log: OpLog, deployment: string, id: string): Adoption[] {
  let since: Adoption[] = [];
  for (const e of log.history(deployment, ["redis-adopt", "redis-release"])) {
    const rec = z.object({ id: z.string() }).loose().safeParse(e.result);
    if (!rec.success || rec.data.id !== id) continue;
    if (e.op === "redis-release") since = [];
    else {
      const a = Adoption.safeParse(e.result);
      if (a.success) since.push(a.data);
    }
  }
  return since;
}

/**
 * The deployment's own Redis as CacheInfra. "Provision" adopts it: checks it answers, reads version and memory,
 * sets `maxmemory-policy` when allowed, and reports the policy it found so a rollback can put it back. Nothing is
 * created, so nothing is offered for deletion: the Redis, its databases and every key in it stay the deployment's
 * (the keys a run warmed are the tile warmer's to delete, by exact key).
 */
export class RedisCacheInfra implements CacheInfra {
  readonly engines = ["redis"] as const;
  constructor(
    readonly options: RedisCacheOptions,
    private readonly log: OpLog,
    private readonly deployment: string,
  ) {}

  get id(): string {
    return redisIdOf(this.options);
  }

  /** The approval card says what really happens: nothing is created, the given Redis is adopted. */
  intent(spec: CacheSpec): { action: string; creates: boolean } {
    const policy = this.options.setEvictionPolicy ? `, setting maxmemory-policy to ${spec.evictionPolicy} where Redis permits it` : "";
    return { action: `Adopt the existing Redis ${this.id} for ${this.deployment} (check it answers, read version and memory${policy}); nothing is created or billed`, creates: false };
  }

  /** What the Redis reports now (version, memory, policy); also the reachability check. */
  async inspect(): Promise<{ version: string; maxmemoryBytes: number; usedMemoryBytes: number; policy: string }> {
    return withRedis(this.options, async (r) => {
      const server = await r.info("server");
      const memory = await r.info("memory");
      let policy = infoField(memory, "maxmemory_policy");
      if (!policy) {
        const got = (await r.config("GET", "maxmemory-policy").catch(() => [])) as string[];
        policy = got[1] ?? "unknown";
      }
      return {
        version: infoField(server, "redis_version") ?? "unknown",
        maxmemoryBytes: Number(infoField(memory, "maxmemory") ?? 0),
        usedMemoryBytes: Number(infoField(memory, "used_memory") ?? 0),
        policy,
      };
    });
  }

  async provision(spec: CacheSpec, idempotencyKey: string): Promise<CacheResource> {
    if (spec.engine !== "redis") {
      throw new AgentError("bad-input", `deployment ${this.deployment} has a Redis cache (${this.id}); it cannot provide a ${spec.engine} cache`);
    }
    const a = await this.log.once(this.deployment, "redis-adopt", idempotencyKey, Adoption, async () => {
      const info = await this.inspect();
      // The policy found is journalled before CONFIG SET: a replay after a crash between the two finds the policy
      // already changed, and must still know (and later restore) the one the agent replaced.
      const found = this.log.get(this.deployment, "redis-policy-found", idempotencyKey, PolicyFound)?.policy ?? info.policy;
      this.log.put(this.deployment, "redis-policy-found", idempotencyKey, { policy: found });
      let policy = info.policy;
      let policyNote = found === info.policy ? `maxmemory-policy ${info.policy}` : `maxmemory-policy ${found} -> ${info.policy}`;
      if (this.options.setEvictionPolicy && info.policy !== spec.evictionPolicy) {
        try {
          await withRedis(this.options, (r) => r.config("SET", "maxmemory-policy", spec.evictionPolicy));
          policy = spec.evictionPolicy;
          policyNote = `maxmemory-policy ${found} -> ${spec.evictionPolicy}`;
        } catch (e) {
          policyNote = `maxmemory-policy ${info.policy} kept: CONFIG SET refused (${(e as Error).message})`;
        }
      }
      const memory = info.maxmemoryBytes > 0 ? `${(info.maxmemoryBytes / 2 ** 30).toFixed(2)} GB max` : "no maxmemory";
      const small = info.maxmemoryBytes > 0 && info.maxmemoryBytes < spec.memoryGb * 2 ** 30 ? ` (strategy wants ${spec.memoryGb} GB)` : "";
      return {
        id: this.id,
        endpoint: honuaConnectionString(this.options),
        nodeType: `redis ${info.version}, adopted; ${memory}${small}; ${policyNote}`,
        createdAt: new Date().toISOString(),
        ...info,
        previousPolicy: found,
        policy,
        policyNote,
      };
    });
    return {
      id: a.id, engine: "redis", nodeType: a.nodeType, endpoint: a.endpoint, createdAt: a.createdAt, created: false,
      replaced: a.previousPolicy !== a.policy ? [{ target: "maxmemory-policy", before: a.previousPolicy, after: a.policy }] : [],
    };
  }

  /** Puts back a Redis setting a provision replaced (only `maxmemory-policy`), once per key. */
  async restore(target: string, value: string, idempotencyKey: string): Promise<void> {
    if (target !== "maxmemory-policy") throw new AgentError("bad-input", `Redis ${this.id}: honua-agent changes only maxmemory-policy, not ${target}`);
    await this.log.once(this.deployment, "redis-restore", idempotencyKey, Restored, async () => {
      await withRedis(this.options, (r) => r.config("SET", "maxmemory-policy", value));
      return { target, value };
    });
  }

  /**
   * The adopted Redis is the deployment's own: releasing it deletes nothing. It puts back a policy the adoption changed
   * and a rollback did not already restore (a run from before rollbacks restored it), and records the release.
   */
  async deprovision(id: string, idempotencyKey: string): Promise<void> {
    if (id !== this.id) throw new AgentError("not-found", `deployment ${this.deployment} adopted ${this.id}, not ${id}`);
    await this.log.once(this.deployment, "redis-release", idempotencyKey, Release, async () => {
      const first = adoptionsSinceRelease(this.log, this.deployment, id)[0];
      let policyRestored = "unchanged";
      if (first && first.previousPolicy !== first.policy) {
        try {
          const now = (await this.inspect()).policy;
          if (now === first.policy) {
            await withRedis(this.options, (r) => r.config("SET", "maxmemory-policy", first.previousPolicy));
            policyRestored = first.previousPolicy;
          }
        } catch (e) {
          policyRestored = `not restored: ${(e as Error).message}`;
        }
      }
      return { id, deletedKeys: 0, policyRestored };
    });
  }
}

/**
 * Bulk `SET key value EX ttl [NX]` for warming, written as RESP straight onto one connection. A pipelined load
 * through ioredis builds a command object per key and tops out near 100k SET/s on a small machine, half
 * of what the Redis takes; encoding the commands into large buffers here removes that ceiling. Only SET,
 * AUTH and SELECT are sent, so every reply is a one-line `+OK`, `-ERR ...` or (with NX, key already there) `$-1`;
 * anything else is a failure.
 */
const SLAB = 512 * 1024;

export class RespBulkWriter {
  /** Commands are encoded straight into this buffer; it is sent when full and replaced, never reused. */
  private slab: Buffer = Buffer.allocUnsafe(SLAB);
  private used = 0;
  private readonly spare: Buffer[] = [];
  private sent = 0;
  private answered = 0;
  private preamble: number;
  private partial = "";
  private closed: Error | null = null;
  private waiters: (() => void)[] = [];
  written = 0;
  /** NX: keys already there, left as they were. */
  skipped = 0;
  failed = 0;
  firstError: string | null = null;
  /** `EX ttl` and the end of every SET: the same bytes each time. */
  private readonly tail: Buffer;

  private readonly arity: string;

  private constructor(
    private readonly sock: Socket,
    ttl: Buffer,
    preamble: number,
    private readonly onProgress: (written: number) => void,
    onlyNew: boolean,
  ) {
    this.preamble = preamble;
    this.arity = onlyNew ? "*6" : "*5";
    this.tail = Buffer.from(`\r\n$2\r\nEX\r\n$${ttl.length}\r\n${ttl.toString()}\r\n${onlyNew ? "$2\r\nNX\r\n" : ""}`);
    sock.on("data", (d: Buffer) => this.onData(d));
    sock.on("error", (e) => this.close(e));
    sock.on("close", () => this.close(new Error("connection closed")));
  }

  /** `onlyNew`: `SET ... NX`, so a key someone else wrote is never overwritten (and never becomes the run's). */
  static async open(o: Pick<RedisCacheOptions, "url" | "connectTimeoutMs">, ttlSeconds: number, onProgress: (written: number) => void = () => undefined, onlyNew = false): Promise<RespBulkWriter> {
    const u = new URL(o.url);
    const port = Number(u.port || 6379);
    const sock: Socket = u.protocol === "rediss:" ? tlsConnect({ host: u.hostname, port, servername: u.hostname }) : netConnect(port, u.hostname);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new AgentError("unavailable", `Redis at ${u.hostname}:${port} is not reachable: connect timeout`)), o.connectTimeoutMs);
      sock.once(u.protocol === "rediss:" ? "secureConnect" : "connect", () => (clearTimeout(t), resolve()));
      sock.once("error", (e) => (clearTimeout(t), reject(new AgentError("unavailable", `Redis at ${u.hostname}:${port} is not reachable: ${e.message}`))));
    });
    sock.setNoDelay(true);
    const hello: (string | Buffer)[][] = [];
    if (u.password) hello.push(u.username ? ["AUTH", decodeURIComponent(u.username), decodeURIComponent(u.password)] : ["AUTH", decodeURIComponent(u.password)]);
    if (dbOf(u) !== 0) hello.push(["SELECT", String(dbOf(u))]);
    const w = new RespBulkWriter(sock, Buffer.from(String(Math.round(ttlSeconds))), hello.length, onProgress, onlyNew);
    for (const c of hello) w.push(c);
    await w.flush();
    await w.until(() => w.preamble === 0);
    return w;
  }

  private push(args: (string | Buffer)[]): void {
    for (const b of [Buffer.from(`*${args.length}\r\n`), ...args.flatMap((a) => [Buffer.from(`$${Buffer.byteLength(a)}\r\n`), typeof a === "string" ? Buffer.from(a) : a, Buffer.from("\r\n")])]) this.append(b);
    this.sent++;
  }

  private append(b: Buffer): void {
    if (this.used + b.length > this.slab.length) {
      this.send();
      if (b.length > this.slab.length) {
        this.sock.write(b);
        return;
      }
    }
    this.used += b.copy(this.slab, this.used);
  }

  /** Queues one SET; waits only while the socket's buffer is full. */
  set(key: string, value: Buffer): Promise<void> | undefined {
    if (this.closed) return Promise.reject(this.closed);
    const head = `${this.arity}\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${value.length}\r\n`;
    if (this.used + head.length * 3 + value.length + this.tail.length <= this.slab.length) {
      this.used += this.slab.write(head, this.used, "utf8");
      this.used += value.copy(this.slab, this.used);
      this.used += this.tail.copy(this.slab, this.used);
    } else {
      this.append(Buffer.from(head));
      this.append(value);
      this.append(this.tail);
    }
    this.sent++;
    return this.sock.writableNeedDrain ? new Promise<void>((r) => this.sock.once("drain", () => r())) : undefined;
  }

  private send(): void {
    if (this.used === 0) return;
    const slab = this.slab;
    // A slab goes back to the pool once the socket has written it: 40 MB of tiles then cost no garbage.
    this.sock.write(slab.subarray(0, this.used), () => this.spare.push(slab));
    this.slab = this.spare.pop() ?? Buffer.allocUnsafe(SLAB);
    this.used = 0;
  }

  private async flush(): Promise<void> {
    this.send();
    if (this.sock.writableNeedDrain) await new Promise<void>((r) => this.sock.once("drain", () => r()));
  }

  private onData(d: Buffer): void {
    const text = this.partial + d.toString("latin1");
    let start = 0;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", start)) {
      const line = text.slice(start, i);
      start = i + 1;
      this.answered++;
      if (this.preamble > 0) {
        this.preamble--;
        if (!line.startsWith("+")) this.close(new AgentError("unavailable", `Redis refused the connection setup: ${line.trim()}`));
        continue;
      }
      if (line.startsWith("+")) {
        if (++this.written % 1000 === 0) this.onProgress(this.written);
      } else if (line.startsWith("$-1")) {
        this.skipped++;
      } else {
        this.failed++;
        this.firstError ??= line.trim();
        if (!line.startsWith("-")) this.close(new Error(`unexpected Redis reply: ${line.slice(0, 80)}`));
      }
    }
    this.partial = text.slice(start);
    this.wake();
  }

  private close(e: Error): void {
    this.closed ??= e;
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    ws.forEach((w) => w());
  }

  private async until(done: () => boolean): Promise<void> {
    while (!done()) {
      if (this.closed) throw this.closed;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Sends what is queued, waits for every reply, closes. Replies that never came count as failed. */
  async finish(): Promise<{ written: number; failed: number }> {
    try {
      await this.flush();
      await this.until(() => this.answered >= this.sent);
    } catch (e) {
      this.failed += this.sent - this.answered;
      this.firstError ??= (e as Error).message;
    } finally {
      this.sock.end();
      this.sock.destroySoon?.();
    }
    this.onProgress(this.written);
    return { written: this.written, failed: this.failed };
  }
}
