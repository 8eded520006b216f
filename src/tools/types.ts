import type { ConfigChange } from "../core/sections.js";
import type { MetricsSummary } from "../core/metrics.js";
import type { Clock } from "../core/clock.js";

/** One point of the serving metrics, as the metrics source reports it (HONUA.md names). */
export interface MetricSample {
  at: string;
  /** histogram_quantile(0.95, honua_serving_request_duration_ms_bucket) */
  p95Ms: number;
  /** honua_request_error_total rate / request rate */
  errorRate: number;
  /** hits / (hits + misses) from honua_cache_hits_total and honua_cache_misses_total; null with no cache lookups (no cache configured) */
  hitRatio: number | null;
  requestsPerSecond: number;
  /** Requests that reached the origin (database/object storage). */
  originRequestsPerSecond: number;
}

export interface MetricsQueryRecord {
  reading: string;
  query: string;
  /** The query that counted the raw samples behind each value (null where the source has none). */
  sampleCountQuery: string | null;
  start: string;
  end: string;
  stepSeconds: number;
  /** `value` is null where the source answered nothing, NaN or an infinity (`raw` keeps what it said). */
  points: { at: string; value: number | null; raw: string | null; samples: number }[];
}

/** Everything behind the last `samples()` answer; kept out of graph state (it can be large). */
export interface MetricsQueryLog {
  source: string;
  at: string;
  queries: MetricsQueryRecord[];
  /** Points of the grid that produced no sample, and why. */
  noData: { at: string; reason: string }[];
}

/** Reads serving metrics. An empty answer is "no data", never healthy. */
export interface MetricsSource {
  samples(from: Date, to: Date, stepMinutes: number): Promise<MetricSample[]>;
  /** Queries, raw values and sample counts behind the last samples() answer, and why points were dropped. */
  lastQueries?(): MetricsQueryLog | null;
  /** Where the metrics come from, for messages ("Prometheus at http://… (job honua)"). */
  describe?(): string;
}

/** The Honua configuration surface (env-style keys, e.g. `Cache__Enabled`). */
export interface ConfigStore {
  read(): Promise<Record<string, string>>;
  /** Applies the `after` value of each change (null removes the key); idempotent for the same key. */
  apply(changes: ConfigChange[], idempotencyKey: string): Promise<void>;
  /** The file diff `changes` would make now, credentials masked; absent for stores without a file. */
  preview?(changes: ConfigChange[]): Promise<string>;
  /**
   * How a new Honua image (the `@image` key, where the config holds one) becomes live and is waited for until its
   * pods are ready; null where nothing would roll it out and wait (a manifest with no rollout configured).
   */
  imageRollout?(): string | null;
}

export interface CacheSpec {
  engine: "redis" | "varnish" | "cloudfront";
  nodeType: string;
  memoryGb: number;
  evictionPolicy: string;
  /** TTL the strategy chose (Varnish VCL, CloudFront cache policy); absent: the adapter's default. */
  ttlSeconds?: number;
}

export interface CacheResource {
  id: string;
  engine: CacheSpec["engine"];
  nodeType: string;
  /** Where Honua reaches it; a reference, never a credential. */
  endpoint: string;
  createdAt: string;
  /** False when an existing cache was adopted: nothing was created, so nothing is offered for deletion. Default true. */
  created?: boolean;
  /** Settings of the cache itself the provision changed (e.g. Redis `maxmemory-policy`), with the value it found. */
  replaced?: { target: string; before: string; after: string }[];
}

export type CacheEngine = CacheSpec["engine"];

/** Creates and deletes cache infrastructure. Calls with the same idempotency key return the first result. */
export interface CacheInfra {
  /** The cache engines this deployment can have (a real deployment's cache section names one; the sandbox has all). */
  readonly engines: readonly CacheEngine[];
  /** What `provision` will do, for the approval card, when it is not "create a new resource" (e.g. adopting one). */
  intent?(spec: CacheSpec): { action: string; creates: boolean };
  provision(spec: CacheSpec, idempotencyKey: string): Promise<CacheResource>;
  /**
   * What a provision under this key created even though it did not finish (e.g. the wait for "available" timed
   * out), so a rollback can offer it for deletion instead of leaving it billed; null when it created nothing.
   */
  provisioned?(idempotencyKey: string): Promise<{ id: string; description: string } | null>;
  deprovision(id: string, idempotencyKey: string): Promise<void>;
  /** Puts one of `CacheResource.replaced` back (a rollback); idempotent per key. */
  restore?(target: string, value: string, idempotencyKey: string): Promise<void>;
}

/** The share of traffic that takes a new path (cache, new store, new backend), in percent. */
export interface TrafficRouter {
  /**
   * The features this router moves, each its own split (the sandbox has one per cache engine: `cache` for Redis,
   * `cache:varnish`, `cache:cloudfront`). A real router moves one, `cache` by default, for whichever engine the
   * deployment has; absent: `["cache"]`.
   */
  features?(): readonly string[];
  share(feature: string): Promise<number>;
  setShare(feature: string, percent: number, idempotencyKey: string): Promise<void>;
  /**
   * What this router created that outlives a rollback to 0% (e.g. a CloudFront staging distribution and its
   * continuous-deployment policy), in the order it must be deleted; empty when it left nothing.
   */
  leftovers?(): Promise<{ id: string; description: string }[]>;
  /** Deletes one of `leftovers()`; idempotent (what is already gone succeeds); refuses what the router did not create. */
  deprovision?(id: string, idempotencyKey: string): Promise<void>;
}

export interface TileRef {
  layerId: string;
  tileMatrixSetId: string;
  z: number;
  requestsPerHour: number;
}

/** Honua's tile-operations admin API (`POST /api/v1/admin/tile-operations/jobs`). */
export interface TileOperations {
  popularTiles(limit: number): Promise<TileRef[]>;
  submitJob(
    job: { operation: "seed" | "warm" | "invalidate" | "purge"; layerId: string; tileMatrixSetId: string; minZoom: number; maxZoom: number; maxTiles: number },
    idempotencyKey: string,
    progress?: (message: string) => void,
  ): Promise<{ jobId: string; tilesProcessed: number }>;
  /**
   * What the job under this key wrote into a cache the run did not create (recorded before writing, so it is known
   * after a crash too): a description for the delete card, or null when it wrote nothing.
   */
  written?(idempotencyKey: string): Promise<{ description: string; deletes: string } | null>;
  /** Deletes exactly what the job under `jobKey` wrote, by exact key; idempotent. */
  discard?(jobKey: string, idempotencyKey: string): Promise<void>;
}

/** What the deployment costs per month now, by component, in USD. */
export interface CostSource {
  monthly(): Promise<Record<string, number>>;
}

/** Everything a workflow may touch on one deployment; built once per deployment by its provider. */
export interface DeploymentAdapters {
  provider: string;
  clock: Clock;
  metrics: MetricsSource;
  config: ConfigStore;
  cache: CacheInfra;
  traffic: TrafficRouter;
  tiles: TileOperations;
  cost: CostSource;
}

export type { MetricsSummary };
