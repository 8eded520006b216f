// Storage list prices, apart from the real adapters so the sandbox twin can price a backend without loading them.

/** List prices per GB-month (us-east-1 / West Europe / US multi-region, standard tiers); on-premises: the section's own. */
export const STORAGE_PRICES: Record<string, number> = {
  "s3:STANDARD": 0.023, "s3:STANDARD_IA": 0.0125, "s3:ONEZONE_IA": 0.01, "s3:GLACIER_IR": 0.004, "s3:GLACIER": 0.0036, "s3:DEEP_ARCHIVE": 0.00099,
  "azure-blob:Hot": 0.0184, "azure-blob:Cool": 0.01, "azure-blob:Cold": 0.0036, "azure-blob:Archive": 0.00099,
  "gcs:STANDARD": 0.026, "gcs:NEARLINE": 0.01, "gcs:COLDLINE": 0.004, "gcs:ARCHIVE": 0.0012,
};
export const STORAGE_PRICE_SOURCE = "list prices per GB-month, standard regions (src/tools/storage/prices.ts)";

export function priceOfBackend(kind: string, tier: string | undefined, own: number | undefined): number | null {
  if (own !== undefined) return own;
  if (kind === "filesystem") return null;
  return STORAGE_PRICES[`${kind}:${tier ?? (kind === "azure-blob" ? "Hot" : "STANDARD")}`] ?? null;
}
