/**
 * Price table, kept as data: on-demand list prices (USD per month, 730 h), us-east-1.
 * Replace with your contract prices; every estimate names this table as its source.
 */
export const PRICE_SOURCE = "list prices, us-east-1 on-demand, 730 h/month (src/tools/cost/prices.ts)";

export interface NodePrice {
  type: string;
  memoryGb: number;
  monthlyUsd: number;
}

export const PRICES = {
  /** ElastiCache for Redis nodes. */
  redis: [
    { type: "cache.t4g.small", memoryGb: 1.37, monthlyUsd: 23.36 },
    { type: "cache.t4g.medium", memoryGb: 3.09, monthlyUsd: 47.45 },
    { type: "cache.m7g.large", memoryGb: 6.38, monthlyUsd: 115.34 },
    { type: "cache.r7g.large", memoryGb: 13.07, monthlyUsd: 159.14 },
    { type: "cache.r7g.xlarge", memoryGb: 26.32, monthlyUsd: 319.01 },
  ] satisfies NodePrice[],
  /** Hosts for a Varnish tier (EC2). */
  varnish: [
    { type: "c7g.large", memoryGb: 4, monthlyUsd: 52.56 },
    { type: "c7g.xlarge", memoryGb: 8, monthlyUsd: 105.12 },
    { type: "r7g.large", memoryGb: 16, monthlyUsd: 105.85 },
  ] satisfies NodePrice[],
  cloudfront: { perMillionRequests: 1.0, perGbEgress: 0.085 },
  /** What one million requests cost when they reach Honua's origin (compute, PostGIS, object-store GETs). */
  originPerMillionRequests: 0.9,
  secondsPerMonth: 730 * 3600,
} as const;

/** The smallest node with at least `memoryGb`, else the largest. */
export function pickNode(table: readonly NodePrice[], memoryGb: number): NodePrice {
  return table.find((n) => n.memoryGb >= memoryGb) ?? table[table.length - 1]!;
}

export function priceOf(engine: "redis" | "varnish" | "cloudfront", nodeType: string): number {
  if (engine === "cloudfront") return 0;
  return PRICES[engine].find((n) => n.type === nodeType)?.monthlyUsd ?? 0;
}

export const monthlyRequests = (perSecond: number): number => perSecond * PRICES.secondsPerMonth;
export const originMonthlyUsd = (originPerSecond: number): number =>
  (monthlyRequests(originPerSecond) / 1e6) * PRICES.originPerMillionRequests;
