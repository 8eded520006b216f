/** How the caching workflow's figures read on cards and in the report. */
export const pct = (x: number | null): string => (x === null ? "n/a" : `${(x * 100).toFixed(1)}%`);
export { usd } from "../../../core/text.js";
