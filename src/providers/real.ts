import { homedir } from "node:os";
import { resolve } from "node:path";
import type { Deployment } from "../config.js";
import { AgentError } from "../core/errors.js";
import { RedisCacheInfra, honuaConnectionString, type RedisCacheOptions } from "../tools/cache/redis.js";
import { settingValue } from "../tools/config/keys.js";
import { AppSettingsConfigStore } from "../tools/config/appsettings.js";
import { EnvFileConfigStore } from "../tools/config/envfile.js";
import type { FileConfigStore } from "../tools/config/file.js";
import { K8sConfigStore } from "../tools/config/k8s.js";
import { KubernetesRollout } from "../tools/rollout/k8s.js";
import { priceOf } from "../tools/cost/prices.js";
import { ProbeMetrics } from "../tools/metrics/probe.js";
import { LocalTileOperations } from "../tools/tiles/local.js";
import { IngressTraffic } from "../tools/traffic/ingress.js";
import { NginxTraffic } from "../tools/traffic/nginx.js";
import { type CacheInfra, type ConfigStore, type CostSource, type DeploymentAdapters, type MetricsSource, type TileOperations, type TrafficRouter } from "../tools/types.js";
import { systemClock, type Clock } from "../core/clock.js";
import { cloudCache, cloudMetrics, cloudTraffic } from "./cloud.js";
import type { OpLog } from "../store/oplog.js";
import type { CacheSection } from "../tools/cache/section.js";
import type { ConfigSection } from "../tools/config/section.js";
import type { MetricsSection } from "../tools/metrics/section.js";
import { composeRouters } from "../tools/traffic/composite.js";
import { RealStorage } from "../tools/storage/real.js";
import { PgDatabase } from "../tools/database/real.js";
import { RealObservability } from "../tools/observability/real.js";
import { WholeStorageRouting } from "../tools/storage/routing.js";
import { RealMetadata } from "../tools/metadata/capability.js";
import { WholeMetadataReads } from "../tools/metadata/routing.js";
import { METADATA_READS } from "../tools/metadata/types.js";
import type { TrafficRouterSection, TrafficSection } from "../tools/traffic/section.js";

export interface RealContext {
  log: OpLog;
  env: NodeJS.ProcessEnv;
  /** Relative paths in the deployment's sections are read from here. */
  cwd: string;
}

/** The error of a capability whose section the deployment does not have. */
const noSection = (deployment: string, section: string) => async (): Promise<never> => {
  throw new AgentError("unavailable", `deployment ${deployment} has no ${section} section in honua-agent.yaml (see docs/local.md)`);
};

export function configSection(d: Deployment): ConfigSection | undefined {
  return d.config ?? (d.appsettings ? { kind: "appsettings", path: d.appsettings } : undefined);
}

function configStore(name: string, section: ConfigSection, ctx: RealContext): FileConfigStore {
  const path = resolve(ctx.cwd, section.path);
  switch (section.kind) {
    case "envfile":
      return new EnvFileConfigStore(path, ctx.log, name);
    case "k8s": {
      const r = section.rollout;
      const namespace = (r ? r.namespace : undefined) ?? section.resource.namespace ?? "default";
      const kubeconfig = r && r.kubeconfig ? resolve(ctx.cwd, r.kubeconfig.replace(/^~(?=\/)/, homedir())) : undefined;
      const rollout = r ? new KubernetesRollout({ ...r, kubeconfig }, ctx.log, name, { namespace }) : r;
      return new K8sConfigStore(path, section.resource, ctx.log, name, rollout, namespace);
    }
    case "appsettings":
      return new AppSettingsConfigStore(path, ctx.log, name);
  }
}

function cacheInfra(name: string, section: CacheSection, ctx: RealContext): CacheInfra {
  return "redis" in section ? new RedisCacheInfra(section.redis, ctx.log, name) : cloudCache(section);
}

function router(name: string, section: TrafficRouterSection, ctx: RealContext): TrafficRouter {
  switch (section.kind) {
    case "nginx":
      return new NginxTraffic({ ...section, include: resolve(ctx.cwd, section.include) }, ctx.log, name);
    case "ingress":
      return new IngressTraffic({ ...section, path: resolve(ctx.cwd, section.path) }, ctx.log, name);
    default:
      return cloudTraffic(section);
  }
}

/** One router, or several keyed by the feature each moves. */
function traffic(name: string, section: TrafficSection, ctx: RealContext, storage = false, metadata = false): TrafficRouter {
  const routers = (Array.isArray(section) ? section : [section]).map((r) => router(name, r, ctx));
  // A storage backend's routing moves whole with Honua's config where no router splits it.
  if (storage && !routers.some((r) => r.features?.().includes("storage-routing"))) routers.push(new WholeStorageRouting(ctx.log, name));
  // Metadata reads likewise, where no router splits Honua's STAC read paths.
  if (metadata && !routers.some((r) => r.features?.().includes(METADATA_READS))) routers.push(new WholeMetadataReads(ctx.log, name));
  return composeRouters(routers);
}

/** Whether a configured router splits Honua's STAC read paths (else metadata reads move whole). */
function splitsMetadataReads(name: string, section: TrafficSection | undefined, ctx: RealContext): boolean {
  if (!section) return false;
  return (Array.isArray(section) ? section : [section]).some((r) => router(name, r, ctx).features?.().includes(METADATA_READS));
}

function metrics(section: MetricsSection): { metrics: MetricsSource; clock: Clock } {
  if (section.source === "probe") {
    const probe = new ProbeMetrics(section);
    return { metrics: probe, clock: probe.clock };
  }
  return { metrics: cloudMetrics(section), clock: systemClock };
}

/** Configured components, plus the deployment's Redis at its price-table node price while Honua's config points at it. */
function cost(d: Deployment, config: ConfigStore): CostSource {
  return {
    async monthly() {
      const out: Record<string, number> = { ...(d.cost?.monthlyUsd ?? {}) };
      const redis = d.cache && "redis" in d.cache ? d.cache.redis : undefined;
      if (redis) {
        const used = settingValue(await config.read().catch(() => ({})), "ConnectionStrings__Redis") === honuaConnectionString(redis);
        if (used) out[`cache:redis`] = redis.nodeType ? priceOf("redis", redis.nodeType) : 0;
      }
      return out;
    },
  };
}


/**
 * The adapters of a `local` or `aws` deployment, one per capability, each chosen by its section of
 * honua-agent.yaml. A section that is absent gives a capability that refuses with a message naming it.
 */
export function realAdapters(name: string, d: Deployment, ctx: RealContext): DeploymentAdapters {
  const cfgSection = configSection(d);
  const config: ConfigStore = cfgSection ? configStore(name, cfgSection, ctx) : { read: noSection(name, "config"), apply: noSection(name, "config") };
  const m = d.metrics ? metrics(d.metrics) : { metrics: { samples: noSection(name, "metrics") }, clock: systemClock };
  const redis: RedisCacheOptions | undefined = d.cache && "redis" in d.cache ? d.cache.redis : undefined;
  const tiles: TileOperations = d.tiles
    ? new LocalTileOperations({ ...d.tiles, accessLog: d.tiles.accessLog && resolve(ctx.cwd, d.tiles.accessLog) }, { redis, config, log: ctx.log, deployment: name, env: ctx.env })
    : { popularTiles: async () => [], submitJob: noSection(name, "tiles") }; // no popularity known: nothing to warm
  return {
    provider: d.provider,
    clock: m.clock,
    metrics: m.metrics,
    config,
    cache: d.cache ? cacheInfra(name, d.cache, ctx) : { engines: [], provision: noSection(name, "cache"), deprovision: noSection(name, "cache") },
    traffic: d.traffic
      ? traffic(name, d.traffic, ctx, d.storage !== undefined, d.metadata !== undefined)
      : d.storage && d.metadata ? composeRouters([new WholeStorageRouting(ctx.log, name), new WholeMetadataReads(ctx.log, name)])
      : d.storage ? new WholeStorageRouting(ctx.log, name)
      : d.metadata ? new WholeMetadataReads(ctx.log, name)
      : { share: noSection(name, "traffic"), setShare: noSection(name, "traffic") },
    tiles,
    cost: cost(d, config),
    ...(d.storage ? { storage: new RealStorage(d.storage, ctx.log, name, ctx.env) } : {}),
    ...(d.database ? { database: new PgDatabase(d.database, ctx.log, name, ctx.env, ctx.cwd, config) } : {}),
    ...(d.observability ? { observability: new RealObservability(d.observability, name, ctx.env, ctx.cwd) } : {}),
    ...(d.metadata ? { metadata: new RealMetadata(d.metadata, name, { env: ctx.env, cwd: ctx.cwd, stateDir: resolve(ctx.cwd, ctx.env.HONUA_AGENT_HOME ?? ".honua-agent"), splitReads: splitsMetadataReads(name, d.traffic, ctx) }) } : {}),
  };
}
