import { z } from "zod";
import { said, withoutNulls } from "../../../core/evidence.js";
import { defineTool } from "../module.js";
import { StorageBackendKind } from "./params.js";

const text = z.string().nullable();
const Args = z.strictObject({
  backend: StorageBackendKind.nullable(),
  region: text,
  bucket: text,
  path: text,
  placement: text.describe("which data goes there, in the user's words (e.g. cold rasters)"),
});

/** Words that name each backend. */
const NAMED_BY: Record<z.infer<typeof StorageBackendKind>, RegExp> = {
  s3: /\bs3\b|\baws\b|amazon|minio/, "azure-blob": /azure|\bblob/, gcs: /\bgcs\b|google|\bgcp\b|\bgs:\/\//,
  filesystem: /file ?system|\bdisk\b|\bnfs\b|\befs\b|volume|\bmount|\blocal\b|(?:^|\s)\.?\/\w/,
};

export const tool = defineTool({
  args: Args,
  paramNames: ["backend", "region", "bucket", "path", "placement"],
  toParams: (args) => withoutNulls(args),
  invented(params, request) {
    const s = said(request);
    // A bucket URL names its backend ("s3://honua-cold").
    const url = /\b(s3|gs):\/\//.exec(s.text)?.[1];
    const byUrl = (url === "s3" && params.backend === "s3") || (url === "gs" && params.backend === "gcs");
    if (!byUrl && !s.named(NAMED_BY, params.backend)) return `backend ${String(params.backend)} is not named in the request`;
    for (const k of ["region", "bucket", "path"] as const) if (!s.verbatim(params[k])) return `${k} ${JSON.stringify(params[k])} is not in the request`;
    return null;
  },
});
