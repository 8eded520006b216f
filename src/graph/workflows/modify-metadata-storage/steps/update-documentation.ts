import { z } from "zod";
import { defineStep, type RunView } from "../../../step.js";
import type { MetadataStoreKind } from "../../../../tools/metadata/types.js";
import { AnalyzeCurrentMetadataStore } from "./analyze-current-metadata-store.js";
import { DisableOldStore } from "./disable-old-store.js";
import { MigrateMetadataIncrementally } from "./migrate-metadata-incrementally.js";
import { MonitorNewStore } from "./monitor-new-store.js";
import { SelectNewMetadataStore } from "./select-new-metadata-store.js";
import { ValidateDataIntegrity } from "./validate-data-integrity.js";

const SYNTAX: Record<MetadataStoreKind, string> = {
  postgres: "SQL over `items`: `content @> '{...}'` (GIN), `geometry && ST_MakeEnvelope(...)` (GiST), `search @@ plainto_tsquery('simple', ...)`; keys compare in C collation",
  sqlite: "SQL with json_extract(content, '$.properties...'); no spatial or text index: bbox, datetime and text reads scan",
  files: "no query engine: STAC readers walk catalog.json -> collection.json -> items/*.json; search needs a STAC API in front",
  elasticsearch: "Query DSL on the read alias: geo_shape for bbox, range on properties.datetime, match for text",
  opensearch: "Query DSL on the read alias: geo_shape for bbox, range on properties.datetime, match for text",
};

export const UpdateDocumentation = defineStep({
  name: "UpdateDocumentation",
  description: "Write what changed into the report: store, endpoints, query syntax differences, figures, rollback notes",
  input: z.object({ markdown: z.string() }),
  output: z.object({ markdown: z.string() }),
  prepare: (view) => ({ markdown: reportOf(view) }),
  async run(ctx, { markdown }) {
    ctx.progress(markdown.split("\n")[0] ?? "report written");
    return { output: { markdown }, reason: "report written" };
  },
});

/** The report, from the recorded steps. */
function reportOf(view: RunView): string {
  const a = view.output(AnalyzeCurrentMetadataStore);
  const s = view.output(SelectNewMetadataStore);
  const m = view.output(MigrateMetadataIncrementally);
  const v = view.output(ValidateDataIntegrity);
  const w = view.output(MonitorNewStore);
  const d = view.output(DisableOldStore);
  return [
    `## Metadata store: ${a.store.kind} -> ${s.target.kind}`,
    "",
    `- Old store: ${a.store.location} (${a.records} records, ${a.collections.length} collections) — retired: ${d.retired.join("; ")}`,
    `- New store: ${s.target.location}`,
    `- Endpoints: Honua's /stac and /stac/search are unchanged for clients; reads moved by ${s.readPath.how}`,
    `- Config: ${Object.keys(s.readPath.config).length ? Object.entries(s.readPath.config).map(([k, x]) => `${k} = ${x}`).join(", ") : "no Honua setting changed"}`,
    `- Query syntax: ${SYNTAX[s.target.kind]} (was: ${SYNTAX[a.store.kind]})`,
    `- Copy: ${m.copied} records in ${m.batches} batches (final batch size ${m.batchSize})${m.ratePerSecond === null ? "" : `, ${m.ratePerSecond} records/s`}; ${m.capture.applied} captured writes applied (${m.capture.method})`,
    `- Integrity: ${v.comparison.sourceCount} = ${v.comparison.targetCount} records, ${v.comparison.ranges} checksum ranges equal, ${v.comparison.queries.length} sampled reads the same`,
    `- Watch: ${w.reason} (${w.verdict})`,
    `- Backup: ${d.backup.location} (${d.backup.format}, ${d.backup.bytes} bytes, sha256 ${d.backup.sha256}); ${d.backup.verifiedBy}`,
    "",
    "### Rollback notes",
    `The old store was retired after a verified backup: to go back, restore ${d.backup.location} (${a.store.kind === "postgres" ? "`pg_restore -d <db> " + d.backup.location + "`" : a.store.kind === "files" ? "`tar -xzf " + d.backup.location + "` and check the manifest" : "copy the SQLite file back"}), point Honua at it and move the read share back to 0%.`,
  ].join("\n");
}
