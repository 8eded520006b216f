import { rm } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { AzureBlobStore, azureService, createContainer, deleteContainer, inspectContainer } from "./azure.js";
import { PostgresStacCatalog } from "./catalog.js";
import { FilesystemStore, createDirectory, inspectDirectory } from "./filesystem.js";
import { HttpHonuaReader, measuredProbe } from "./probe.js";
import { S3Store, createBucket, deleteBucket, inspectBucket, s3Client, type S3StoreOptions } from "./s3.js";
import type { BackendSection, StorageSection } from "./section.js";
import {
  BackendTarget, CopyRecord, Provisioned, parseAssetTarget, type BackendInfo, type CopyLedger, type Inspection, type ObjectStore,
  type StacCatalog, type StorageCapability, type StorageSettings,
} from "./types.js";

import { priceOfBackend } from "./prices.js";

export { STORAGE_PRICES, STORAGE_PRICE_SOURCE, priceOfBackend } from "./prices.js";

/** An `env:VAR` reference's value, read when the adapter is built; a missing variable is named, its value never. */
export function resolveRef(ref: string, env: NodeJS.ProcessEnv, what: string): string {
  const name = ref.slice("env:".length);
  const v = env[name];
  if (v === undefined || v === "") throw new AgentError("unavailable", `${what} names environment variable ${name}, which is not set`);
  return v;
}

/** What Honua's config says for a backend (HONUA.md `FileStorage__*`); credentials stay references. */
export function honuaKeysOf(b: BackendSection, container: string): Record<string, string> {
  switch (b.kind) {
    case "filesystem":
      return { FileStorage__Provider: "Local", FileStorage__LocalStorage__BasePath: container };
    case "s3":
      return {
        FileStorage__Provider: "AwsS3", FileStorage__AwsS3__BucketName: container, FileStorage__AwsS3__Region: b.region,
        ...(b.endpoint ? { FileStorage__AwsS3__ServiceUrl: b.endpoint } : {}),
        ...(b.forcePathStyle ?? b.endpoint ? { FileStorage__AwsS3__ForcePathStyle: "true" } : {}),
        ...(b.prefix ? { FileStorage__AwsS3__KeyPrefix: b.prefix } : {}),
      };
    case "gcs":
      return {
        FileStorage__Provider: "AwsS3", FileStorage__AwsS3__BucketName: container, FileStorage__AwsS3__Region: b.region,
        FileStorage__AwsS3__ServiceUrl: b.endpoint, FileStorage__AwsS3__ForcePathStyle: "true", ...(b.prefix ? { FileStorage__AwsS3__KeyPrefix: b.prefix } : {}),
      };
    case "azure-blob":
      return {
        FileStorage__Provider: "AzureBlob", FileStorage__AzureBlob__ContainerName: container,
        FileStorage__AzureBlob__ConnectionString: "connectionString" in b.credentials ? b.credentials.connectionString : `env:HONUA_AZURE_STORAGE_CONNECTION_STRING`,
      };
  }
}

export function backendInfo(b: BackendSection): BackendInfo {
  const notes: string[] = [];
  if (b.kind === "s3") notes.push(b.credentials ? `Honua needs the same AWS credentials in its environment (${b.credentials.accessKeyId.slice(4)}, ${b.credentials.secretAccessKey.slice(4)})` : "Honua reads AWS credentials through the SDK chain of its own environment (instance role, AWS_* variables)");
  if (b.kind === "gcs") notes.push(`GCS through its S3-compatible XML API: Honua needs the HMAC key as AWS credentials in its environment (AWS_ACCESS_KEY_ID from ${b.hmac.accessId.slice(4)}, AWS_SECRET_ACCESS_KEY from ${b.hmac.secret.slice(4)})`);
  if (b.kind === "azure-blob" && !("connectionString" in b.credentials)) notes.push("Honua takes a connection string: set HONUA_AZURE_STORAGE_CONNECTION_STRING in its environment");
  const container = b.kind === "filesystem" ? resolve(b.path) : b.kind === "azure-blob" ? (b.container ?? null) : (b.bucket ?? null);
  return {
    name: b.name,
    kind: b.kind,
    container,
    region: b.kind === "filesystem" ? null : (b.region ?? null),
    prefix: b.prefix ?? "",
    provider: b.kind === "filesystem" ? "Local" : b.kind === "azure-blob" ? "AzureBlob" : "AwsS3",
    honuaKeys: (c) => honuaKeysOf(b, c),
    notes,
    monthlyUsdPerGb: priceOfBackend(b.kind, b.kind === "azure-blob" ? b.accessTier : b.kind === "filesystem" ? undefined : b.storageClass, b.monthlyUsdPerGb),
  };
}

const CreateIntent = z.object({ target: BackendTarget });
const OPS = { provision: "storage-provision", intent: "storage-create-intent", copy: "storage-copy", deleted: "storage-deprovision" } as const;

/** The storage capability of a `local`/`aws` deployment, from its `storage:` section. */
export class RealStorage implements StorageCapability {
  readonly backends: BackendInfo[];
  readonly catalog: StacCatalog;
  readonly ledger: CopyLedger;
  readonly honua?: HttpHonuaReader;
  private readonly stores = new Map<string, ObjectStore>();
  private readonly clients = new Map<string, unknown>();

  constructor(private readonly section: StorageSection, private readonly log: OpLog, private readonly deployment: string, private readonly env: NodeJS.ProcessEnv) {
    this.backends = section.backends.map(backendInfo);
    this.catalog = section.catalog
      ? new PostgresStacCatalog(section.catalog.url.startsWith("env:") ? resolveRef(section.catalog.url, env, "storage.catalog.url") : section.catalog.url, section.catalog.table)
      : noCatalog(deployment);
    this.ledger = {
      record: async (copyKey, r) => this.log.put(deployment, OPS.copy, `${copyKey} ${r.source}`, r),
      written: async (copyKey) => this.log.all(deployment, OPS.copy, CopyRecord).filter((x) => x.key.startsWith(`${copyKey} `)).map((x) => x.result),
    };
    if (section.honuaUrl) this.honua = new HttpHonuaReader(section.honuaUrl);
  }

  private section_(name: string): BackendSection {
    const b = this.section.backends.find((x) => x.name === name);
    if (!b) throw new AgentError("bad-input", `deployment ${this.deployment} has no storage backend named ${name}; it has ${this.section.backends.map((x) => x.name).join(", ")}`);
    return b;
  }

  private s3Options(b: Extract<BackendSection, { kind: "s3" | "gcs" }>, bucket: string): S3StoreOptions {
    const what = `storage backend ${b.name}`;
    const credentials = b.kind === "gcs"
      ? { accessKeyId: resolveRef(b.hmac.accessId, this.env, `${what} hmac.accessId`), secretAccessKey: resolveRef(b.hmac.secret, this.env, `${what} hmac.secret`) }
      : b.credentials
        ? { accessKeyId: resolveRef(b.credentials.accessKeyId, this.env, `${what} credentials.accessKeyId`), secretAccessKey: resolveRef(b.credentials.secretAccessKey, this.env, `${what} credentials.secretAccessKey`), ...(b.credentials.sessionToken ? { sessionToken: resolveRef(b.credentials.sessionToken, this.env, `${what} credentials.sessionToken`) } : {}) }
        : undefined;
    return {
      backend: b.name, kind: b.kind, bucket, region: b.region, endpoint: b.endpoint, forcePathStyle: b.kind === "gcs" ? true : b.forcePathStyle, credentials,
      checksums: b.kind === "gcs" ? "when-required" : (b.checksums ?? (b.endpoint ? "when-required" : "when-supported")),
      multipartThresholdBytes: b.multipartThresholdMb * 1024 * 1024, storageClass: b.storageClass,
      ...(b.kind === "s3" ? { encryption: b.encryption, kmsKeyId: b.kmsKeyId } : {}), expectedOwner: b.expectedOwner,
    };
  }

  private s3(b: Extract<BackendSection, { kind: "s3" | "gcs" }>) {
    let c = this.clients.get(b.name) as ReturnType<typeof s3Client> | undefined;
    if (!c) this.clients.set(b.name, (c = s3Client(this.s3Options(b, b.bucket ?? "-"))));
    return c;
  }

  private azure(b: Extract<BackendSection, { kind: "azure-blob" }>) {
    let c = this.clients.get(b.name) as ReturnType<typeof azureService> | undefined;
    if (!c) {
      const credential = "connectionString" in b.credentials
        ? { connectionString: resolveRef(b.credentials.connectionString, this.env, `storage backend ${b.name} credentials.connectionString`) }
        : { accountKey: resolveRef(b.credentials.accountKey, this.env, `storage backend ${b.name} credentials.accountKey`) };
      this.clients.set(b.name, (c = azureService({ account: b.account, endpoint: this.azureEndpoint(b), credential })));
    }
    return c;
  }

  private azureEndpoint(b: Extract<BackendSection, { kind: "azure-blob" }>): string {
    return b.endpoint ?? `https://${b.account}.blob.core.windows.net`;
  }

  store(target: BackendTarget): ObjectStore {
    const id = `${target.backend}/${target.container}`;
    const hit = this.stores.get(id);
    if (hit) return hit;
    const b = this.section_(target.backend);
    let s: ObjectStore;
    switch (b.kind) {
      case "filesystem":
        s = new FilesystemStore(b.name, target.container);
        break;
      case "s3":
      case "gcs":
        s = new S3Store(this.s3(b), this.s3Options(b, target.container));
        break;
      case "azure-blob":
        s = new AzureBlobStore(this.azure(b), { backend: b.name, accessTier: b.accessTier, multipartThresholdBytes: b.multipartThresholdMb * 1024 * 1024 }, target.container);
        break;
    }
    this.stores.set(id, s);
    return s;
  }

  resolve(href: string): { store: ObjectStore; key: string } | null {
    for (const s of this.stores.values()) {
      const key = s.keyOf(href);
      if (key !== null) return { store: s, key };
    }
    for (const b of this.section.backends) {
      const info = backendInfo(b);
      let container: string | null = null;
      if (b.kind === "filesystem" && (href.startsWith("file:") || href.startsWith("/"))) container = new FilesystemStore(b.name, b.path).keyOf(href) !== null ? resolve(b.path) : "/";
      else if ((b.kind === "s3" && href.startsWith("s3://")) || (b.kind === "gcs" && href.startsWith("gs://"))) container = href.slice(5).split("/")[0] ?? null;
      else if (b.kind === "azure-blob") {
        const base = `${this.azureEndpoint(b)}/`;
        if (href.startsWith(base)) container = href.slice(base.length).split("/")[0] ?? null;
      }
      if (!container) continue;
      const store = this.store({ backend: b.name, kind: b.kind, container, region: info.region, prefix: info.prefix });
      const key = store.keyOf(href);
      if (key !== null) return { store, key };
    }
    return null;
  }

  async inspect(target: BackendTarget, settings: StorageSettings): Promise<Inspection> {
    const b = this.section_(target.backend);
    switch (b.kind) {
      case "filesystem":
        return inspectDirectory(target.container, settings);
      case "s3":
      case "gcs":
        return inspectBucket(this.s3(b), { bucket: target.container, region: b.region, endpoint: b.kind === "gcs" ? b.endpoint : b.endpoint, expectedOwner: b.expectedOwner, kind: b.kind }, settings);
      case "azure-blob":
        return inspectContainer(this.azure(b), b.account, target.container, settings);
    }
  }

  async provision(target: BackendTarget, settings: StorageSettings, key: string): Promise<Provisioned> {
    return this.log.once(this.deployment, OPS.provision, key, Provisioned, async () => {
      const b = this.section_(target.backend);
      const store = this.store(target);
      const intended = this.log.get(this.deployment, OPS.intent, key, CreateIntent);
      const found = await this.inspect(target, settings);
      // A replay after a crash finds the bucket this key began creating: it is still this run's, not adopted.
      if (!intended && found.refuse) throw new AgentError("conflict", found.refuse);
      if (!intended && !found.creates) return { id: `${target.backend}/${target.container}`, target, location: store.location, created: false, owner: found.owner, settings: found.settings };
      this.log.put(this.deployment, OPS.intent, key, { target });
      let applied;
      switch (b.kind) {
        case "filesystem":
          await createDirectory(target.container);
          applied = found.settings.map((x) => (x.outcome === "planned" ? { ...x, outcome: "set" as const } : x));
          break;
        case "s3":
        case "gcs":
          applied = await createBucket(this.s3(b), { bucket: target.container, region: b.region, endpoint: b.endpoint, kind: b.kind, kmsKeyId: b.kind === "s3" ? b.kmsKeyId : undefined }, settings);
          break;
        case "azure-blob":
          applied = await createContainer(this.azure(b), target.container, settings);
          break;
      }
      return { id: `${target.backend}/${target.container}`, target, location: store.location, created: true, owner: found.owner, settings: applied };
    });
  }

  async provisioned(key: string): Promise<{ id: string; description: string } | null> {
    const done = this.log.get(this.deployment, OPS.provision, key, Provisioned);
    if (done) return done.created ? { id: done.id, description: `${done.target.kind} ${done.location}` } : null;
    const intent = this.log.get(this.deployment, OPS.intent, key, CreateIntent);
    if (!intent) return null;
    return { id: `${intent.target.backend}/${intent.target.container}`, description: `${intent.target.kind} ${this.store(intent.target).location}` };
  }

  /** The targets honua-agent created on this deployment (finished or begun), by id. */
  private created(): Map<string, BackendTarget> {
    const out = new Map<string, BackendTarget>();
    for (const r of this.log.all(this.deployment, OPS.intent, CreateIntent)) out.set(`${r.result.target.backend}/${r.result.target.container}`, r.result.target);
    return out;
  }

  async deprovision(id: string, key: string): Promise<void> {
    await this.log.once(this.deployment, OPS.deleted, key, z.string(), async () => {
      if (id.startsWith("copy:")) {
        for (const r of await this.ledger.written(id.slice(5))) {
          const at = this.resolve(r.dest);
          if (!at) throw new AgentError("failed", `cannot reach ${r.dest} to delete it; delete it by hand`);
          await at.store.remove(at.key);
        }
        return id;
      }
      const target = this.created().get(id);
      if (!target) throw new AgentError("forbidden", `${id} was not created by honua-agent on ${this.deployment}: it is not deleted`);
      const b = this.section_(target.backend);
      if (b.kind === "filesystem") await rm(target.container, { recursive: true, force: true });
      else if (b.kind === "azure-blob") await deleteContainer(this.azure(b), target.container);
      else await deleteBucket(this.s3(b), target.container);
      return id;
    });
  }

  async restore(target: string, value: string, key: string): Promise<void> {
    await this.restoreAll([{ target, value }], key);
  }

  async restoreAll(items: readonly { target: string; value: string }[], key: string): Promise<void> {
    const values = items.map((i) => {
      const t = parseAssetTarget(i.target);
      if (!t) throw new AgentError("failed", `storage cannot restore ${i.target}`);
      return { ...t, href: i.value };
    });
    await this.catalog.restore(values, key);
  }

  async access(): Promise<Record<string, number> | null> {
    return null;
  }

  probe = measuredProbe;
}

function noCatalog(deployment: string): StacCatalog {
  const no = async (): Promise<never> => {
    throw new AgentError("unavailable", `deployment ${deployment} has no storage.catalog section in honua-agent.yaml: the STAC items whose hrefs point at the rasters are needed (catalog: { url: env:HONUA_DATABASE_URL })`);
  };
  return { describe: () => "no catalog configured", assets: no, rewrite: no, restore: no };
}
