/** The capabilities a workflow can ask of a deployment; for a `local`/`aws` deployment each is a section of its config. */
export const CAPABILITY_IDS = ["metrics", "config", "cache", "traffic", "tiles", "cost", "metadata", "storage", "database", "observability"] as const;
export type CapabilityId = (typeof CAPABILITY_IDS)[number];
