import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type * as AzureSdk from "@azure/storage-blob";
import type { BlobServiceClient, ContainerClient } from "@azure/storage-blob";
import { AgentError } from "../../core/errors.js";
import type { Inspection, ObjectInfo, ObjectStore, SettingState, StorageSettings } from "./types.js";

export interface AzureOptions {
  backend: string;
  account: string;
  /** https://{account}.blob.core.windows.net, or Azurite's http://127.0.0.1:10000/{account}. */
  endpoint: string;
  credential: { connectionString: string } | { accountKey: string };
  accessTier?: "Hot" | "Cool" | "Cold" | "Archive" | undefined;
  multipartThresholdBytes: number;
}

let loaded: typeof AzureSdk | undefined;
/**
 * The SDK, loaded when a backend first builds an Azure client, not with the real storage adapters (about 150 ms that a
 * deployment without Azure never needs; see core/lazy.ts). Synchronously, through its CommonJS build: a store must know
 * its container's URL when it is made, and `store()` and the href lookups built on it are synchronous.
 */
const sdk = (): typeof AzureSdk => (loaded ??= createRequire(import.meta.url)("@azure/storage-blob") as typeof AzureSdk);

export function azureService(o: Pick<AzureOptions, "account" | "endpoint" | "credential">): BlobServiceClient {
  const { BlobServiceClient, StorageSharedKeyCredential } = sdk();
  if ("connectionString" in o.credential) return BlobServiceClient.fromConnectionString(o.credential.connectionString, { retryOptions: { maxTries: 3 } });
  return new BlobServiceClient(o.endpoint, new StorageSharedKeyCredential(o.account, o.credential.accountKey), { retryOptions: { maxTries: 3 } });
}

const code = (e: unknown): string | undefined => (e as { code?: string; details?: { errorCode?: string } }).details?.errorCode ?? (e as { code?: string }).code;
const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number }).statusCode;
const missing = (e: unknown) => statusOf(e) === 404 || ["BlobNotFound", "ContainerNotFound", "ResourceNotFound"].includes(code(e) ?? "");

/** An Azure Blob container: block blobs under their key; Content-MD5 is the store's checksum where it computed one. */
export class AzureBlobStore implements ObjectStore {
  readonly kind = "azure-blob" as const;
  readonly backend: string;
  readonly location: string;
  private readonly client: ContainerClient;

  constructor(service: BlobServiceClient, private readonly o: Pick<AzureOptions, "backend" | "accessTier" | "multipartThresholdBytes">, readonly container: string) {
    this.backend = o.backend;
    this.client = service.getContainerClient(container);
    this.location = this.client.url;
  }

  hrefOf(key: string): string {
    return this.client.getBlockBlobClient(key).url;
  }

  keyOf(href: string): string | null {
    const head = `${this.client.url}/`;
    if (!href.startsWith(head)) return null;
    return href.slice(head.length).split("/").map(decodeURIComponent).join("/");
  }

  async list(prefix: string, cursor: string | null, limit: number): Promise<{ objects: ObjectInfo[]; next: string | null }> {
    const page = (await this.client.listBlobsFlat({ prefix: prefix || undefined }).byPage({ maxPageSize: limit, ...(cursor ? { continuationToken: cursor } : {}) }).next()).value;
    if (!page) return { objects: [], next: null };
    const objects = page.segment.blobItems.map((b: { name: string; properties: { contentLength?: number; contentMD5?: Uint8Array; lastModified?: Date } }): ObjectInfo => ({
      key: b.name,
      size: Number(b.properties.contentLength ?? 0),
      checksum: b.properties.contentMD5?.length ? { algorithm: "md5", hex: Buffer.from(b.properties.contentMD5).toString("hex") } : null,
      lastModified: b.properties.lastModified?.toISOString() ?? null,
    }));
    return { objects, next: page.continuationToken || null };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const p = await this.client.getBlobClient(key).getProperties();
      return {
        key,
        size: Number(p.contentLength ?? 0),
        checksum: p.contentMD5?.length ? { algorithm: "md5", hex: Buffer.from(p.contentMD5).toString("hex") } : null,
        lastModified: p.lastModified?.toISOString() ?? null,
      };
    } catch (e) {
      if (missing(e)) return null;
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    try {
      const r = await this.client.getBlobClient(key).download();
      return r.readableStreamBody as Readable;
    } catch (e) {
      if (missing(e)) throw new AgentError("not-found", `${this.hrefOf(key)} does not exist`);
      throw e;
    }
  }

  async write(key: string, body: Readable, size: number, opts: { contentType?: string | null } = {}): Promise<ObjectInfo> {
    const blob = this.client.getBlockBlobClient(key);
    const headers = opts.contentType ? { blobHTTPHeaders: { blobContentType: opts.contentType } } : {};
    const tier = this.o.accessTier ? { tier: this.o.accessTier } : {};
    // One Put Blob: the service computes Content-MD5 over what it received. Larger blobs go up in blocks (no MD5).
    if (size <= this.o.multipartThresholdBytes) await blob.upload(() => body, size, { ...headers, ...tier });
    else await blob.uploadStream(body, 8 * 1024 * 1024, 4, { ...headers, ...tier });
    const h = await this.head(key);
    if (!h) throw new AgentError("failed", `${this.hrefOf(key)} is not there after the upload`);
    return h;
  }

  async remove(key: string): Promise<void> {
    await this.client.getBlobClient(key).deleteIfExists();
  }
}

function azureSettings(s: StorageSettings, publicAccess: string | null): SettingState[] {
  const account = "an account-level setting (Azure's management API), not reached through the blob endpoint: set it on the storage account";
  return [
    { setting: "versioning", wanted: s.versioning ? "on" : "off", found: null, outcome: "unsupported", note: `blob versioning is ${account}` },
    { setting: "encryption", wanted: s.encryption, found: "always on", outcome: "already", note: "Azure Storage encrypts every blob at rest (Microsoft-managed keys unless the account sets its own)" },
    { setting: "public-access", wanted: "blocked", found: publicAccess, outcome: publicAccess === "blocked" ? "already" : "planned", note: "container created private (no anonymous read)" },
    { setting: "lifecycle", wanted: s.lifecycle ? `after ${s.lifecycle.transitionAfterDays} days to ${s.lifecycle.storageClass}` : "none", found: null, outcome: s.lifecycle ? "unsupported" : "already", note: s.lifecycle ? `lifecycle management is ${account}` : null },
  ];
}

/** Present and private: adopted (the account is the deployment's: it holds the key). Present and public: refused. */
export async function inspectContainer(service: BlobServiceClient, account: string, container: string, s: StorageSettings): Promise<Inspection> {
  const c = service.getContainerClient(container);
  try {
    const p = await c.getProperties();
    const publicAccess = p.blobPublicAccess ? `anonymous ${p.blobPublicAccess} read` : "blocked";
    if (p.blobPublicAccess) {
      return { exists: true, owner: account, refuse: `container ${container} allows ${publicAccess}: rasters are not put into a container that may be public. Make it private (or choose another name) first`, creates: false, action: "refuse", settings: azureSettings(s, publicAccess) };
    }
    return { exists: true, owner: account, refuse: null, creates: false, action: `Adopt existing container ${container} in storage account ${account}`, settings: azureSettings(s, publicAccess) };
  } catch (e) {
    if (!missing(e)) throw e;
    return { exists: false, owner: account, refuse: null, creates: true, action: `Create private container ${container} in storage account ${account}`, settings: azureSettings(s, null) };
  }
}

export async function createContainer(service: BlobServiceClient, container: string, s: StorageSettings): Promise<SettingState[]> {
  await service.getContainerClient(container).createIfNotExists();
  return azureSettings(s, "blocked").map((x) => (x.setting === "public-access" ? { ...x, outcome: "set" as const } : x));
}

export async function deleteContainer(service: BlobServiceClient, container: string): Promise<void> {
  await service.getContainerClient(container).deleteIfExists();
}
