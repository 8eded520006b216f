import { z } from "zod";

export const ObservabilityChange = z
  .object({
    kind: z.enum(["alert-rule", "recording-rule", "dashboard", "alert-route", "retention"]),
    action: z.enum(["add", "modify", "remove"]),
    name: z.string().min(1).optional(),
    spec: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type ObservabilityChange = z.infer<typeof ObservabilityChange>;

export const ObservabilityParams = z.object({ changes: z.array(ObservabilityChange).min(1).optional() }).strict();
export type ObservabilityParams = z.infer<typeof ObservabilityParams>;
