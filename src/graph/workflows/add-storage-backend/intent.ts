import { Text, collapse, lexicon, unique } from "../../../core/text.js";
import { FROM_MARK, MOVE } from "../../../core/grammar.js";
import type { Extraction, Missing, WorkflowIntent } from "../module.js";
import { StorageBackendKind } from "./params.js";

const BACKENDS = lexicon({
  s3: ["s3", "aws s3", "amazon s3", "minio", "s3-compatible"],
  "azure-blob": ["azure blob storage", "azure blob", "azure-blob", "azure", "blob storage", "blob"],
  gcs: ["gcs", "google cloud storage", "google storage", "gcp storage", "gcp"],
  filesystem: ["filesystem", "file system", "local disk", "local filesystem", "local storage", "nfs", "disk", "mounted volume", "efs"],
});
const UNSUPPORTED_BACKEND = /\b(hdfs|s?ftp|dropbox|google drive|onedrive|backblaze)\b/;

const AZURE_REGIONS = [
  "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus", "southcentralus", "westcentralus",
  "northeurope", "westeurope", "uksouth", "ukwest", "francecentral", "germanywestcentral", "swedencentral",
  "switzerlandnorth", "norwayeast", "eastasia", "southeastasia", "japaneast", "japanwest", "australiaeast",
  "australiasoutheast", "canadacentral", "canadaeast", "brazilsouth", "centralindia", "southindia", "koreacentral",
  "uaenorth", "southafricanorth",
];
const DIRECTIONS = "(?:north|south|east|west|central|northeast|southeast|northwest|southwest)";
const REGION = new RegExp(
  `\\b(?:(?:us|eu|ap|sa|ca|me|af|il|mx)(?:-gov)?-${DIRECTIONS}-\\d|(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-${DIRECTIONS}\\d|${AZURE_REGIONS.join("|")})\\b`,
);
const NOT_BUCKET_NAMES = new Set([
  "for", "on", "in", "to", "the", "with", "named", "called", "and", "at", "per", "a", "an", "new", "our", "my", "of",
  "s3", "gcs", "azure", "blob", "that", "this",
]);
const BUCKET_AFTER = /\b(?:bucket|container)\s+(?:named\s+|called\s+)?["'`]?([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])/i;
/**
 * "<name> bucket": a name that looks like one (a digit, dot, dash or underscore in it). Tried only where a name
 * starts, with the look of it checked afterwards: a regex requiring the separator inside the name
 * (`[a-z0-9._-]*[-_.0-9][a-z0-9._-]*`) backtracks cubically over one long token.
 */
const BUCKET_BEFORE = /(?<![a-z0-9._-])["'`]?([a-z0-9][a-z0-9._-]*)["'`]?\s+(?:bucket|container)\b/gi;
const BUCKET: readonly ((s: string) => string | undefined)[] = [
  (s) => BUCKET_AFTER.exec(s)?.[1],
  (s) => [...s.matchAll(BUCKET_BEFORE)].map((m) => m[1] ?? "").find((name) => /[-_.0-9]/.test(name)),
];
const URL = /\b(?:s3|gs):\/\/([a-z0-9][a-z0-9._-]+)(?:\/(\S*))?/i;
const PATH = /(?:^|\s)(\.?\/[\w.-]+(?:\/[\w.-]*)*)/;
const DATA_NOUN = "(?:rasters?|data|tiles|imagery|images|cogs?|scenes|datasets?|files|objects|layers|uploads|mosaics)";
const AGE = String.raw`(?:\s+(?:older than|from before|before)\s+(?:\d+\s*[a-z]+|\d{4}))?`;
const PLACEMENT = [
  /\bplacement\s*[:=]\s*([^,;]+)/i,
  new RegExp(`\\b(?:(?:cold|hot|warm|archived?|archival|old(?:er)?|historical|historic|infrequently[- ]accessed|rarely[- ]accessed|raw|large|backup)\\s+)+${DATA_NOUN}${AGE}`, "i"),
  new RegExp(`\\b${DATA_NOUN}\\s+(?:older than|from before|before)\\s+(?:\\d+\\s*[a-z]+|\\d{4})`, "i"),
];

function extract(t: Text): Extraction {
  const params: Record<string, unknown> = {};
  const missing: Missing[] = [];
  const unsupported = UNSUPPORTED_BACKEND.exec(t.lower);
  const mentions = BACKENDS.find(t.lower).filter((m) => !FROM_MARK.test(t.lower.slice(Math.max(0, m.start - 24), m.start)));
  const values = unique(mentions.map((m) => m.value));
  if (unsupported) {
    missing.push({ param: "backend", question: `${unsupported[1]} isn't a storage backend I support. Should I use s3, azure-blob, gcs or filesystem?` });
  } else if (values.length === 1) params.backend = values[0];

  const url = URL.exec(t.orig);
  const region = REGION.exec(t.lower);
  const bucket = url?.[1] ?? BUCKET.map((find) => find(t.orig)).find((b) => b && !NOT_BUCKET_NAMES.has(b.toLowerCase()));
  const path = url?.[2] || PATH.exec(t.orig)?.[1];
  const placement = PLACEMENT.map((re) => re.exec(t.orig)).find((m) => m);
  if (region) params.region = region[0];
  if (bucket) params.bucket = bucket;
  if (path) params.path = path;
  const where = collapse(placement?.[1] ?? placement?.[0] ?? "");
  if (where) params.placement = where;
  if (!params.backend && url) params.backend = /^gs:/i.test(url[0]) ? "gcs" : "s3";
  return { params, missing, claimed: [region?.[0], bucket].flatMap((w) => (w ? [w.toLowerCase()] : [])) };
}

export const intent: WorkflowIntent = {
  signals: [
    [/\bstorage backends?\b/, 5],
    [new RegExp(`\\b(?:backends?|buckets?|object storage)\\b|s3:\\/\\/|gs:\\/\\/|${BACKENDS.source}`), 3],
    [/\b(?:storage|nfs|cold)\b/, 2],
    [/\b(?:rasters?|cogs?|imagery)\b/, 1],
    [MOVE, 1],
  ],
  sqlScore: 0,
  vocabulary: {
    triggers: ["storage", "backend", "backends", "bucket", "buckets", "azure", "rasters"],
    notTypos: ["backed", "stories", "starage"],
    notDeployments: [
      ...BACKENDS.words, "storage", "backend", "bucket", "buckets", "cold", "hot", "warm", "archive", "backup", "backups",
      "images", "imagery", "cogs", "objects", "files", "uploads", "scenes", "mosaics", "rasters", "raster", "region", "path", "mount",
    ],
    things: ["bucket", "container", "backend"],
    safeObjects: [],
  },
  capability: `add a storage backend (${StorageBackendKind.options.join(", ")})`,
  listed: 18,
  extract,
};
