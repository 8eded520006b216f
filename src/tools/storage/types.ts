import type { Readable } from "node:stream";
import { z } from "zod";

/** The traffic feature a new storage backend's routing moves (its own split on a router that has one). */
export const STORAGE_ROUTING = "storage-routing";

export const BackendKind = z.enum(["filesystem", "s3", "azure-blob", "gcs"]);
export type BackendKind = z.infer<typeof BackendKind>;

/** Honua's `FileStorage__Provider` values: GCS is `AwsS3` with a ServiceUrl. */
export type HonuaProvider = "Local" | "AwsS3" | "AzureBlob";

/** A checksum of an object's bytes (hex). */
export const Checksum = z.object({ algorithm: z.enum(["sha256", "md5"]), hex: z.string() });
export type Checksum = z.infer<typeof Checksum>;

export interface ObjectInfo {
  key: string;
  size: number;
  /** The store's own checksum of what it holds (S3 ETag of a single-part upload, x-amz-checksum-sha256, Azure Content-MD5); null where it keeps none. */
  checksum: Checksum | null;
  lastModified: string | null;
}

/** One bucket, container or directory of a backend: the same operations on every kind. */
export interface ObjectStore {
  readonly backend: string;
  readonly kind: BackendKind;
  /** The bucket, container or directory. */
  readonly container: string;
  /** For messages: s3://bucket/prefix, https://account.blob.core.windows.net/container, file:///mnt/rasters. */
  readonly location: string;
  /** The href the catalog holds for `key`. */
  hrefOf(key: string): string;
  /** The key an href names in this store, or null when it is not this store's. */
  keyOf(href: string): string | null;
  /** Keys under `prefix`, at most `limit` a page; `cursor` is the `next` of the page before (null: the first). */
  list(prefix: string, cursor: string | null, limit: number): Promise<{ objects: ObjectInfo[]; next: string | null }>;
  head(key: string): Promise<ObjectInfo | null>;
  read(key: string): Promise<Readable>;
  /** Writes exactly `size` bytes from `body` (overwriting); returns what the store says it now holds. */
  write(key: string, body: Readable, size: number, o?: { contentType?: string | null }): Promise<ObjectInfo>;
  /** Deletes `key`; a key that is already gone succeeds. */
  remove(key: string): Promise<void>;
}

/** Where a backend is pointed: its name in the deployment's storage section and the bucket/container/directory. */
export const BackendTarget = z.object({
  backend: z.string(),
  kind: BackendKind,
  container: z.string(),
  region: z.string().nullable(),
  prefix: z.string().default(""),
});
export type BackendTarget = z.infer<typeof BackendTarget>;

/** What a new bucket or container is set up with. */
export const StorageSettings = z.object({
  versioning: z.boolean(),
  /** "AES256" (SSE-S3), "aws:kms", or the store's own always-on encryption. */
  encryption: z.string(),
  blockPublicAccess: z.boolean(),
  /** Move objects to a colder class after some days, expire old versions; null: no lifecycle rule. */
  lifecycle: z.object({ transitionAfterDays: z.number().int().positive().nullable(), storageClass: z.string().nullable(), noncurrentExpireDays: z.number().int().positive().nullable() }).nullable(),
});
export type StorageSettings = z.infer<typeof StorageSettings>;

/** One setting of a bucket, as found and as left; `unsupported` says the store has no such setting (named in `note`). */
export const SettingState = z.object({
  setting: z.enum(["versioning", "encryption", "public-access", "lifecycle"]),
  wanted: z.string(),
  found: z.string().nullable(),
  outcome: z.enum(["set", "already", "kept", "unsupported", "planned"]),
  note: z.string().nullable(),
});
export type SettingState = z.infer<typeof SettingState>;

/** What provisioning `target` would do now, read-only: create, adopt, or refuse (someone else's bucket). */
export const Inspection = z.object({
  exists: z.boolean(),
  /** The owner the store reports (account id, canonical id, storage account); null where it says none. */
  owner: z.string().nullable(),
  refuse: z.string().nullable(),
  creates: z.boolean(),
  action: z.string(),
  settings: z.array(SettingState),
});
export type Inspection = z.infer<typeof Inspection>;

export const Provisioned = z.object({
  /** What deprovision takes: `backend/container`. */
  id: z.string(),
  target: BackendTarget,
  location: z.string(),
  /** False when an existing bucket of the right owner was adopted: nothing to delete. */
  created: z.boolean(),
  owner: z.string().nullable(),
  settings: z.array(SettingState),
});
export type Provisioned = z.infer<typeof Provisioned>;

/** A configured backend: how it is reached and what Honua's config says for it. */
export interface BackendInfo {
  name: string;
  kind: BackendKind;
  /** The bucket/container/directory it points at unless a request names another. */
  container: string | null;
  region: string | null;
  prefix: string;
  provider: HonuaProvider;
  /** Honua's `FileStorage__*` keys for this backend at `container`; values are references, never secrets. */
  honuaKeys(container: string): Record<string, string>;
  /** What Honua needs besides its keys (credentials in its own environment), for the plan. */
  notes: string[];
  /** USD per GB-month of what it stores; null where unknown. */
  monthlyUsdPerGb: number | null;
  /** A bucket may be made in any region the request names (the sandbox); else only in the backend's own. */
  anyRegion?: boolean;
}

/** One asset of a STAC item in the catalog. */
export const CatalogAsset = z.object({
  collection: z.string(),
  item: z.string(),
  asset: z.string(),
  href: z.string(),
  datetime: z.string().nullable(),
  /** `properties.region` where the item says it, else from its bbox (eu, us, ...). */
  region: z.string().nullable(),
  mediaType: z.string().nullable(),
});
export type CatalogAsset = z.infer<typeof CatalogAsset>;

/** `stac:collection/item/asset` (each part URI-encoded): how an asset href is named in the journal. */
export const assetTarget = (a: { collection: string; item: string; asset: string }): string =>
  `stac:${[a.collection, a.item, a.asset].map(encodeURIComponent).join("/")}`;
export function parseAssetTarget(t: string): { collection: string; item: string; asset: string } | null {
  const m = /^stac:([^/]+)\/([^/]+)\/([^/]+)$/.exec(t);
  return m ? { collection: decodeURIComponent(m[1]!), item: decodeURIComponent(m[2]!), asset: decodeURIComponent(m[3]!) } : null;
}

export interface HrefChange {
  collection: string;
  item: string;
  asset: string;
  from: string;
  to: string;
}

/** Honua's STAC catalog: items with asset hrefs. Rewrites are one transaction each. */
export interface StacCatalog {
  describe(): string;
  assets(): Promise<CatalogAsset[]>;
  /**
   * Sets every `to` in one transaction, each only where the asset's href is still `from` (or already `to`: a replay);
   * any other value refuses the whole change, naming it. Returns how many hrefs changed.
   */
  rewrite(changes: readonly HrefChange[], idempotencyKey: string): Promise<number>;
  /** Puts hrefs back to exactly these values, in one transaction (a rollback). */
  restore(values: readonly { collection: string; item: string; asset: string; href: string }[], idempotencyKey: string): Promise<number>;
}

/** What a copy under one key wrote and verified: the record that keeps a resumed copy from writing an object twice. */
export const CopyRecord = z.object({
  source: z.string(),
  dest: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string(),
  /** How the destination was checked: the store's checksum header, or a SHA-256 read back. */
  verifiedBy: z.string(),
});
export type CopyRecord = z.infer<typeof CopyRecord>;

export interface CopyLedger {
  record(copyKey: string, r: CopyRecord): Promise<void>;
  written(copyKey: string): Promise<CopyRecord[]>;
}

/** Timed reads of a few objects on one backend: the storage signal's data. */
export interface ProbeReading {
  backend: string;
  reads: number;
  errors: number;
  p95Ms: number | null;
  /** Bytes per second over the reads that succeeded. */
  throughputBps: number | null;
}

/** Honua's own read paths: its STAC API and its tiles, to check it serves the new hrefs. */
export interface HonuaReader {
  describe(): string;
  /** The item as Honua's STAC API serves it. */
  item(collection: string, item: string): Promise<{ status: number; body: unknown }>;
  /** One tile of the collection's layer through Honua: the status and the byte count. */
  tile(collection: string, z: number, x: number, y: number): Promise<{ status: number; bytes: number }>;
}

/** The `storage` capability: backends, the catalog that points at them, and the record of what copies wrote. */
export interface StorageCapability {
  readonly backends: readonly BackendInfo[];
  store(target: BackendTarget): ObjectStore;
  /** The store and key an href names, among the configured backends; null when none holds it. */
  resolve(href: string): { store: ObjectStore; key: string } | null;
  inspect(target: BackendTarget, settings: StorageSettings): Promise<Inspection>;
  /** Creates the bucket/container/directory with `settings`, or adopts one of the right owner; idempotent per key. */
  provision(target: BackendTarget, settings: StorageSettings, idempotencyKey: string): Promise<Provisioned>;
  /** What a provision under this key created even if it did not return. */
  provisioned(idempotencyKey: string): Promise<{ id: string; description: string } | null>;
  /** Deletes a created bucket (`backend/container`, with what is in it) or the objects a copy wrote (`copy:<key>`); refuses what honua-agent did not create. */
  deprovision(id: string, idempotencyKey: string): Promise<void>;
  /** A rollback puts one asset href (target `stac:...`) back. */
  restore(target: string, value: string, idempotencyKey: string): Promise<void>;
  /** A rollback puts many back at once: one catalog transaction. */
  restoreAll(items: readonly { target: string; value: string }[], idempotencyKey: string): Promise<void>;
  catalog: StacCatalog;
  ledger: CopyLedger;
  /** Honua's STAC and tile paths; absent without `storage.honuaUrl`. */
  honua?: HonuaReader;
  /** Requests per day by collection over the last week, for access-frequency rules; null where nothing records them. */
  access(): Promise<Record<string, number> | null>;
  /** Timed reads of `keys`; the sandbox simulates them. */
  probe(store: ObjectStore, keys: readonly string[]): Promise<ProbeReading>;
}

declare module "../types.js" {
  interface DeploymentAdapters {
    storage?: StorageCapability;
  }
}
