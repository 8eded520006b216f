import { z } from "zod";
import { said, withoutNulls } from "../../../core/evidence.js";
import { defineTool } from "../module.js";
import { TO_STORE_QUESTION } from "./intent.js";
import { MetadataStoreKind } from "./params.js";

const Args = z.strictObject({
  fromStore: MetadataStoreKind.nullable(),
  toStore: MetadataStoreKind.nullable(),
  batchSize: z.number().int().nullable(),
});

/** Words that name each store. */
const NAMED_BY: Record<MetadataStoreKind, RegExp> = {
  postgres: /postgres|\bpg\b|psql/, sqlite: /sqlite/, files: /\bfiles?\b|file[- ]based|file ?system|\bdisk\b|\bjson\b|\bflat\b/,
  elasticsearch: /elastic|\bes\b/, opensearch: /open ?search/,
};

/** A batch size the request states ("500", "2,000", "2k"). */
const batchGiven = (request: string, size: number): boolean =>
  [...request.matchAll(/(\d[\d,_]*(?:\.\d+)?)\s*(k)?\b/g)].some((m) => Number((m[1] ?? "").replace(/[,_]/g, "")) * (m[2] ? 1000 : 1) === size);

export const tool = defineTool({
  args: Args,
  paramNames: ["fromStore", "toStore", "batchSize"],
  toParams: (args) => withoutNulls(args),
  invented(params, request) {
    const s = said(request);
    if (!s.named(NAMED_BY, params.fromStore)) return `fromStore ${String(params.fromStore)} is not named in the request`;
    if (!s.named(NAMED_BY, params.toStore)) return `toStore ${String(params.toStore)} is not named in the request`;
    if (typeof params.batchSize === "number" && !batchGiven(s.text, params.batchSize)) return `batchSize ${params.batchSize} is not in the request`;
    return null;
  },
  missing(params) {
    if (params.toStore === undefined) return { param: "toStore", question: TO_STORE_QUESTION };
    if (params.fromStore === params.toStore) return { param: "toStore", question: `The metadata is already on ${params.toStore}. ${TO_STORE_QUESTION}` };
    return null;
  },
});
