import { createHash } from "node:crypto";
import { closeSync, createReadStream, fsyncSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import type { Client as EsClient, ClientOptions as EsClientOptions } from "@elastic/elasticsearch";
import type { Client as OsClient } from "@opensearch-project/opensearch";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import { lazyModule } from "../../core/lazy.js";
import { compareKeys, keyText } from "./records.js";
import { MetaRecord as MetaRecordSchema, type Backup, type MetaRecord, type MetadataStore, type Provisioning, type RecordKey, type SampleQuery, type StoreMeasure } from "./types.js";

/** One HTTP call to a search cluster, through its official client. A non-2xx answer comes back as a status, not thrown. */
export interface SearchRequest {
  method: "GET" | "PUT" | "POST" | "DELETE";
  path: string;
  body?: Record<string, unknown>;
  bulkBody?: Record<string, unknown>[];
  querystring?: Record<string, string>;
}
export interface SearchTransport {
  request(r: SearchRequest): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

export type SearchProduct = "elasticsearch" | "opensearch";
const PRODUCT_NAME: Record<SearchProduct, string> = { elasticsearch: "Elasticsearch", opensearch: "OpenSearch" };

export type SearchAuth = { username: string; password: string } | { apiKey: string };

/** The status and body of a client's ResponseError (both clients expose them the same way). */
const ClientResponseError = z.object({ statusCode: z.number().int(), body: z.unknown() });

function unreachable(product: SearchProduct, node: string, e: unknown): AgentError {
  return new AgentError("unavailable", `${PRODUCT_NAME[product]} at ${node} did not answer (${e instanceof Error ? e.message : String(e)}); nothing was changed by this call`);
}

/** The clients, imported when a search target is first called (see core/lazy.ts). */
const esSdk = lazyModule(() => import("@elastic/elasticsearch"));
const osSdk = lazyModule(() => import("@opensearch-project/opensearch"));

/** What both official clients offer: one raw request, answered with its status and body, and close. */
interface RawClient {
  request(r: SearchRequest): Promise<{ statusCode?: number | null; body: unknown }>;
  close(): Promise<void>;
}

/**
 * A transport over one official client, built on the first request: an HTTP error answer is returned with its status
 * (the store reads it); anything else (refused, timed out) is "did not answer".
 */
function clientTransport(product: SearchProduct, node: string, build: () => Promise<RawClient>): SearchTransport {
  let built: Promise<RawClient> | undefined;
  return {
    async request(r) {
      const client = await (built ??= build());
      try {
        const res = await client.request(r);
        return { status: res.statusCode ?? 200, body: res.body };
      } catch (e) {
        const re = ClientResponseError.safeParse(e);
        if (re.success) return { status: re.data.statusCode, body: re.data.body };
        throw unreachable(product, node, e);
      }
    },
    close: async () => {
      if (built) await (await built).close();
    },
  };
}

const rawParams = (r: SearchRequest) => ({ method: r.method, path: r.path, ...(r.body ? { body: r.body } : {}), ...(r.bulkBody ? { bulkBody: r.bulkBody } : {}), ...(r.querystring ? { querystring: r.querystring } : {}) });

/** Elasticsearch through `@elastic/elasticsearch` (8.x: the 9.x client needs Node 22). `connection` is for tests (the official mock). */
export function elasticsearchTransport(o: { node: string; auth?: SearchAuth; connection?: EsClientOptions["Connection"] }): SearchTransport {
  return clientTransport("elasticsearch", o.node, async () => {
    const { Client } = await esSdk();
    const client: EsClient = new Client({ node: o.node, ...(o.auth ? { auth: o.auth } : {}), ...(o.connection ? { Connection: o.connection } : {}), maxRetries: 2, requestTimeout: 30_000 });
    return { request: (r) => client.transport.request<unknown>(rawParams(r), { meta: true }), close: () => client.close() };
  });
}

/** OpenSearch through `@opensearch-project/opensearch`. */
export function opensearchTransport(o: { node: string; auth?: SearchAuth }): SearchTransport {
  if (o.auth && "apiKey" in o.auth) throw new AgentError("bad-input", "OpenSearch targets take username and password, not an apiKey");
  const auth = o.auth && "username" in o.auth ? o.auth : undefined;
  return clientTransport("opensearch", o.node, async () => {
    const { Client } = await osSdk();
    const client: OsClient = new Client({ node: o.node, ...(auth ? { auth } : {}), maxRetries: 2, requestTimeout: 30_000 });
    return { request: async (r) => { const res = await client.transport.request(rawParams(r)); return { statusCode: res.statusCode, body: res.body as unknown }; }, close: () => client.close() };
  });
}

/** The fields the validation's sampled reads use, and the types they need. `dynamic: false` keeps every other field in `_source`, unindexed. */
export const SEARCH_MAPPING = {
  dynamic: false,
  _meta: { created_by: "honua-agent", layout: "stac-items/1" },
  properties: {
    collection: { type: "keyword" },
    id: { type: "keyword" },
    geometry: { type: "geo_shape" },
    bbox: { type: "double" },
    properties: {
      properties: {
        datetime: { type: "date" },
        start_datetime: { type: "date" },
        end_datetime: { type: "date" },
        title: { type: "text", copy_to: "search_text" },
        description: { type: "text", copy_to: "search_text" },
        keywords: { type: "text", copy_to: "search_text" },
      },
    },
    search_text: { type: "text" },
  },
} as const;

/** What a mapping must hold for this store to use an index (an existing one is adopted only with these). */
const REQUIRED: [string, string[]][] = [
  ["collection", ["keyword"]],
  ["id", ["keyword"]],
  ["geometry", ["geo_shape"]],
  ["bbox", ["double", "float"]],
  ["properties.datetime", ["date", "date_nanos"]],
  ["search_text", ["text"]],
];

type FieldMap = { type?: string; properties?: Record<string, FieldMap> };
const FieldMapSchema: z.ZodType<FieldMap> = z.lazy(() => z.object({ type: z.string().optional(), properties: z.record(z.string(), FieldMapSchema).optional() }).passthrough());
const MappingResponse = z.record(z.string(), z.object({ mappings: z.object({ _meta: z.record(z.string(), z.unknown()).optional(), properties: z.record(z.string(), FieldMapSchema).optional() }).passthrough() }));
const AliasResponse = z.record(z.string(), z.object({ aliases: z.record(z.string(), z.unknown()) }));
const ErrorBody = z.object({ error: z.union([z.string(), z.object({ type: z.string(), reason: z.string().nullish() }).passthrough()]) }).passthrough();
const Hit = z.object({ _id: z.string(), _source: z.record(z.string(), z.unknown()).optional(), sort: z.array(z.unknown()).optional() });
const SearchResponse = z.object({
  hits: z.object({ hits: z.array(Hit) }),
  aggregations: z.object({ collections: z.object({ buckets: z.array(z.object({ key: z.string(), doc_count: z.number().int() })), sum_other_doc_count: z.number().int().optional() }) }).optional(),
});
const CountResponse = z.object({ count: z.number().int() });
const MgetResponse = z.object({ docs: z.array(z.object({ _id: z.string(), found: z.boolean().optional(), _source: z.record(z.string(), z.unknown()).optional(), error: z.unknown().optional() })) });
const DocResponse = z.object({ found: z.boolean(), _source: z.record(z.string(), z.unknown()).optional() });
const StatsResponse = z.object({ _all: z.object({ primaries: z.object({ store: z.object({ size_in_bytes: z.number() }) }) }) });
const BulkItem = z.record(z.string(), z.object({ _id: z.string().optional(), status: z.number().int(), result: z.string().optional(), error: z.unknown().optional() }));
const BulkResponse = z.object({ errors: z.boolean(), items: z.array(BulkItem) });

function reasonOf(body: unknown): string {
  const e = ErrorBody.safeParse(body);
  if (!e.success) return JSON.stringify(body).slice(0, 300);
  return typeof e.data.error === "string" ? e.data.error : `${e.data.error.type}: ${e.data.error.reason ?? ""}`;
}

function fieldAt(props: Record<string, FieldMap> | undefined, path: string): FieldMap | undefined {
  const parts = path.split(".");
  let cur: FieldMap | undefined = { properties: props ?? {} };
  for (const p of parts) cur = cur?.properties?.[p];
  return cur;
}

/** Which required fields a mapping lacks or types differently, as sentences (empty: compatible). */
export function mappingProblems(props: Record<string, FieldMap> | undefined): string[] {
  return REQUIRED.flatMap(([path, types]) => {
    const f = fieldAt(props, path);
    if (!f) return [`${path} is not mapped (needs ${types[0]})`];
    const t = f.type ?? "object";
    return types.includes(t) ? [] : [`${path} is ${t}, needs ${types.join(" or ")}`];
  });
}

const PAGE_MAX = 10_000;

/**
 * A STAC catalog in an Elasticsearch or OpenSearch index. Records are the items as `_source`, `_id` = `collection/id`
 * in JSON (so any key is a valid id); reads are `search_after` on a sort by (collection, id) — keyword order is the
 * UTF-8 byte order the other stores use — never from/size offsets. The index is `<index>-v1`, written through the
 * alias `<index>-write`; the read alias `<index>` is what Honua's search service reads, and the read cutover points it
 * at this index (an atomic `_aliases` flip). Marks (the copy cursor, the capture watermark) live in `<index>-v1-marks`,
 * written right after each batch: a search engine has no transaction to share with the records.
 */
export class SearchEngineMetadataStore implements MetadataStore {
  readonly supports = { text: true, spatial: true, datetime: true };
  readonly concrete: string;
  readonly writeAlias: string;
  readonly marksIndex: string;
  /** Writes since the last refresh: a search read refreshes first (read-your-writes; GET by id is realtime anyway). */
  private dirty = true;

  constructor(private readonly o: { product: SearchProduct; node: string; index: string; transport: SearchTransport }) {
    this.concrete = `${o.index}-v1`;
    this.writeAlias = `${o.index}-write`;
    this.marksIndex = `${o.index}-v1-marks`;
  }

  get kind(): SearchProduct {
    return this.o.product;
  }

  describe(): string {
    return `${PRODUCT_NAME[this.o.product]} ${this.o.node} index ${this.concrete} (read alias ${this.o.index})`;
  }

  private async call(r: SearchRequest, ok: number[] = [200, 201]): Promise<{ status: number; body: unknown }> {
    const res = await this.o.transport.request(r);
    if (!ok.includes(res.status)) throw new AgentError("failed", `${PRODUCT_NAME[this.o.product]} ${r.method} ${r.path} answered ${res.status}: ${reasonOf(res.body)}`);
    return res;
  }

  private enc = (name: string) => encodeURIComponent(name);

  /** What is there now: the index this store writes through, and its mapping. */
  private async inspect(): Promise<{ index: string | null; viaAlias: boolean; props: Record<string, FieldMap> | undefined; meta: Record<string, unknown> | undefined; readAliasIsIndex: boolean }> {
    const readAsIndex = await this.call({ method: "GET", path: `/${this.enc(this.o.index)}/_mapping` }, [200, 404]);
    let readAliasIsIndex = false;
    if (readAsIndex.status === 200) {
      const m = MappingResponse.parse(readAsIndex.body);
      readAliasIsIndex = Object.keys(m).includes(this.o.index);
    }
    const alias = await this.call({ method: "GET", path: `/_alias/${this.enc(this.writeAlias)}` }, [200, 404]);
    const viaAlias = alias.status === 200 && Object.keys(AliasResponse.parse(alias.body)).length > 0;
    const target = viaAlias ? Object.keys(AliasResponse.parse(alias.body))[0]! : this.concrete;
    const m = await this.call({ method: "GET", path: `/${this.enc(target)}/_mapping` }, [200, 404]);
    if (m.status === 404) return { index: null, viaAlias: false, props: undefined, meta: undefined, readAliasIsIndex };
    const parsed = MappingResponse.parse(m.body);
    const [name, entry] = Object.entries(parsed)[0]!;
    return { index: name, viaAlias, props: entry.mappings.properties, meta: entry.mappings._meta, readAliasIsIndex };
  }

  private refuseReadAliasIndex(readAliasIsIndex: boolean): void {
    if (readAliasIsIndex) throw new AgentError("bad-input", `${PRODUCT_NAME[this.o.product]} already has an index named ${this.o.index}: the read cutover points an alias of that name at the new index, and an alias cannot share a name with an index; configure another index name. Nothing was changed`);
  }

  async plan(): Promise<{ creates: boolean; details: string[] }> {
    const now = await this.inspect();
    this.refuseReadAliasIndex(now.readAliasIsIndex);
    if (now.index) {
      const problems = mappingProblems(now.props);
      if (problems.length) return { creates: false, details: [`index ${now.index} exists with an incompatible mapping (${problems.join("; ")}): provisioning will be refused`] };
      return { creates: false, details: [`index ${now.index} exists with a compatible mapping: adopted${now.viaAlias ? "" : `; write alias ${this.writeAlias} added`}`] };
    }
    return {
      creates: true,
      details: [
        `create index ${this.concrete}: collection, id keyword; geometry geo_shape; bbox double; properties.datetime, start_datetime, end_datetime date; title, description, keywords copied into search_text (text); other fields kept in _source, not indexed`,
        `write alias ${this.writeAlias} -> ${this.concrete}; read alias ${this.o.index} is pointed at it only at the read cutover`,
        `create index ${this.marksIndex} for the copy cursor and the capture watermark`,
      ],
    };
  }

  async provision(raced = false): Promise<Provisioning> {
    const now = await this.inspect();
    this.refuseReadAliasIndex(now.readAliasIsIndex);
    const details: string[] = [];
    let created = false;
    if (now.index) {
      const problems = mappingProblems(now.props);
      if (problems.length) throw new AgentError("bad-input", `refused: ${PRODUCT_NAME[this.o.product]} index ${now.index} exists with a mapping this catalog cannot use (${problems.join("; ")}); nothing was changed. Delete or rename that index, or configure another index name`);
      if (!now.viaAlias) {
        await this.call({ method: "POST", path: "/_aliases", body: { actions: [{ add: { index: now.index, alias: this.writeAlias, is_write_index: true } }] } });
        details.push(`write alias ${this.writeAlias} -> ${now.index} added`);
      }
      details.unshift(`adopted index ${now.index} (compatible mapping)`);
    } else {
      const res = await this.call({ method: "PUT", path: `/${this.enc(this.concrete)}`, body: { mappings: SEARCH_MAPPING, aliases: { [this.writeAlias]: { is_write_index: true } } } }, [200, 400]);
      if (res.status === 400) {
        // Another provision won the race: adopt what it made when it is compatible.
        if (raced || !/resource_already_exists/.test(reasonOf(res.body))) throw new AgentError("failed", `${PRODUCT_NAME[this.o.product]} refused to create ${this.concrete}: ${reasonOf(res.body)}`);
        return this.provision(true);
      }
      created = true;
      details.push(`created index ${this.concrete} with an explicit mapping and write alias ${this.writeAlias}`);
    }
    const marks = await this.call({ method: "PUT", path: `/${this.enc(this.marksIndex)}`, body: { mappings: { dynamic: false, _meta: { created_by: "honua-agent" }, properties: { value: { type: "keyword", index: false } } } } }, [200, 400]);
    if (marks.status === 400 && !/resource_already_exists/.test(reasonOf(marks.body))) throw new AgentError("failed", `${PRODUCT_NAME[this.o.product]} refused to create ${this.marksIndex}: ${reasonOf(marks.body)}`);
    if (marks.status === 200) details.push(`created index ${this.marksIndex}`);
    return { created, details };
  }

  /** Deletes the index only when honua-agent created it (its mapping's `_meta.created_by`); an adopted index is refused. */
  async deprovision(): Promise<void> {
    const now = await this.inspect();
    if (!now.index) return;
    if (now.meta?.created_by !== "honua-agent") throw new AgentError("failed", `refused to delete ${PRODUCT_NAME[this.o.product]} index ${now.index}: honua-agent did not create it (no _meta.created_by in its mapping); it is left as it is`);
    await this.call({ method: "DELETE", path: `/${this.enc(now.index)}` }, [200, 404]);
    await this.call({ method: "DELETE", path: `/${this.enc(this.marksIndex)}` }, [200, 404]);
  }

  private async exists(): Promise<boolean> {
    return (await this.inspect()).index !== null;
  }

  /** `force`: another process may have written (a walk from the start and a count always refresh first). */
  private async refresh(force = false): Promise<void> {
    if (!this.dirty && !force) return;
    await this.call({ method: "POST", path: `/${this.enc(this.writeAlias)}/_refresh` }, [200, 404]);
    this.dirty = false;
  }

  private static docId = (k: RecordKey): string => JSON.stringify([k.collection, k.id]);

  private toRecord(src: Record<string, unknown>, id: string): MetaRecord {
    let raw: unknown = null;
    try {
      raw = JSON.parse(id);
    } catch {
      raw = null;
    }
    const key = z.tuple([z.string().min(1), z.string().min(1)]).safeParse(raw);
    if (!key.success) throw new AgentError("failed", `${this.describe()} holds a document ${id} that is not a catalog record (its _id is not [collection, id])`);
    return { collection: key.data[0], id: key.data[1], content: src };
  }

  private async search(body: Record<string, unknown>, fresh = false): Promise<z.infer<typeof SearchResponse>> {
    await this.refresh(fresh);
    const res = await this.call({ method: "POST", path: `/${this.enc(this.writeAlias)}/_search`, body }, [200, 404]);
    if (res.status === 404) return { hits: { hits: [] } };
    return SearchResponse.parse(res.body);
  }

  async count(): Promise<number> {
    await this.refresh(true);
    const res = await this.call({ method: "POST", path: `/${this.enc(this.writeAlias)}/_count`, body: { query: { match_all: {} } } }, [200, 404]);
    return res.status === 404 ? 0 : CountResponse.parse(res.body).count;
  }

  /**
   * Records, primary store size from `_stats/store` (replicas not counted), collections from a terms aggregation on
   * `collection`. The query mix is null: an index's stats count searches (`search.query_total`) but not by kind.
   */
  async measure(): Promise<StoreMeasure> {
    if (!(await this.exists())) return { records: 0, bytes: 0, collections: [], queryMix: null };
    const records = await this.count();
    const stats = StatsResponse.parse((await this.call({ method: "GET", path: `/${this.enc(this.writeAlias)}/_stats/store` })).body);
    const agg = await this.search({ size: 0, track_total_hits: false, aggs: { collections: { terms: { field: "collection", size: PAGE_MAX, order: { _key: "asc" } } } } });
    const buckets = agg.aggregations?.collections;
    if (buckets?.sum_other_doc_count) throw new AgentError("failed", `${this.describe()} has more than ${PAGE_MAX} collections: the terms aggregation cannot list them all`);
    return { records, bytes: stats._all.primaries.store.size_in_bytes, collections: (buckets?.buckets ?? []).map((b) => ({ id: b.key, records: b.doc_count })), queryMix: null };
  }

  async page(after: RecordKey | null, limit: number): Promise<MetaRecord[]> {
    if (!Number.isInteger(limit) || limit <= 0) throw new AgentError("bad-input", `a page size must be a positive whole number (got ${limit})`);
    const out: MetaRecord[] = [];
    let cursor = after;
    while (out.length < limit) {
      const size = Math.min(PAGE_MAX, limit - out.length);
      const res = await this.search({ size, track_total_hits: false, query: { match_all: {} }, sort: [{ collection: "asc" }, { id: "asc" }], ...(cursor ? { search_after: [cursor.collection, cursor.id] } : {}) }, after === null && cursor === null);
      const recs = res.hits.hits.map((h) => this.toRecord(h._source ?? {}, h._id));
      out.push(...recs);
      if (recs.length < size) break;
      cursor = recs.at(-1)!;
    }
    return out;
  }

  async get(keys: readonly RecordKey[]): Promise<MetaRecord[]> {
    if (!keys.length) return [];
    const out: MetaRecord[] = [];
    for (let i = 0; i < keys.length; i += 1000) {
      const part = keys.slice(i, i + 1000);
      const res = await this.call({ method: "POST", path: `/${this.enc(this.writeAlias)}/_mget`, body: { ids: part.map(SearchEngineMetadataStore.docId) } }, [200, 404]);
      if (res.status === 404) return [];
      for (const d of MgetResponse.parse(res.body).docs) if (d.found && d._source) out.push(this.toRecord(d._source, d._id));
    }
    return out;
  }

  /** A `_bulk` whose every item is checked: any failed item makes the whole call an error that names those records. */
  private async bulk(ops: { action: "index" | "delete"; key: RecordKey; doc?: Record<string, unknown> }[]): Promise<void> {
    if (!ops.length) return;
    const lines: Record<string, unknown>[] = [];
    for (const op of ops) {
      lines.push({ [op.action]: { _index: this.writeAlias, _id: SearchEngineMetadataStore.docId(op.key) } });
      if (op.action === "index") lines.push(op.doc!);
    }
    this.dirty = true;
    // require_alias: an index deleted behind the store's back fails each item instead of being auto-created unmapped.
    const res = BulkResponse.parse((await this.call({ method: "POST", path: "/_bulk", bulkBody: lines, querystring: { require_alias: "true" } })).body);
    if (res.items.length !== ops.length) throw new AgentError("failed", `${PRODUCT_NAME[this.o.product]} _bulk answered ${res.items.length} items for ${ops.length} operations: the batch is not known to be written`);
    const failed = res.items.flatMap((item, i) => {
      const [action, r] = Object.entries(item)[0]!;
      // A delete of a document that is not there is done already (a replayed batch).
      if (action === "delete" && r.status === 404) return [];
      return r.status >= 300 || r.error ? [`${keyText(ops[i]!.key)} (${action} ${r.status}: ${reasonOf({ error: r.error ?? "failed" })})`] : [];
    });
    if (failed.length) throw new AgentError("failed", `${PRODUCT_NAME[this.o.product]} _bulk failed for ${failed.length} of ${ops.length} records: ${failed.slice(0, 10).join("; ")}${failed.length > 10 ? `; and ${failed.length - 10} more` : ""}. The other records were written; a retry of the batch rewrites them harmlessly`);
  }

  /** Checked once per store object; after that `_bulk`'s require_alias refuses writes to a vanished index. */
  private known = false;
  private async requireIndex(): Promise<void> {
    if (this.known) return;
    if (!(await this.exists())) throw new AgentError("failed", `${this.describe()} does not exist: provision it first`);
    this.known = true;
  }

  private async setMark(mark: { name: string; value: string } | undefined): Promise<void> {
    if (!mark) return;
    await this.call({ method: "PUT", path: `/${this.enc(this.marksIndex)}/_doc/${this.enc(mark.name)}`, body: { value: mark.value } });
  }

  async upsert(records: readonly MetaRecord[], mark?: { name: string; value: string }): Promise<void> {
    await this.requireIndex();
    for (const r of records) {
      const c = r.content;
      if ((c.id !== undefined && c.id !== r.id) || (c.collection !== undefined && c.collection !== r.collection)) {
        throw new AgentError("bad-input", `record ${keyText(r)}: its item JSON says ${String(c.collection)}/${String(c.id)}; a search index maps the item's own collection and id fields, so they must match the key. Nothing in this batch was written`);
      }
    }
    await this.bulk(records.map((r) => ({ action: "index", key: r, doc: r.content })));
    await this.setMark(mark);
  }

  async mark(name: string): Promise<string | null> {
    const res = await this.call({ method: "GET", path: `/${this.enc(this.marksIndex)}/_doc/${this.enc(name)}` }, [200, 404]);
    if (res.status === 404) return null;
    const d = DocResponse.parse(res.body);
    const v = d._source?.value;
    return d.found && typeof v === "string" ? v : null;
  }

  async remove(keys: readonly RecordKey[], mark?: { name: string; value: string }): Promise<void> {
    await this.requireIndex();
    await this.bulk(keys.map((k) => ({ action: "delete", key: k })));
    await this.setMark(mark);
  }

  /** The Query DSL of a sampled read: term on id/collection, geo_shape intersects an envelope, range on the datetime, match (all words) on search_text. */
  static dsl(q: SampleQuery): Record<string, unknown> {
    switch (q.kind) {
      case "id":
        return { bool: { filter: [{ term: { collection: q.collection } }, { term: { id: q.id } }] } };
      case "collection":
        return { bool: { filter: [{ term: { collection: q.collection } }] } };
      case "bbox":
        return { bool: { filter: [{ geo_shape: { geometry: { shape: { type: "envelope", coordinates: [[q.bbox[0], q.bbox[3]], [q.bbox[2], q.bbox[1]]] }, relation: "intersects" } } }] } };
      case "datetime":
        // The item's datetime, else its start_datetime (a range item), as records.ts reads it.
        return { bool: { should: [
          { range: { "properties.datetime": { gte: q.from, lte: q.to } } },
          { bool: { must_not: [{ exists: { field: "properties.datetime" } }], filter: [{ range: { "properties.start_datetime": { gte: q.from, lte: q.to } } }] } },
        ], minimum_should_match: 1 } };
      case "text":
        return { match: { search_text: { query: q.text, operator: "and" } } };
    }
  }

  async query(q: SampleQuery): Promise<RecordKey[]> {
    const size = q.kind === "id" ? 1 : q.limit;
    const res = await this.search({ size, track_total_hits: false, _source: false, query: SearchEngineMetadataStore.dsl(q), sort: [{ collection: "asc" }, { id: "asc" }] });
    return res.hits.hits.map((h) => {
      const r = this.toRecord({}, h._id);
      return { collection: r.collection, id: r.id };
    });
  }

  /** Where reads move at the cutover: the read alias, flipped atomically to a list of indices (empty: removed). */
  readonly readAlias = {
    name: (): string => this.o.index,
    own: (): string => this.concrete,
    current: async (): Promise<string[]> => {
      const res = await this.call({ method: "GET", path: `/_alias/${this.enc(this.o.index)}` }, [200, 404]);
      return res.status === 404 ? [] : Object.keys(AliasResponse.parse(res.body)).sort();
    },
    point: async (indices: readonly string[]): Promise<void> => {
      const now = await this.readAlias.current();
      const actions = [...now.filter((i) => !indices.includes(i)).map((index) => ({ remove: { index, alias: this.o.index } })), ...indices.filter((i) => !now.includes(i)).map((index) => ({ add: { index, alias: this.o.index } }))];
      if (actions.length) await this.call({ method: "POST", path: "/_aliases", body: { actions } });
    },
  };

  /**
   * A JSONL export of every record in key order (`{collection,id,content}` a line) with a manifest holding its SHA-256,
   * the record count and the index mapping; verified by reading the file back (every line parsed, keys ascending, count
   * and digest equal). It is not a snapshot: a snapshot repository cannot be registered from here.
   */
  async backup(dir: string, name: string): Promise<Backup> {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.jsonl`);
    // Written page by page and hashed as written: the export never sits in memory whole.
    const hash = createHash("sha256");
    const fd = openSync(file, "w");
    let records = 0;
    try {
      let after: RecordKey | null = null;
      for (;;) {
        const page = await this.page(after, 1000);
        const chunk = page.map((r) => `${JSON.stringify({ collection: r.collection, id: r.id, content: r.content })}\n`).join("");
        writeSync(fd, chunk);
        hash.update(chunk);
        records += page.length;
        if (page.length < 1000) break;
        after = page.at(-1)!;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const sha256 = hash.digest("hex");
    const now = await this.inspect();
    writeFileSync(join(dir, `${name}.manifest.json`), JSON.stringify({ file: `${name}.jsonl`, sha256, records, index: now.index, mapping: now.props ?? null }, null, 2));
    // Read back from disk: every line a record, keys ascending, the count and the digest as the manifest says.
    const back = createHash("sha256");
    const stream = createReadStream(file);
    stream.on("data", (c) => back.update(c));
    let n = 0;
    let prev: RecordKey | null = null;
    let problem = "";
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (!line || problem) continue;
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = null;
      }
      const r = MetaRecordSchema.safeParse(parsed);
      if (!r.success) problem = `line ${n + 1} is not a record`;
      else if (prev && compareKeys(prev, r.data) >= 0) problem = `line ${n + 1} is out of key order`;
      else {
        prev = r.data;
        n++;
      }
    }
    const digest = back.digest("hex");
    const verified = !problem && n === records && digest === sha256;
    return { location: file, format: "jsonl export + sha256 manifest (not a snapshot)", bytes: statSync(file).size, sha256, records, verified, verifiedBy: problem || `read back: ${n} of ${records} records parsed in key order, sha256 ${digest === sha256 ? "equal to" : "differs from"} the manifest` };
  }

  async retire(): Promise<string[]> {
    const now = await this.inspect();
    if (!now.index) return [`${this.describe()} was already gone`];
    const n = await this.count();
    await this.call({ method: "DELETE", path: `/${this.enc(now.index)}` }, [200, 404]);
    await this.call({ method: "DELETE", path: `/${this.enc(this.marksIndex)}` }, [200, 404]);
    return [`${n} records removed with index ${now.index}`];
  }

  async close(): Promise<void> {
    await this.o.transport.close();
  }
}
