import { z } from "zod";

export const StorageBackendKind = z.enum(["s3", "azure-blob", "gcs", "filesystem"]);

/** A param the user did not give is absent; IdentifyStorageRequirement fills it and says why. */
export const StorageParams = z
  .object({
    backend: StorageBackendKind.optional(),
    region: z.string().min(1).optional(),
    bucket: z.string().min(1).optional(),
    path: z.string().min(1).optional(),
    placement: z.string().min(1).optional(),
    /** Delete the source objects once their copies are verified and serving (behind a delete gate); absent: copy, keep the sources. */
    move: z.boolean().optional(),
  })
  .strict();
export type StorageParams = z.infer<typeof StorageParams>;
