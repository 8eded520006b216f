import { z } from "zod";
import { SecretRef } from "../storage/section.js";

const Postgres = z.object({
  store: z.literal("postgres"),
  /** A postgres:// URL, or env:VAR naming one (credentials stay in the environment). */
  url: z.string().min(1),
  /** The catalog table (schema.table); absent: found in information_schema. */
  table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/).optional(),
  /** As a target: the schema provisioned for the catalog. */
  schema: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  /** As a target: the reference Honua's canary gets as `ConnectionStrings__DefaultConnection` (never a value). */
  honuaConnection: SecretRef.optional(),
}).strict();
const Sqlite = z.object({ store: z.literal("sqlite"), path: z.string().min(1), table: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional() }).strict();
const Files = z.object({ store: z.literal("files"), path: z.string().min(1) }).strict();

export const MetadataStoreConfig = z.discriminatedUnion("store", [Postgres, Sqlite, Files]);
export type MetadataStoreConfig = z.infer<typeof MetadataStoreConfig>;

/** `metadata:` in honua-agent.yaml: the store Honua's catalog is in, the stores it may move to, where backups go. */
const extra = { targets: z.array(MetadataStoreConfig).default([]), backupDir: z.string().min(1).default("./metadata-backups") };
export const MetadataSection = z.discriminatedUnion("store", [Postgres.extend(extra), Sqlite.extend(extra), Files.extend(extra)]);
export type MetadataSection = z.infer<typeof MetadataSection>;

export const METADATA_EXAMPLE = "metadata: { store: postgres, url: env:HONUA_CATALOG_URL, targets: [{ store: postgres, url: env:HONUA_NEW_CATALOG_URL, schema: catalog }], backupDir: /var/backups/honua }";
