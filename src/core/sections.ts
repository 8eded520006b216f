import { z } from "zod";

/** One Honua setting as a change: `before` as found (null: unset), `after` as written (null: removed). */
export const ConfigChange = z.object({ key: z.string(), before: z.string().nullable(), after: z.string().nullable() });
export type ConfigChange = z.infer<typeof ConfigChange>;
