import { z } from "zod";

/** A credential is named, never given: `env:VAR` is read from honua-agent's environment when the adapter is built. */
export const SecretRef = z
  .string()
  .regex(/^env:[A-Za-z_][A-Za-z0-9_]*$/, "credentials are given by reference only: env:VARIABLE (the value stays in the environment)");

const name = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, "backend names are letters, digits, - and _");
const prefix = z.string().regex(/^[^/].*\/$|^$/, "a key prefix has no leading / and ends with / (e.g. rasters/)").optional();
/** On-premises storage has no list price: what a GB-month costs there, for the cost report. */
const monthlyUsdPerGb = z.number().nonnegative().optional();

const S3Credentials = z.object({ accessKeyId: SecretRef, secretAccessKey: SecretRef, sessionToken: SecretRef.optional() }).strict();

export const FilesystemBackend = z
  .object({ name, kind: z.literal("filesystem"), path: z.string().min(1), prefix, monthlyUsdPerGb })
  .strict();

export const S3Backend = z
  .object({
    name,
    kind: z.literal("s3"),
    /** The default bucket; a request may name another. */
    bucket: z.string().min(3).max(63).optional(),
    region: z.string().min(1).default("us-east-1"),
    /** Any S3-compatible store (MinIO, Ceph, a local server); absent: AWS. */
    endpoint: z.url().optional(),
    forcePathStyle: z.boolean().optional(),
    prefix,
    /** The account id (AWS) or canonical owner id that must own the bucket; an existing bucket of another owner is refused. */
    expectedOwner: z.string().min(1).optional(),
    /** Absent: the AWS SDK's own credential chain (environment, profile, instance role). */
    credentials: S3Credentials.optional(),
    storageClass: z.string().min(1).optional(),
    encryption: z.enum(["AES256", "aws:kms"]).default("AES256"),
    kmsKeyId: z.string().min(1).optional(),
    /** Flexible checksums (CRC32 trailers); many S3-compatible stores do not take them: `when-required` for those (the default with an endpoint). */
    checksums: z.enum(["when-supported", "when-required"]).optional(),
    /** Objects larger than this go up in parts. */
    multipartThresholdMb: z.number().positive().default(64),
    monthlyUsdPerGb,
  })
  .strict();

/** GCS through its S3-compatible XML API with HMAC keys: Honua reaches it as `AwsS3` with a ServiceUrl. */
export const GcsBackend = z
  .object({
    name,
    kind: z.literal("gcs"),
    bucket: z.string().min(3).max(63).optional(),
    region: z.string().min(1).default("auto"),
    endpoint: z.url().default("https://storage.googleapis.com"),
    prefix,
    expectedOwner: z.string().min(1).optional(),
    hmac: z.object({ accessId: SecretRef, secret: SecretRef }).strict(),
    storageClass: z.string().min(1).optional(),
    multipartThresholdMb: z.number().positive().default(64),
    monthlyUsdPerGb,
  })
  .strict();

export const AzureBackend = z
  .object({
    name,
    kind: z.literal("azure-blob"),
    account: z.string().regex(/^[a-z0-9]{3,24}$/, "a storage account name is 3-24 lower-case letters and digits"),
    container: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, "a container name is 3-63 lower-case letters, digits and single hyphens").optional(),
    /** Absent: https://{account}.blob.core.windows.net (Azurite: http://127.0.0.1:10000/{account}). */
    endpoint: z.url().optional(),
    region: z.string().min(1).optional(),
    prefix,
    credentials: z.union([z.object({ connectionString: SecretRef }).strict(), z.object({ accountKey: SecretRef }).strict()]),
    accessTier: z.enum(["Hot", "Cool", "Cold", "Archive"]).optional(),
    multipartThresholdMb: z.number().positive().default(64),
    monthlyUsdPerGb,
  })
  .strict();

export const BackendSection = z.discriminatedUnion("kind", [FilesystemBackend, S3Backend, GcsBackend, AzureBackend]);
export type BackendSection = z.infer<typeof BackendSection>;

/** A PostgreSQL URL with no password in it, or `env:VAR` naming one. */
const CatalogUrl = z.union([
  SecretRef,
  z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// URL or env:VAR").refine((u) => {
    try {
      return new URL(u).password === "";
    } catch {
      return false;
    }
  }, "the catalog URL holds a password: put the URL in an environment variable and write env:VARIABLE"),
]);

/**
 * `storage:` the raster backends honua-agent may use (the one Honua serves from and the ones it may add), the STAC
 * catalog whose asset hrefs point at them, and Honua's URL for reading assets back through its own paths.
 */
export const StorageSection = z
  .object({
    backends: z.array(BackendSection).min(1),
    /** Honua's STAC items in PostgreSQL: `table` has `collection`, `id` and `content jsonb` columns (pgstac: pgstac.items). */
    catalog: z.object({ url: CatalogUrl, table: z.string().regex(/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/i).default("stac_items") }).strict().optional(),
    /** Honua's base URL: validation reads STAC items and tiles through it. */
    honuaUrl: z.url().optional(),
    /** How many objects are copied at once. */
    concurrency: z.number().int().min(1).max(64).default(4),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    for (const [i, b] of s.backends.entries()) {
      if (seen.has(b.name)) ctx.addIssue({ code: "custom", path: ["backends", i, "name"], message: `two backends are named ${b.name}` });
      seen.add(b.name);
    }
  });
export type StorageSection = z.infer<typeof StorageSection>;

export const STORAGE_EXAMPLE =
  "storage: { backends: [{ name: primary, kind: filesystem, path: /data/rasters }, { name: cold, kind: s3, region: us-east-1, credentials: { accessKeyId: env:AWS_ACCESS_KEY_ID, secretAccessKey: env:AWS_SECRET_ACCESS_KEY } }], catalog: { url: env:HONUA_DATABASE_URL }, honuaUrl: http://honua:8080 }";
