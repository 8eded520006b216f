import { z } from "zod";

export const StorageBackendKind = z.enum(["s3", "azure-blob", "gcs", "filesystem"]);

export const StorageParams = z
  .object({
    backend: StorageBackendKind.optional(),
    region: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    path: z.string().min(1).optional(),
    placement: z.string().min(1).optional(),
  })
  .strict();
export type StorageParams = z.infer<typeof StorageParams>;
