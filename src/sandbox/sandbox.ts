import Database from "better-sqlite3";
import type { Deployment } from "../config.js";
import type { ConfigChange } from "../core/sections.js";
import { PRICES, originMonthlyUsd, priceOf } from "../tools/cost/prices.js";
import { settingValue } from "../tools/config/keys.js";
import type { CacheEngine, CacheResource, CacheSpec, DeploymentAdapters, MetricSample, MetricsQueryLog, TileRef } from "../tools/types.js";
import type { Clock } from "../core/clock.js";
import { cachedPrepare } from "../store/sql.js";
import { AgentError } from "../core/errors.js";
import type { SandboxFault, SandboxFaults } from "../core/faults.js";
import { SANDBOX_TWINS } from "../tools/twins.js";

/** Deterministic noise in [-1, 1] for (seed, minute): the same seed gives the same series. */
function noise(seed: number, minute: number, channel: number): number {
  let h = (seed * 374761393 + minute * 668265263 + channel * 2147483647) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 1274126177) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return (h / 0xffffffff) * 2 - 1;
}

/** Bumped when the sandbox's tables change; stored as the file's `user_version`. */
const SANDBOX_SCHEMA_VERSION = 2;

/** Honua's defaults for a new deployment: in-memory cache only, no Redis. */
function defaultConfig(name: string): Record<string, string> {
  return {
    ConnectionStrings__DefaultConnection: `env:HONUA_${name.toUpperCase()}_DATABASE_URL`,
    Cache__Enabled: "true",
    Cache__EnableFallback: "true",
    Cache__DefaultTtlSeconds: "300",
    Cache__LayerTtlSeconds: "300",
    Cache__QueryTtlSeconds: "30",
    Cache__KeyPrefix: "honua:",
    Cache__ResponseCachingEnabled: "false",
    FileStorage__Provider: "Local",
    FileStorage__LocalStorage__BasePath: "/data/rasters",
    Observability__Prometheus__Path: "/metrics",
  };
}

const LAYERS = ["basemap", "parcels", "imagery-2024", "hydrography", "roads", "buildings"];

/**
 * The sandbox's traffic paths, one per cache engine, each its own split: Redis inside Honua (`cache`, the feature a
 * real deployment's one splitter moves), and the HTTP caches in front of it.
 */
export const SANDBOX_FEATURES: Record<CacheEngine, string> = { redis: "cache", varnish: "cache:varnish", cloudfront: "cache:cloudfront" };
const ENGINES = Object.keys(SANDBOX_FEATURES) as CacheEngine[];

interface Profile {
  baseP95Ms: number;
  requestsPerSecond: number;
  baseErrorRate: number;
  /** Distinct tiles requested in a day: the cache's working set. */
  workingSetTiles: number;
  monthly: Record<string, number>;
}

function profileFor(seed: number): Profile {
  return {
    baseP95Ms: 260 + (seed % 7) * 20,
    requestsPerSecond: 140 + (seed % 5) * 15,
    baseErrorRate: 0.002 + (seed % 3) * 0.0005,
    workingSetTiles: 60_000 + (seed % 4) * 15_000,
    monthly: { compute: 612 + (seed % 3) * 40, database: 418, storage: 96 },
  };
}

/**
 * A simulated Honua deployment that persists in SQLite, so it survives the agent being killed.
 * It speaks Honua's surface: `ConnectionStrings__Redis` / `Cache__*` config keys, the serving metrics,
 * the tile-operations warm job. Every mutating call is keyed: the same key returns the first result.
 */
export class SandboxWorld {
  readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    // Its statements are a few constant texts read on every step (the clock, config, traffic): prepared once each.
    // None is held as an iterator, so one statement per text is safe to share.
    this.db.prepare = cachedPrepare(this.db.prepare.bind(this.db)) as Database.Database["prepare"];
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 10000");
    // The schema version lives in the file's header (`user_version`), which commits with the tables: an up-to-date
    // file is opened without a write, and a crash while creating the tables leaves none of them.
    if (this.schemaVersion() < SANDBOX_SCHEMA_VERSION) {
      this.db.transaction(() => {
        this.db.exec(`
          CREATE TABLE IF NOT EXISTS sandbox_deployments (name TEXT PRIMARY KEY, seed INTEGER NOT NULL, clock_ms INTEGER NOT NULL, warm REAL NOT NULL DEFAULT 0, ready INTEGER NOT NULL DEFAULT 1);
          CREATE TABLE IF NOT EXISTS sandbox_config (deployment TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (deployment, key));
          CREATE TABLE IF NOT EXISTS sandbox_traffic (deployment TEXT NOT NULL, feature TEXT NOT NULL, percent INTEGER NOT NULL, PRIMARY KEY (deployment, feature));
          CREATE TABLE IF NOT EXISTS sandbox_resources (id TEXT PRIMARY KEY, deployment TEXT NOT NULL, kind TEXT NOT NULL, spec TEXT NOT NULL, endpoint TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT);
          CREATE TABLE IF NOT EXISTS sandbox_ops (key TEXT PRIMARY KEY, deployment TEXT NOT NULL, op TEXT NOT NULL, result TEXT NOT NULL, at TEXT NOT NULL);
        `);
        // Deployments made by an earlier version, which wrote a deployment's defaults one statement at a time, are
        // marked not ready: `ensure` checks them before first use.
        const cols = (this.db.prepare(`PRAGMA table_info(sandbox_deployments)`).all() as { name: string }[]).map((c) => c.name);
        if (!cols.includes("ready")) this.db.exec(`ALTER TABLE sandbox_deployments ADD COLUMN ready INTEGER NOT NULL DEFAULT 0`);
        this.db.pragma(`user_version = ${SANDBOX_SCHEMA_VERSION}`);
      }).immediate();
    }
  }

  /**
   * Puts a deployment back as it was before anything ran against it: every row of it in every sandbox table (the
   * twins' tables too: each keeps a `deployment` column), in one transaction. It is created again on next use.
   */
  reset(deployment: string): { tables: number; rows: number } {
    const tables = (this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[]).map((t) => t.name);
    let rows = 0;
    let touched = 0;
    this.db.transaction(() => {
      for (const t of tables) {
        const cols = (this.db.prepare(`PRAGMA table_info("${t}")`).all() as { name: string }[]).map((c) => c.name);
        const col = t === "sandbox_deployments" ? "name" : cols.includes("deployment") ? "deployment" : null;
        if (!col) continue;
        const n = this.db.prepare(`DELETE FROM "${t}" WHERE "${col}" = ?`).run(deployment).changes;
        rows += n;
        if (n > 0) touched++;
      }
    }).immediate();
    return { tables: touched, rows };
  }

  private schemaVersion(): number {
    return this.db.pragma("user_version", { simple: true }) as number;
  }

  close(): void {
    this.db.close();
  }

  /**
   * Creates the deployment on first use with Honua's defaults (in-memory cache only, no Redis), in one transaction
   * with its config: a crash leaves either no deployment or a whole one. A deployment an earlier version left
   * half built (defaults missing) is completed when nothing has run against it yet, and refused otherwise.
   */
  ensure(name: string, seed: number, startMs: number): void {
    const ready = () => (this.db.prepare(`SELECT ready FROM sandbox_deployments WHERE name = ?`).get(name) as { ready: number } | undefined)?.ready === 1;
    if (ready()) return; // the common case: no write
    this.db.transaction(() => {
      const row = this.db.prepare(`SELECT ready FROM sandbox_deployments WHERE name = ?`).get(name) as { ready: number } | undefined;
      if (row?.ready === 1) return;
      const defaults = defaultConfig(name);
      const put = this.db.prepare(`INSERT INTO sandbox_config (deployment, key, value) VALUES (?, ?, ?) ON CONFLICT (deployment, key) DO NOTHING`);
      if (!row) {
        this.db.prepare(`INSERT INTO sandbox_deployments (name, seed, clock_ms, ready) VALUES (?, ?, ?, 1)`).run(name, seed, startMs);
        for (const [k, v] of Object.entries(defaults)) put.run(name, k, v);
        return;
      }
      const have = this.config(name);
      const missing = Object.keys(defaults).filter((k) => !(k in have));
      if (missing.length > 0) {
        const ops = (this.db.prepare(`SELECT COUNT(*) AS n FROM sandbox_ops WHERE deployment = ?`).get(name) as { n: number }).n;
        if (ops > 0) {
          throw new AgentError(
            "unavailable",
            `sandbox deployment ${name} in ${this.db.name} was left half built by an earlier version (missing ${missing.join(", ")}) and ${ops} operation(s) ran against it since; ` +
              `it cannot be completed safely: move that file away to start the sandbox afresh`,
          );
        }
        for (const k of missing) put.run(name, k, defaults[k]!);
      }
      this.db.prepare(`UPDATE sandbox_deployments SET ready = 1 WHERE name = ?`).run(name);
    }).immediate();
  }

  /** Runs `fn` once per key, atomically with recording its result. */
  once<T>(deployment: string, key: string, op: string, fn: () => T, at: string): T {
    const tx = this.db.transaction((): T => {
      const prior = this.db.prepare(`SELECT result FROM sandbox_ops WHERE key = ?`).get(key) as { result: string } | undefined;
      if (prior) return JSON.parse(prior.result) as T;
      const result = fn();
      this.db.prepare(`INSERT INTO sandbox_ops (key, deployment, op, result, at) VALUES (?, ?, ?, ?, ?)`)
        .run(key, deployment, op, JSON.stringify(result ?? null), at);
      return result;
    });
    return tx.immediate();
  }

  /** The recorded result of the operation keyed `key`, if it ran. */
  opResult<T>(key: string): T | undefined {
    const row = this.db.prepare(`SELECT result FROM sandbox_ops WHERE key = ?`).get(key) as { result: string } | undefined;
    return row ? (JSON.parse(row.result) as T) : undefined;
  }

  /** How many times an operation really ran (not replays): what the crash tests count. */
  count(deployment: string, op: string): number {
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM sandbox_ops WHERE deployment = ? AND op = ?`).get(deployment, op) as { n: number }).n;
  }

  config(deployment: string): Record<string, string> {
    if (this.known.has(deployment)) this.row(deployment); // a deployment reset since is created again with its defaults
    const rows = this.db.prepare(`SELECT key, value FROM sandbox_config WHERE deployment = ? ORDER BY key`).all(deployment) as { key: string; value: string }[];
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  share(deployment: string, feature: string): number {
    const row = this.db.prepare(`SELECT percent FROM sandbox_traffic WHERE deployment = ? AND feature = ?`).get(deployment, feature) as { percent: number } | undefined;
    return row?.percent ?? 0;
  }

  activeResources(deployment: string): { id: string; kind: string; spec: CacheSpec; endpoint: string; created_at: string }[] {
    const rows = this.db.prepare(`SELECT * FROM sandbox_resources WHERE deployment = ? AND deleted_at IS NULL ORDER BY created_at, id`).all(deployment) as { id: string; kind: string; spec: string; endpoint: string; created_at: string }[];
    return rows.map((r) => ({ ...r, spec: JSON.parse(r.spec) as CacheSpec }));
  }

  row(deployment: string): { seed: number; clock_ms: number; warm: number } {
    const read = () => this.db.prepare(`SELECT seed, clock_ms, warm FROM sandbox_deployments WHERE name = ?`).get(deployment) as { seed: number; clock_ms: number; warm: number } | undefined;
    let r = read();
    // Reset (here or by another process) since its adapters were built: it starts again as new, as on first use.
    const known = this.known.get(deployment);
    if (!r && known) {
      this.ensure(deployment, known.seed, known.startMs);
      r = read();
    }
    if (!r) throw new Error(`sandbox deployment ${deployment} does not exist`);
    return r;
  }

  /** Deployments this process built adapters for, with what creates them again after a reset. */
  private readonly known = new Map<string, { seed: number; startMs: number }>();

  /**
   * The deployment's simulated clock: a sleep moves it on at once, or, with `paceMs` (real milliseconds per
   * simulated minute), after that much real time, so a watch window can be watched, and interrupted, as it runs.
   */
  clock(deployment: string, paceMs = 0): Clock {
    return {
      now: () => new Date(this.row(deployment).clock_ms),
      sleep: async (ms) => {
        if (paceMs > 0) await new Promise((r) => setTimeout(r, (ms / 60_000) * paceMs));
        this.db.prepare(`UPDATE sandbox_deployments SET clock_ms = clock_ms + ? WHERE name = ?`).run(Math.round(ms), deployment);
      },
    };
  }

  /** The cache of `engine` Honua is actually using: a live resource the config points at (Redis) or that serves with Honua's Cache-Control. */
  private liveCache(deployment: string, engine: CacheEngine, cfg: Record<string, string>): CacheResource | undefined {
    for (const r of this.activeResources(deployment).filter((x) => x.spec.engine === engine)) {
      const used = engine === "redis" ? settingValue(cfg, "ConnectionStrings__Redis") === r.endpoint : Number(settingValue(cfg, "TileOptions__CacheMaxAge") ?? 0) > 0;
      if (used) return { id: r.id, engine, nodeType: r.spec.nodeType, endpoint: r.endpoint, createdAt: r.created_at };
    }
    return undefined;
  }

  /**
   * A fault is a bad change: it shows on the path of a cache created while the fault was set, once that path carries
   * at least the fault's share of traffic. A cache rolled out before (without the fault) stays healthy.
   */
  faultShows(deployment: string, faults: SandboxFaults, f: SandboxFault): boolean {
    const from = faults.get(f);
    if (from === undefined) return false;
    return this.activeResources(deployment).some((r) => (r.spec as CacheSpec & { faulty?: boolean }).faulty === true && this.share(deployment, SANDBOX_FEATURES[r.spec.engine]) >= from);
  }

  /** One metrics sample at `minute`, from the deployment's current configuration, traffic splits and faults. */
  sample(deployment: string, at: Date, faults: SandboxFaults): MetricSample {
    const { seed, warm } = this.row(deployment);
    const p = profileFor(seed);
    const minute = Math.floor(at.getTime() / 60_000);
    const cfg = this.config(deployment);
    // Each live cache answers its share of requests with its own hit ratio; a request missed by every layer reaches the origin.
    let miss = 1;
    let uncovered = 1;
    for (const engine of ENGINES) {
      const share = this.share(deployment, SANDBOX_FEATURES[engine]) / 100;
      if (share <= 0 || !this.liveCache(deployment, engine, cfg)) continue;
      const ttl = Number((engine === "redis" ? settingValue(cfg, "Cache__DefaultTtlSeconds") : settingValue(cfg, "TileOptions__CacheMaxAge")) ?? 300);
      const ttlFactor = ttl >= 3600 ? 0.04 : ttl < 120 ? -0.2 : ttl < 600 ? -0.06 : 0;
      const layerHit = Math.max(0, Math.min(0.95, 0.5 + 0.38 * warm + ttlFactor + 0.02 * noise(seed, minute, 3 + ENGINES.indexOf(engine) * 10)));
      miss *= 1 - layerHit * share;
      uncovered *= 1 - share;
    }
    const effectiveHit = 1 - miss;
    // The hit ratio of the requests that pass through a cache at all; null with no cache in the path.
    const hit = uncovered < 1 ? effectiveHit / (1 - uncovered) : null;
    const shows = (f: SandboxFault) => this.faultShows(deployment, faults, f);
    let p95 = p.baseP95Ms * (1 - 0.55 * effectiveHit) * (1 + 0.04 * noise(seed, minute, 1));
    let errorRate = p.baseErrorRate * (1 + 0.3 * noise(seed, minute, 2));
    if (shows("latency-regression")) p95 *= 2.2;
    if (shows("error-spike")) errorRate = 0.08 + 0.01 * noise(seed, minute, 4);
    const rps = p.requestsPerSecond * (1 + 0.05 * noise(seed, minute, 5));
    return {
      at: at.toISOString(),
      p95Ms: Number(p95.toFixed(1)),
      errorRate: Number(errorRate.toFixed(5)),
      hitRatio: hit === null ? null : Number(hit.toFixed(4)),
      requestsPerSecond: Number(rps.toFixed(2)),
      originRequestsPerSecond: Number((rps * (1 - effectiveHit)).toFixed(2)),
    };
  }

  /** Builds the adapters a workflow uses for this deployment. */
  adapters(name: string, d: Deployment, faults: SandboxFaults, startMs: number, paceMs = 0): DeploymentAdapters {
    this.ensure(name, d.seed ?? 16, startMs);
    this.known.set(name, { seed: d.seed ?? 16, startMs });
    const clock = this.clock(name, paceMs);
    const at = () => clock.now().toISOString();
    const world = this;
    const profile = profileFor(this.row(name).seed);
    let lastLog: MetricsQueryLog | null = null;
    return {
      provider: "sandbox",
      clock,
      metrics: {
        async samples(from, to, stepMinutes) {
          const out: MetricSample[] = [];
          const noData: { at: string; reason: string }[] = [];
          const step = stepMinutes * 60_000;
          for (let t = from.getTime() + step; t <= to.getTime(); t += step) {
            // no-data: after the change the series stops arriving (e.g. the new path is not scraped).
            if (world.faultShows(name, faults, "no-data")) {
              noData.push({ at: new Date(t).toISOString(), reason: "sandbox fault no-data: the series stopped arriving" });
              continue;
            }
            out.push(world.sample(name, new Date(t), faults));
          }
          lastLog = {
            source: `sandbox:${name}`,
            at: at(),
            queries: (["p95Ms", "errorRate", "hitRatio", "requestsPerSecond", "originRequestsPerSecond"] as const).map((reading) => ({
              reading, query: `sandbox ${reading}`, sampleCountQuery: null, start: from.toISOString(), end: to.toISOString(), stepSeconds: stepMinutes * 60,
              points: out.map((p) => ({ at: p.at, value: p[reading], raw: p[reading] === null ? null : String(p[reading]), samples: 1 })),
            })),
            noData,
          };
          return out;
        },
        lastQueries: () => lastLog,
      },
      config: {
        async read() {
          return world.config(name);
        },
        async apply(changes: ConfigChange[], key: string) {
          world.once(name, key, "config-apply", () => {
            const put = world.db.prepare(`INSERT INTO sandbox_config (deployment, key, value) VALUES (?, ?, ?) ON CONFLICT (deployment, key) DO UPDATE SET value = excluded.value`);
            const del = world.db.prepare(`DELETE FROM sandbox_config WHERE deployment = ? AND key = ?`);
            for (const c of changes) (c.after === null ? del.run(name, c.key) : put.run(name, c.key, c.after));
            return changes.length;
          }, at());
        },
      },
      cache: {
        engines: ENGINES,
        async provision(spec: CacheSpec, key: string): Promise<CacheResource> {
          if (faults.has("provision-failure")) {
            throw new Error(`sandbox: InsufficientCacheClusterCapacity: no ${spec.nodeType} capacity for ${name} (injected fault provision-failure)`);
          }
          return world.once(name, key, "provision-cache", () => {
            const id = `${spec.engine}-${name}-${key.split(":")[0]!.slice(-6)}`;
            const endpoint = spec.engine === "redis" ? `${id}.sandbox.cache.internal:6379,ssl=true,password=ref:secret/${id}` : `${id}.sandbox.edge.internal`;
            world.db.prepare(`INSERT INTO sandbox_resources (id, deployment, kind, spec, endpoint, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
              .run(id, name, spec.engine, JSON.stringify({ ...spec, faulty: [...faults.keys()].some((f) => f !== "provision-failure") }), endpoint, at());
            return { id, engine: spec.engine, nodeType: spec.nodeType, endpoint, createdAt: at(), created: true };
          }, at());
        },
        async deprovision(id: string, key: string) {
          world.once(name, key, "deprovision-cache", () => {
            world.db.prepare(`UPDATE sandbox_resources SET deleted_at = ? WHERE id = ? AND deployment = ? AND deleted_at IS NULL`).run(at(), id, name);
            return id;
          }, at());
        },
      },
      traffic: {
        features: () => Object.values(SANDBOX_FEATURES),
        async share(feature) {
          return world.share(name, feature);
        },
        async setShare(feature, percent, key) {
          world.once(name, key, "traffic-share", () => {
            world.db.prepare(`INSERT INTO sandbox_traffic (deployment, feature, percent) VALUES (?, ?, ?) ON CONFLICT (deployment, feature) DO UPDATE SET percent = excluded.percent`)
              .run(name, feature, percent);
            return percent;
          }, at());
        },
      },
      tiles: {
        async popularTiles(limit) {
          const seed = world.row(name).seed;
          const tiles: TileRef[] = [];
          for (const [i, layerId] of LAYERS.entries()) {
            for (let z = 8; z <= 14; z++) {
              const weight = Math.exp(-i * 0.6) * Math.exp(-Math.abs(z - 11) * 0.5);
              tiles.push({ layerId, tileMatrixSetId: "WebMercatorQuad", z, requestsPerHour: Math.round(profile.requestsPerSecond * 3600 * weight * 0.08 * (1 + 0.1 * noise(seed, i * 100 + z, 6))) });
            }
          }
          return tiles.sort((a, b) => b.requestsPerHour - a.requestsPerHour).slice(0, limit);
        },
        async submitJob(job, key) {
          const done = world.once(name, key, "tile-job", () => {
            const tiles = Math.min(job.maxTiles, Math.round(4 ** (job.maxZoom - job.minZoom + 1) * 1.2));
            const before = world.row(name).warm;
            const after = Math.min(1, before + tiles / profile.workingSetTiles);
            world.db.prepare(`UPDATE sandbox_deployments SET warm = ? WHERE name = ?`).run(after, name);
            // What this job added, so deleting what it warmed takes away exactly that.
            return { jobId: `job-${key.split(":").slice(-1)[0]}-${tiles}`, tilesProcessed: tiles, warmed: after - before };
          }, at());
          return { jobId: done.jobId, tilesProcessed: done.tilesProcessed };
        },
        async written(key) {
          const job = world.opResult<{ tilesProcessed: number }>(key);
          if (!job || job.tilesProcessed === 0) return null;
          return { description: `${job.tilesProcessed} warmed tiles in the sandbox cache of ${name}`, deletes: `the ${job.tilesProcessed} tile entries this run warmed (nothing else in the cache)` };
        },
        async discard(jobKey, key) {
          world.once(name, key, "tile-discard", () => {
            const job = world.opResult<{ tilesProcessed: number; warmed?: number }>(jobKey);
            if (job) world.db.prepare(`UPDATE sandbox_deployments SET warm = MAX(0.0, warm - ?) WHERE name = ?`).run(job.warmed ?? job.tilesProcessed / profile.workingSetTiles, name);
            return job?.tilesProcessed ?? 0;
          }, at());
        },
      },
      cost: {
        async monthly() {
          const out: Record<string, number> = { ...profile.monthly };
          const s = world.sample(name, clock.now(), new Map());
          out.origin = Number(originMonthlyUsd(s.originRequestsPerSecond).toFixed(2));
          for (const r of world.activeResources(name)) {
            out[`cache:${r.id}`] = r.spec.engine === "cloudfront"
              ? Number(((s.requestsPerSecond * PRICES.secondsPerMonth) / 1e6 * PRICES.cloudfront.perMillionRequests).toFixed(2))
              : priceOf(r.spec.engine, r.spec.nodeType);
          }
          return out;
        },
      },
      // The sandbox twins of the other capabilities (metadata, storage, database, observability), each from its folder.
      ...Object.assign({}, ...SANDBOX_TWINS.map((twin) => twin({ world: this, deployment: name, config: d, clock, faults }))),
    };
  }
}
