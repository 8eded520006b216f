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

/** A cluster's address: http(s), no credentials in it (they come from `auth`, by reference). */
const NodeUrl = z.string().min(1).superRefine((v, ctx) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    ctx.addIssue({ code: "custom", message: `node ${JSON.stringify(v)} is not a URL (e.g. http://search.internal:9200)` });
    return;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") ctx.addIssue({ code: "custom", message: `node ${v}: http:// or https:// only` });
  if (u.username || u.password) ctx.addIssue({ code: "custom", message: "credentials are given by reference only: put them in auth (env:VARIABLE), not in the node URL" });
});
/** The read alias name; the index is `<index>-v1`. Lowercase, as both engines require, and no characters they refuse. */
const IndexName = z.string({ message: "index is required: the name of the read alias (the index is <index>-v1)" })
  .regex(/^[a-z0-9][a-z0-9._-]{0,200}$/, "index names are lowercase letters, digits, '.', '_' and '-', starting with a letter or digit");
const SearchAuthRef = z.union([z.object({ username: SecretRef, password: SecretRef }).strict(), z.object({ apiKey: SecretRef }).strict()]);
const searchTarget = <K extends "elasticsearch" | "opensearch">(store: K) => z.object({ store: z.literal(store), node: NodeUrl, index: IndexName, auth: SearchAuthRef.optional() }).strict();
const Elasticsearch = searchTarget("elasticsearch");
const OpenSearch = searchTarget("opensearch");

export const MetadataStoreConfig = z.discriminatedUnion("store", [Postgres, Sqlite, Files, Elasticsearch, OpenSearch]);
export type MetadataStoreConfig = z.infer<typeof MetadataStoreConfig>;

/** `metadata:` in honua-agent.yaml: the store Honua's catalog is in, the stores it may move to, where backups go. */
const extra = { targets: z.array(MetadataStoreConfig).default([]), backupDir: z.string().min(1).default("./metadata-backups") };
/**
 * The source is where Honua's catalog is: PostgreSQL, SQLite or a folder. A search index is a target only: it has no
 * change capture, so writes during a move from it would be lost.
 */
export const MetadataSection = z.discriminatedUnion("store", [Postgres.extend(extra), Sqlite.extend(extra), Files.extend(extra)], {
  error: (issue) => (issue.code === "invalid_union" ? `store: postgres, sqlite or files (elasticsearch and opensearch are targets only: a search index has no change capture, so a move from one would lose writes)` : undefined),
});
export type MetadataSection = z.infer<typeof MetadataSection>;

export const METADATA_EXAMPLE = "metadata: { store: postgres, url: env:HONUA_CATALOG_URL, targets: [{ store: postgres, url: env:HONUA_NEW_CATALOG_URL, schema: catalog }, { store: opensearch, node: https://search.internal:9200, index: stac-items, auth: { username: env:OS_USER, password: env:OS_PASSWORD } }], backupDir: /var/backups/honua }";
