import { Readable } from "node:stream";
import type { BucketLocationConstraint, HeadObjectCommandOutput, S3Client } from "@aws-sdk/client-s3";
import { AgentError } from "../../core/errors.js";
import type { Checksum, Inspection, ObjectInfo, ObjectStore, SettingState, StorageSettings } from "./types.js";
import { lazyModule } from "../../core/lazy.js";

/** The SDK, imported when a backend first calls S3 (see core/lazy.ts). */
const sdk = lazyModule(() => import("@aws-sdk/client-s3"));
/** A client, or one being built once the SDK is loaded (`s3Client`). */
export type S3ClientLike = S3Client | Promise<S3Client>;

export interface S3StoreOptions {
  backend: string;
  kind: "s3" | "gcs";
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  checksums: "when-supported" | "when-required";
  multipartThresholdBytes: number;
  storageClass?: string | undefined;
  encryption?: "AES256" | "aws:kms";
  kmsKeyId?: string | undefined;
  expectedOwner?: string | undefined;
}

/** One S3 client per backend (connection reuse); built from resolved credentials, never logged. */
export async function s3Client(o: Omit<S3StoreOptions, "bucket" | "backend" | "kind" | "multipartThresholdBytes">): Promise<S3Client> {
  const { S3Client } = await sdk();
  return new S3Client({
    region: o.region,
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    forcePathStyle: o.forcePathStyle ?? Boolean(o.endpoint),
    ...(o.credentials ? { credentials: o.credentials } : {}),
    requestChecksumCalculation: o.checksums === "when-supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
    responseChecksumValidation: o.checksums === "when-supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
    maxAttempts: 3,
  });
}

const status = (e: unknown): number | undefined => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const named = (e: unknown, ...names: string[]) => e instanceof Error && names.includes(e.name);
const notImplemented = (e: unknown) => status(e) === 501 || named(e, "NotImplemented");
const notFound = (e: unknown) => status(e) === 404 || named(e, "NotFound", "NoSuchKey", "NoSuchBucket");

/** The store's own checksum of an object: x-amz-checksum-sha256 where it keeps one, else a single-part ETag (its MD5). */
function checksumOf(h: Pick<HeadObjectCommandOutput, "ChecksumSHA256" | "ETag" | "ServerSideEncryption" | "ChecksumType">): Checksum | null {
  if (h.ChecksumSHA256 && h.ChecksumType !== "COMPOSITE" && !h.ChecksumSHA256.includes("-")) return { algorithm: "sha256", hex: Buffer.from(h.ChecksumSHA256, "base64").toString("hex") };
  // A multipart ETag ("...-N") and one under SSE-KMS are not the MD5 of the bytes.
  const etag = h.ETag?.replace(/"/g, "");
  if (etag && /^[0-9a-f]{32}$/i.test(etag) && h.ServerSideEncryption !== "aws:kms") return { algorithm: "md5", hex: etag.toLowerCase() };
  return null;
}

/** Reads exactly `n` bytes (or what is left) from an async iterator of chunks, keeping the remainder. */
async function* parts(body: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let have = 0;
  for await (const chunk of body) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    pending.push(b);
    have += b.length;
    while (have >= size) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, size);
      pending = [all.subarray(size)];
      have -= size;
    }
  }
  if (have > 0) yield Buffer.concat(pending);
}

/** An S3 bucket (AWS, or any S3-compatible store at `endpoint`, GCS's interoperability API included). */
export class S3Store implements ObjectStore {
  readonly kind: "s3" | "gcs";
  readonly backend: string;
  readonly container: string;
  readonly location: string;
  private readonly scheme: string;

  constructor(readonly client: S3ClientLike, private readonly o: S3StoreOptions) {
    this.kind = o.kind;
    this.backend = o.backend;
    this.container = o.bucket;
    this.scheme = o.kind === "gcs" ? "gs" : "s3";
    this.location = `${this.scheme}://${o.bucket}${o.endpoint && o.kind === "s3" ? ` at ${o.endpoint}` : ""}`;
  }

  hrefOf(key: string): string {
    return `${this.scheme}://${this.container}/${key}`;
  }

  keyOf(href: string): string | null {
    const head = `${this.scheme}://${this.container}/`;
    return href.startsWith(head) ? href.slice(head.length) : null;
  }

  async list(prefix: string, cursor: string | null, limit: number): Promise<{ objects: ObjectInfo[]; next: string | null }> {
    const { ListObjectsV2Command } = await sdk();
    const r = await (await this.client).send(new ListObjectsV2Command({ Bucket: this.container, Prefix: prefix || undefined, MaxKeys: limit, ...(cursor ? { ContinuationToken: cursor } : {}) }));
    const objects = (r.Contents ?? []).map((c): ObjectInfo => ({ key: c.Key!, size: Number(c.Size ?? 0), checksum: checksumOf({ ETag: c.ETag }), lastModified: c.LastModified?.toISOString() ?? null }));
    return { objects, next: r.IsTruncated ? (r.NextContinuationToken ?? null) : null };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const { HeadObjectCommand } = await sdk();
    try {
      const h = await (await this.client).send(new HeadObjectCommand({ Bucket: this.container, Key: key, ChecksumMode: "ENABLED" }));
      return { key, size: Number(h.ContentLength ?? 0), checksum: checksumOf(h), lastModified: h.LastModified?.toISOString() ?? null };
    } catch (e) {
      if (notFound(e)) return null;
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    const { GetObjectCommand } = await sdk();
    try {
      const r = await (await this.client).send(new GetObjectCommand({ Bucket: this.container, Key: key }));
      return r.Body as Readable;
    } catch (e) {
      if (notFound(e)) throw new AgentError("not-found", `${this.hrefOf(key)} does not exist`);
      throw e;
    }
  }

  private sse() {
    return this.o.kind === "s3" && !this.o.endpoint && this.o.encryption
      ? { ServerSideEncryption: this.o.encryption, ...(this.o.encryption === "aws:kms" && this.o.kmsKeyId ? { SSEKMSKeyId: this.o.kmsKeyId } : {}) }
      : {};
  }

  async write(key: string, body: Readable, size: number, opts: { contentType?: string | null } = {}): Promise<ObjectInfo> {
    const { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } = await sdk();
    const common = { Bucket: this.container, Key: key, ...(opts.contentType ? { ContentType: opts.contentType } : {}), ...(this.o.storageClass ? { StorageClass: this.o.storageClass as never } : {}), ...this.sse() };
    if (size <= this.o.multipartThresholdBytes) {
      // The store checksums what it received: SHA-256 where flexible checksums are on, its MD5 ETag otherwise.
      await (await this.client).send(new PutObjectCommand({ ...common, Body: body, ContentLength: size, ...(this.o.checksums === "when-supported" ? { ChecksumAlgorithm: "SHA256" as const } : {}) }));
    } else {
      const partSize = Math.max(8 * 1024 * 1024, Math.ceil(size / 9_000));
      const { UploadId } = await (await this.client).send(new CreateMultipartUploadCommand(common));
      try {
        const done: { ETag: string; PartNumber: number }[] = [];
        let n = 0;
        for await (const part of parts(body, partSize)) {
          n++;
          const r = await (await this.client).send(new UploadPartCommand({ Bucket: this.container, Key: key, UploadId, PartNumber: n, Body: part, ContentLength: part.length }));
          done.push({ ETag: r.ETag!, PartNumber: n });
        }
        await (await this.client).send(new CompleteMultipartUploadCommand({ Bucket: this.container, Key: key, UploadId, MultipartUpload: { Parts: done } }));
      } catch (e) {
        await (await this.client).send(new AbortMultipartUploadCommand({ Bucket: this.container, Key: key, UploadId })).catch(() => undefined);
        throw e;
      }
    }
    const h = await this.head(key);
    if (!h) throw new AgentError("failed", `${this.hrefOf(key)} is not there after the upload`);
    return h;
  }

  async remove(key: string): Promise<void> {
    const { DeleteObjectCommand } = await sdk();
    await (await this.client).send(new DeleteObjectCommand({ Bucket: this.container, Key: key }));
  }
}

/** The owner the store reports for `bucket` (ACL owner, else the caller when the bucket is among its own), and the caller's id. */
async function owners(clientLike: S3ClientLike, bucket: string): Promise<{ owner: string | null; me: string | null }> {
  const client = await clientLike;
  const { GetBucketAclCommand, ListBucketsCommand } = await sdk();
  let me: string | null = null;
  let listed = false;
  try {
    const l = await client.send(new ListBucketsCommand({}));
    me = l.Owner?.ID != null ? String(l.Owner.ID) : null;
    listed = (l.Buckets ?? []).some((b) => b.Name === bucket);
  } catch (e) {
    if (!named(e, "AccessDenied") && status(e) !== 403) throw e;
  }
  try {
    const acl = await client.send(new GetBucketAclCommand({ Bucket: bucket }));
    if (acl.Owner?.ID != null) return { owner: String(acl.Owner.ID), me };
  } catch (e) {
    if (!notImplemented(e) && !named(e, "AccessDenied") && status(e) !== 403) throw e;
  }
  // ListBuckets lists the caller's own buckets only: one listed there is the caller's.
  return { owner: listed ? me : null, me };
}

async function readSetting<T>(f: () => Promise<T>): Promise<T | "unsupported" | "none"> {
  try {
    return await f();
  } catch (e) {
    if (notImplemented(e)) return "unsupported";
    if (named(e, "ServerSideEncryptionConfigurationNotFoundError", "NoSuchPublicAccessBlockConfiguration", "NoSuchLifecycleConfiguration") || status(e) === 404) return "none";
    throw e;
  }
}

const lifecycleText = (s: StorageSettings) =>
  s.lifecycle ? [s.lifecycle.transitionAfterDays ? `to ${s.lifecycle.storageClass} after ${s.lifecycle.transitionAfterDays} days` : null, s.lifecycle.noncurrentExpireDays ? `old versions expire after ${s.lifecycle.noncurrentExpireDays} days` : null].filter(Boolean).join("; ") : "none";

/** Each setting of an existing bucket as the store reports it. */
async function foundSettings(clientLike: S3ClientLike, bucket: string, s: StorageSettings, where: string): Promise<SettingState[]> {
  const client = await clientLike;
  const { GetBucketEncryptionCommand, GetBucketLifecycleConfigurationCommand, GetBucketVersioningCommand, GetPublicAccessBlockCommand } = await sdk();
  const unsupported = (setting: SettingState["setting"], wanted: string, op: string): SettingState => ({ setting, wanted, found: null, outcome: "unsupported", note: `${where} does not implement ${op}` });
  const v = await readSetting(() => client.send(new GetBucketVersioningCommand({ Bucket: bucket })));
  const enc = await readSetting(() => client.send(new GetBucketEncryptionCommand({ Bucket: bucket })));
  const pab = await readSetting(() => client.send(new GetPublicAccessBlockCommand({ Bucket: bucket })));
  const lc = await readSetting(() => client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket })));
  const vWanted = s.versioning ? "Enabled" : "off";
  const out: SettingState[] = [];
  out.push(v === "unsupported" ? unsupported("versioning", vWanted, "versioning") : { setting: "versioning", wanted: vWanted, found: v === "none" ? "off" : (v.Status ?? "off"), outcome: "planned", note: null });
  out.push(enc === "unsupported" ? unsupported("encryption", s.encryption, "bucket encryption")
    : { setting: "encryption", wanted: s.encryption, found: enc === "none" ? "none" : (enc.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm ?? "none"), outcome: "planned", note: null });
  const blocked = (p: Exclude<typeof pab, "unsupported" | "none">) => {
    const c = p.PublicAccessBlockConfiguration;
    return c?.BlockPublicAcls && c.BlockPublicPolicy && c.IgnorePublicAcls && c.RestrictPublicBuckets ? "blocked" : "not blocked";
  };
  out.push(pab === "unsupported" ? unsupported("public-access", "blocked", "public access blocks") : { setting: "public-access", wanted: "blocked", found: pab === "none" ? "not blocked" : blocked(pab), outcome: "planned", note: null });
  out.push(lc === "unsupported" ? unsupported("lifecycle", lifecycleText(s), "lifecycle rules") : { setting: "lifecycle", wanted: lifecycleText(s), found: lc === "none" ? "none" : `${lc.Rules?.length ?? 0} rule(s)`, outcome: "planned", note: null });
  // An adopted bucket's settings are the owner's: reported, not changed.
  for (const x of out) if (x.outcome === "planned") x.outcome = x.found === x.wanted ? "already" : "kept";
  return out;
}

/**
 * What provisioning `bucket` means now, read-only. Absent: created. Present and the deployment's own (the owner the store
 * reports is `expectedOwner`, or the caller): adopted as it is. A bucket the caller may not see (403), one in another
 * region, or one the store says another owner has is refused: honua-agent never writes rasters into someone else's bucket.
 */
export async function inspectBucket(clientLike: S3ClientLike, o: Pick<S3StoreOptions, "bucket" | "region" | "endpoint" | "expectedOwner" | "kind">, s: StorageSettings): Promise<Inspection> {
  const client = await clientLike;
  const { HeadBucketCommand } = await sdk();
  const where = o.endpoint ? `the store at ${o.endpoint}` : "S3";
  const planned = (settings: SettingState[]) => settings;
  try {
    await client.send(new HeadBucketCommand({ Bucket: o.bucket, ...(o.expectedOwner && /^\d{12}$/.test(o.expectedOwner) ? { ExpectedBucketOwner: o.expectedOwner } : {}) }));
  } catch (e) {
    if (notFound(e)) {
      const settings: SettingState[] = [
        { setting: "versioning", wanted: s.versioning ? "Enabled" : "off", found: null, outcome: "planned", note: null },
        { setting: "encryption", wanted: s.encryption, found: null, outcome: "planned", note: o.kind === "gcs" ? "GCS encrypts every object at rest (Google-managed keys); nothing to set" : null },
        { setting: "public-access", wanted: "blocked", found: null, outcome: "planned", note: null },
        { setting: "lifecycle", wanted: lifecycleText(s), found: null, outcome: "planned", note: null },
      ];
      return { exists: false, owner: null, refuse: null, creates: true, action: `Create bucket ${o.bucket} in ${o.region}${o.endpoint ? ` at ${o.endpoint}` : ""}`, settings: planned(settings) };
    }
    if (status(e) === 403 || named(e, "Forbidden", "AccessDenied")) {
      return { exists: true, owner: null, refuse: `bucket ${o.bucket} exists and belongs to someone else${o.expectedOwner ? ` (not to ${o.expectedOwner})` : ""}: ${where} answers 403 Forbidden. Choose another bucket name`, creates: false, action: "refuse", settings: [] };
    }
    if (status(e) === 301 || named(e, "PermanentRedirect")) {
      return { exists: true, owner: null, refuse: `bucket ${o.bucket} exists in another region than ${o.region}: choose another name or the bucket's own region`, creates: false, action: "refuse", settings: [] };
    }
    throw e;
  }
  const { owner, me } = await owners(client, o.bucket);
  const want = o.expectedOwner ?? me;
  if (owner === null || want === null) {
    return { exists: true, owner, refuse: `bucket ${o.bucket} exists but ${where} does not say who owns it: set expectedOwner in the backend's section to adopt it, or choose another name`, creates: false, action: "refuse", settings: [] };
  }
  // An AWS account id and a canonical user id name the same owner differently; HeadBucket's ExpectedBucketOwner checked the account.
  const comparable = /^\d+$/.test(owner) === /^\d+$/.test(want);
  if (comparable && owner !== want) {
    return { exists: true, owner, refuse: `bucket ${o.bucket} is owned by ${owner}, not by ${want}${o.expectedOwner ? " (expectedOwner)" : " (the deployment's own account)"}: honua-agent does not adopt someone else's bucket. Choose another bucket name`, creates: false, action: "refuse", settings: [] };
  }
  const settings = await foundSettings(client, o.bucket, s, where);
  const open = settings.find((x) => x.setting === "public-access" && x.found === "not blocked");
  if (open) return { exists: true, owner, refuse: `bucket ${o.bucket} does not block public access: rasters are not put into a bucket that may be public. Block public access on it (or choose another name) first`, creates: false, action: "refuse", settings };
  return { exists: true, owner, refuse: null, creates: false, action: `Adopt existing bucket ${o.bucket} (owner ${owner}); its settings are kept as they are`, settings };
}

/** Creates the bucket and sets what the store implements; a setting it does not implement is reported, not faked. */
export async function createBucket(clientLike: S3ClientLike, o: Pick<S3StoreOptions, "bucket" | "region" | "endpoint" | "kind" | "kmsKeyId">, s: StorageSettings): Promise<SettingState[]> {
  const client = await clientLike;
  const { CreateBucketCommand, PutBucketEncryptionCommand, PutBucketLifecycleConfigurationCommand, PutBucketVersioningCommand, PutPublicAccessBlockCommand } = await sdk();
  const where = o.endpoint ? `the store at ${o.endpoint}` : "S3";
  try {
    const location = o.region !== "us-east-1" && o.region !== "auto" ? { CreateBucketConfiguration: { LocationConstraint: o.region as BucketLocationConstraint } } : {};
    await client.send(new CreateBucketCommand({ Bucket: o.bucket, ...location }));
  } catch (e) {
    // A retried or replayed create finds the bucket it made (S3-compatible stores say BucketAlreadyExists for that
    // too): it goes on only when the store says the bucket is the caller's; another owner's bucket is refused.
    if (named(e, "BucketAlreadyExists")) {
      const { owner, me } = await owners(client, o.bucket);
      if (owner === null || owner !== me) throw new AgentError("conflict", `bucket ${o.bucket} was taken by someone else${owner ? ` (owner ${owner})` : ""}: choose another bucket name`);
    } else if (!named(e, "BucketAlreadyOwnedByYou")) throw e;
  }
  const apply = async (setting: SettingState["setting"], wanted: string, f: () => Promise<unknown>, note: string | null = null): Promise<SettingState> => {
    try {
      await f();
      return { setting, wanted, found: null, outcome: "set", note };
    } catch (e) {
      // A store that does not know the subresource may answer it as a bucket create (BucketAlreadyExists) or refuse the method.
      if (notImplemented(e) || named(e, "BucketAlreadyExists", "MethodNotAllowed")) return { setting, wanted, found: null, outcome: "unsupported", note: `${where} does not implement it (answered ${e instanceof Error ? e.name : "501"}): not set` };
      throw e;
    }
  };
  const out: SettingState[] = [];
  out.push(await apply("public-access", "blocked", () => client.send(new PutPublicAccessBlockCommand({ Bucket: o.bucket, PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true } }))));
  out.push(s.versioning
    ? await apply("versioning", "Enabled", () => client.send(new PutBucketVersioningCommand({ Bucket: o.bucket, VersioningConfiguration: { Status: "Enabled" } })))
    : { setting: "versioning", wanted: "off", found: null, outcome: "already", note: null });
  out.push(await apply("encryption", s.encryption, () => client.send(new PutBucketEncryptionCommand({
    Bucket: o.bucket,
    ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: s.encryption === "aws:kms" ? "aws:kms" : "AES256", ...(s.encryption === "aws:kms" && o.kmsKeyId ? { KMSMasterKeyID: o.kmsKeyId } : {}) }, BucketKeyEnabled: s.encryption === "aws:kms" }] },
  }))));
  const lc = s.lifecycle;
  out.push(lc
    ? await apply("lifecycle", lifecycleText(s), () => client.send(new PutBucketLifecycleConfigurationCommand({
      Bucket: o.bucket,
      LifecycleConfiguration: {
        Rules: [{
          ID: "honua-agent-placement", Status: "Enabled", Filter: { Prefix: "" },
          ...(lc.transitionAfterDays && lc.storageClass ? { Transitions: [{ Days: lc.transitionAfterDays, StorageClass: lc.storageClass as never }] } : {}),
          ...(lc.noncurrentExpireDays ? { NoncurrentVersionExpiration: { NoncurrentDays: lc.noncurrentExpireDays } } : {}),
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        }],
      },
    })))
    : { setting: "lifecycle", wanted: "none", found: null, outcome: "already", note: null });
  return out;
}

/** Empties and deletes a bucket honua-agent created. */
export async function deleteBucket(clientLike: S3ClientLike, bucket: string): Promise<void> {
  const client = await clientLike;
  const { DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command } = await sdk();
  for (;;) {
    let r;
    try {
      r = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
    } catch (e) {
      if (notFound(e)) return;
      throw e;
    }
    for (const c of r.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: c.Key! }));
    if (!r.IsTruncated) break;
  }
  try {
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if (!notFound(e)) throw e;
  }
}

/** Bytes for a GCS or S3 body a test or probe wrote as a string. */
export const bodyOf = (b: string | Buffer): Readable => Readable.from([typeof b === "string" ? Buffer.from(b) : b]);
