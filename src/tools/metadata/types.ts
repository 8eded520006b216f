import { z } from "zod";

/** The stores a STAC metadata catalog can live in (DESIGN.md `metadata.store`). */
export const MetadataStoreKind = z.enum(["postgres", "sqlite", "files", "elasticsearch", "opensearch"]);
export type MetadataStoreKind = z.infer<typeof MetadataStoreKind>;

/** The traffic feature a read cutover moves: the share of STAC/metadata reads served from the new store. */
export const METADATA_READS = "metadata-reads";

/** A catalog record's key: STAC items are unique per collection. Keys sort by (collection, id), byte order of UTF-8. */
export const RecordKey = z.object({ collection: z.string().min(1), id: z.string().min(1) });
export type RecordKey = z.infer<typeof RecordKey>;

/** One STAC item as a store holds it: the item JSON is the record; the key is (collection, id). */
export const MetaRecord = RecordKey.extend({ content: z.record(z.string(), z.unknown()) });
export type MetaRecord = z.infer<typeof MetaRecord>;

/** What a store's own statistics say about the reads it serves, by the query kinds the validation samples. */
export const QueryMix = z.object({
  source: z.string(),
  /** Share of reads per kind (0..1), summing to 1 where known. */
  shares: z.record(z.string(), z.number()),
  calls: z.number(),
});
export type QueryMix = z.infer<typeof QueryMix>;

export const StoreMeasure = z.object({
  records: z.number().int(),
  bytes: z.number(),
  collections: z.array(z.object({ id: z.string(), records: z.number().int() })),
  queryMix: QueryMix.nullable(),
});
export type StoreMeasure = z.infer<typeof StoreMeasure>;

/** A sampled read, as Honua's STAC API would ask it. Results are compared as sorted key lists. */
export const SampleQuery = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("id"), collection: z.string(), id: z.string() }),
  z.object({ kind: z.literal("collection"), collection: z.string(), limit: z.number().int().positive() }),
  z.object({ kind: z.literal("bbox"), bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]), limit: z.number().int().positive() }),
  z.object({ kind: z.literal("datetime"), from: z.string(), to: z.string(), limit: z.number().int().positive() }),
  z.object({ kind: z.literal("text"), text: z.string().min(1), limit: z.number().int().positive() }),
]);
export type SampleQuery = z.infer<typeof SampleQuery>;

/** One captured source write: the key changed, in source order; the record's state is read when applied. */
export interface Change {
  seq: number;
  op: "upsert" | "delete";
  collection: string;
  id: string;
}

/** A backup of a store as written, and what proved it readable. */
export const Backup = z.object({
  location: z.string(),
  format: z.string(),
  bytes: z.number(),
  sha256: z.string(),
  records: z.number().int(),
  verified: z.boolean(),
  verifiedBy: z.string(),
});
export type Backup = z.infer<typeof Backup>;

export interface Provisioning {
  /** False when everything already existed (adopted): nothing for a rollback to delete. */
  created: boolean;
  /** What was created or found (database, schema, table, indexes). */
  details: string[];
}

/**
 * One metadata store. Every read is keyset-paginated by (collection, id) in byte order, never OFFSET; every write is an
 * upsert or delete by key, so a replayed batch changes nothing.
 */
export interface MetadataStore {
  readonly kind: MetadataStoreKind;
  describe(): string;
  readonly supports: { text: boolean; spatial: boolean; datetime: boolean };
  /** Records, bytes, collections and the query mix from the store's own statistics (null where it keeps none). */
  measure(): Promise<StoreMeasure>;
  count(): Promise<number>;
  /** The next `limit` records after `after` (null: from the start), in key order. */
  page(after: RecordKey | null, limit: number): Promise<MetaRecord[]>;
  /** The records among `keys` that exist. */
  get(keys: readonly RecordKey[]): Promise<MetaRecord[]>;
  /**
   * Upserts by key. With `mark`, the value is stored under `mark.name` in the same transaction as the records where the
   * store has transactions (a crash leaves both or neither), else right after them.
   */
  upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }): Promise<void>;
  /** The value last stored under `name` by `upsert`, or null. */
  mark(name: string): Promise<string | null>;
  remove(keys: readonly RecordKey[], mark?: { name: string; value: string }): Promise<void>;
  /** Keys a sampled read returns, in key order. */
  query(q: SampleQuery): Promise<RecordKey[]>;
  /** The layout this store needs as a target (tables, indexes, folders), created where missing; idempotent. */
  provision(): Promise<Provisioning>;
  /** What provision would do, for the gate card. */
  plan(): Promise<{ creates: boolean; details: string[] }>;
  /** Deletes what `provision` created (a rollback's leftover, after a delete decision). */
  deprovision(): Promise<void>;
  /**
   * Search engines: reads move by pointing a read alias at this store's index (`point` takes the indices it should name,
   * empty: none), so the cutover is one atomic flip and a rollback points it back at what `current` said before.
   */
  readAlias?: { name(): string; own(): string; current(): Promise<string[]>; point(indices: readonly string[]): Promise<void> };
  /** Change capture on this store as a source, under `name`: every insert, update and delete from now on, in order. */
  capture?: ChangeCapture;
  /** Writes a backup into `dir` and verifies it can be restored from. */
  backup(dir: string, name: string): Promise<Backup>;
  /** Removes the store's data for good (the retire step, after a verified backup). */
  retire(): Promise<string[]>;
  close(): Promise<void>;
}

export interface ChangeCapture {
  /** How it captures ("trigger into honua_agent_changes", "mtime/hash sweep"). */
  readonly method: string;
  start(name: string): Promise<void>;
  /**
   * Changes after the watermark `after` (0: from the start), and the watermark to ask from next. Applying a change
   * reads the key's current state on the source, so what matters is that no change is skipped: a watermark only
   * passes writes that are committed and can no longer be joined by an earlier one.
   */
  changes(name: string, after: number, limit: number): Promise<{ changes: Change[]; next: number }>;
  /** Ends capture and drops what it installed; idempotent. */
  stop(name: string): Promise<void>;
  active(name: string): Promise<boolean>;
}

/** The `metadata` capability: the deployment's current store and the stores it can move to. */
export interface MetadataCapability {
  /** Makes the source reachable before the first read (the sandbox seeds its catalog here); absent: nothing to do. */
  ready?(): Promise<void>;
  /** The store Honua's catalog lives in now. */
  source(): MetadataStore;
  readonly sourceKind: MetadataStoreKind;
  /** The target stores this deployment can move to, by kind. */
  readonly targets: readonly MetadataStoreKind[];
  target(kind: MetadataStoreKind): MetadataStore;
  /** How reads move to the new store on this deployment (a canary behind the router, an alias flip). */
  readPath(kind: MetadataStoreKind): { how: string; config: Record<string, string> };
  /** Timings of sampled reads on one store, for the cutover signal: p95 in ms and failed reads; the sandbox simulates them. */
  probe(store: MetadataStore, queries: readonly SampleQuery[]): Promise<{ p95Ms: number | null; errors: number; reads: number }>;
  /** A traffic router splits Honua's STAC read paths (reads move in stages); false: they move whole. */
  readonly splitReads: boolean;
  /** Where backups of a retired store go. */
  readonly backupDir: string;
  /** Deletes a provisioned target (`target:<kind>`), after a delete decision. */
  deprovision(id: string, idempotencyKey: string): Promise<void>;
  /** A rollback turns change capture off (`capture:<name>` -> "off"). */
  restore(target: string, value: string, idempotencyKey: string): Promise<void>;
}

declare module "../types.js" {
  interface DeploymentAdapters {
    metadata?: MetadataCapability;
  }
}
