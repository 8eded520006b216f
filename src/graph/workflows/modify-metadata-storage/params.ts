import { z } from "zod";

export const MetadataStoreKind = z.enum(["postgres", "sqlite", "files", "elasticsearch", "opensearch"]);
export type MetadataStoreKind = z.infer<typeof MetadataStoreKind>;

export const MetadataParams = z
  .object({
    fromStore: MetadataStoreKind.optional(),
    toStore: MetadataStoreKind.optional(),
    batchSize: z.number().int().positive().max(100_000).optional(),
  })
  .strict();
export type MetadataParams = z.infer<typeof MetadataParams>;
