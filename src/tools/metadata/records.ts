import { createHash } from "node:crypto";
import type { MetaRecord, RecordKey, SampleQuery } from "./types.js";

/** Byte order of the UTF-8 encoding (what PostgreSQL's C collation and SQLite's BINARY compare). */
export function compareText(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function compareKeys(a: RecordKey, b: RecordKey): number {
  return compareText(a.collection, b.collection) || compareText(a.id, b.id);
}

export const keyText = (k: RecordKey): string => `${k.collection}/${k.id}`;

/** JSON with object keys sorted at every level: two stores holding the same item give the same text. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
}

/** The record's digest: key and canonical content. */
export function recordDigest(r: MetaRecord): string {
  return createHash("sha256").update(r.collection).update("\u0000").update(r.id).update("\u0000").update(canonicalJson(r.content)).digest("hex");
}

/** The item's bbox as [w, s, e, n], from `bbox` or the geometry's coordinates. */
export function bboxOf(content: Record<string, unknown>): [number, number, number, number] | null {
  const b = Array.isArray(content.bbox) ? content.bbox.map(Number) : [];
  if (b.length >= 4 && b.every(Number.isFinite)) return b.length >= 6 ? [b[0]!, b[1]!, b[3]!, b[4]!] : [b[0]!, b[1]!, b[2]!, b[3]!];
  const pts: number[][] = [];
  const walk = (c: unknown): void => {
    if (Array.isArray(c) && c.length >= 2 && typeof c[0] === "number") pts.push(c as number[]);
    else if (Array.isArray(c)) c.forEach(walk);
  };
  walk((content.geometry as { coordinates?: unknown } | undefined)?.coordinates);
  if (!pts.length) return null;
  const xs = pts.map((p) => p[0]!);
  const ys = pts.map((p) => p[1]!);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export function datetimeOf(content: Record<string, unknown>): string | null {
  const p = (content.properties ?? {}) as Record<string, unknown>;
  const v = [p.datetime, p.start_datetime].find((x): x is string => typeof x === "string" && x !== "");
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** The words free-text search sees: title, description and keywords of the item. */
export function textOf(content: Record<string, unknown>): string {
  const p = (content.properties ?? {}) as Record<string, unknown>;
  const kw = Array.isArray(p.keywords) ? p.keywords.filter((k) => typeof k === "string").join(" ") : "";
  return [p.title, p.description, kw].filter((x) => typeof x === "string").join(" ");
}

/** Whole-word, case-insensitive match of every word in `text` (what each store's full-text search agrees on). */
export function matchesText(content: Record<string, unknown>, text: string): boolean {
  const words = new Set(textOf(content).toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean));
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean).every((w) => words.has(w));
}

/** A sampled read evaluated over records (stores without a query engine: files). */
export function evaluate(records: readonly MetaRecord[], q: SampleQuery): RecordKey[] {
  const hit = (r: MetaRecord): boolean => {
    switch (q.kind) {
      case "id":
        return r.collection === q.collection && r.id === q.id;
      case "collection":
        return r.collection === q.collection;
      case "bbox": {
        const b = bboxOf(r.content);
        return b !== null && b[0] <= q.bbox[2] && b[2] >= q.bbox[0] && b[1] <= q.bbox[3] && b[3] >= q.bbox[1];
      }
      case "datetime": {
        const d = datetimeOf(r.content);
        return d !== null && d >= q.from && d <= q.to;
      }
      case "text":
        return matchesText(r.content, q.text);
    }
  };
  const limit = q.kind === "id" ? 1 : q.limit;
  return records.filter(hit).map((r) => ({ collection: r.collection, id: r.id })).sort(compareKeys).slice(0, limit);
}

/** Quoted SQL identifier (each part of a dotted name). */
export const ident = (name: string): string => name.split(".").map((p) => `"${p.replace(/"/g, '""')}"`).join(".");
