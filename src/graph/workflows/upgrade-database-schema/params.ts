import { z } from "zod";

export const SchemaParams = z
  .object({
    /** DDL statements, or a plain description the Design step turns into DDL. */
    changes: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
  })
  .strict();
export type SchemaParams = z.infer<typeof SchemaParams>;
