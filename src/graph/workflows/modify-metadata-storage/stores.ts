import { AgentError } from "../../../core/errors.js";
import type { ChangeSection } from "../../../core/sections.js";
import type { MetadataCapability, MetadataStoreKind } from "../../../tools/metadata/types.js";
import type { DeploymentAdapters } from "../../../tools/types.js";

export function metadataOf(adapters: DeploymentAdapters, deployment: string): MetadataCapability {
  if (!adapters.metadata) throw new AgentError("unavailable", `deployment ${deployment} has no metadata section in honua-agent.yaml (metadata: { store: postgres, url: ..., targets: [...] }, see docs/local.md)`);
  return adapters.metadata;
}

/** How each STAC field lands in the target store. */
export function mappingOf(from: MetadataStoreKind, to: MetadataStoreKind): ChangeSection {
  const rows: { from: string; to: string; transform: string | null }[] = [
    { from: "collection", to: to === "files" ? "<collection>/ folder + collection.json links" : "collection (key part 1)", transform: to === "postgres" ? 'text COLLATE "C"' : null },
    { from: "id", to: to === "files" ? "<collection>/items/<id>.json" : "id (key part 2)", transform: to === "postgres" ? 'text COLLATE "C"' : null },
    { from: "item JSON", to: to === "postgres" ? "content jsonb (GIN jsonb_path_ops)" : to === "files" ? "the item file, as is" : to === "sqlite" ? "content JSON text" : "_source", transform: "unchanged, byte-equal after canonical ordering of keys" },
  ];
  if (to === "postgres") {
    rows.push(
      { from: "geometry (else bbox)", to: "geometry geometry(Geometry, 4326) (GiST)", transform: "ST_GeomFromGeoJSON, else ST_MakeEnvelope(bbox)" },
      { from: "properties.datetime", to: "datetime timestamptz (btree)", transform: "parsed; unparseable -> NULL" },
      { from: "properties.title, description, keywords", to: "search tsvector (GIN)", transform: "to_tsvector('simple', ...)" },
    );
  } else if (to === "elasticsearch" || to === "opensearch") {
    rows.push(
      { from: "(collection, id)", to: "_id", transform: "the key as a JSON pair; the item's own collection and id must equal it" },
      { from: "geometry", to: "geometry (geo_shape)", transform: "bbox reads: geo_shape intersects an envelope" },
      { from: "bbox", to: "bbox (double)", transform: null },
      { from: "properties.datetime, start_datetime, end_datetime", to: "the same fields (date)", transform: "an unparseable date fails its bulk item, named" },
      { from: "properties.title, description, keywords", to: "search_text (text, copy_to)", transform: "standard analyzer; _source unchanged" },
      { from: "other fields", to: "_source only", transform: "dynamic: false (kept, not indexed)" },
    );
  } else {
    rows.push({ from: "bbox, datetime, text", to: "(no index)", transform: `${to} has no spatial or text index: such reads scan` });
  }
  return { kind: "mapping", title: `Field mapping ${from} -> ${to}`, rows };
}
