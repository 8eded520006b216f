import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { errors as esErrors } from "@elastic/elasticsearch";
import MockModule from "@elastic/elasticsearch-mock";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { batchCopy } from "../src/graph/patterns/batch-copy.js";
import { RealMetadata } from "../src/tools/metadata/capability.js";
import { PostgresMetadataStore } from "../src/tools/metadata/postgres.js";
import { bboxOf, compareText } from "../src/tools/metadata/records.js";
import { sandboxItem } from "../src/tools/metadata/sandbox.js";
import { elasticsearchTransport, opensearchTransport, SearchEngineMetadataStore, SEARCH_MAPPING } from "../src/tools/metadata/search-engine.js";
import { checksums, compareStores, sampleQueries } from "../src/tools/metadata/sync.js";
import type { MetaRecord, MetadataStore, RecordKey } from "../src/tools/metadata/types.js";
import { tempHome, testEnv } from "./helpers.js";

// No Elasticsearch or OpenSearch server can run here: these tests run the official clients against
// @elastic/elasticsearch-mock and a local HTTP fake, both answering from the in-memory cluster below.

type Json = Record<string, unknown>;
type Field = { type?: string; properties?: Record<string, Field>; copy_to?: string };
type Index = { mappings: { _meta?: Json; properties?: Record<string, Field> }; docs: Map<string, Json>; visible: Map<string, Json> };
type Reply = { status: number; body: unknown };

const err = (status: number, type: string, reason: string): Reply => ({ status, body: { error: { type, reason }, status } });
const valueAt = (doc: Json, path: string): unknown => path.split(".").reduce<unknown>((o, p) => (o && typeof o === "object" && !Array.isArray(o) ? (o as Json)[p] : undefined), doc);
const values = (doc: Json, path: string): unknown[] => {
  const v = valueAt(doc, path);
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
};
const words = (s: string): string[] => s.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);

/**
 * An in-memory search cluster with the semantics the store relies on: indices with mappings, aliases (write index,
 * atomic _aliases), _bulk with per-item mapping errors, searches that see only refreshed documents, bool/term/range/
 * exists/geo_shape (bbox intersects, exact for points and boxes)/match queries, sort + search_after in UTF-8 byte
 * order, terms aggregations, _mget and GET _doc in real time, _stats store sizes.
 */
class FakeCluster {
  readonly indices = new Map<string, Index>();
  readonly aliases = new Map<string, Map<string, { is_write_index?: boolean }>>();
  readonly log: { method: string; path: string; body: unknown }[] = [];
  /** How often each document was written (index ops), to tell a resumed copy from one that rewrote. */
  readonly writes = new Map<string, number>();

  private readonly fieldCache = new WeakMap<Index["mappings"], Map<string, Field>>();
  private fields(m: Index["mappings"]): Map<string, Field> {
    const known = this.fieldCache.get(m);
    if (known) return known;
    const out = new Map<string, Field>();
    this.fieldCache.set(m, out);
    const walk = (props: Record<string, Field> | undefined, prefix: string) => {
      for (const [k, f] of Object.entries(props ?? {})) {
        if (f.type) out.set(prefix + k, f);
        walk(f.properties, `${prefix}${k}.`);
      }
    };
    walk(m.properties, "");
    return out;
  }

  private resolve(name: string): string[] | null {
    if (this.indices.has(name)) return [name];
    const a = this.aliases.get(name);
    return a && a.size ? [...a.keys()] : null;
  }

  private writeIndex(name: string): string | null {
    if (this.indices.has(name)) return name;
    const a = this.aliases.get(name);
    if (!a || !a.size) return null;
    if (a.size === 1) return [...a.keys()][0]!;
    return [...a.entries()].find(([, o]) => o.is_write_index)?.[0] ?? null;
  }

  /** A mapping error for the document, as the engine's mapper would raise it (null: it indexes). */
  private mapperError(idx: Index, doc: Json): string | null {
    for (const [path, f] of this.fields(idx.mappings)) {
      for (const v of values(doc, path)) {
        if (f.type === "date" && (typeof v !== "string" || Number.isNaN(Date.parse(v)))) return `failed to parse field [${path}] of type [date]`;
        if (f.type === "double" && typeof v !== "number") return `failed to parse field [${path}] of type [double]`;
        if (f.type === "keyword" && typeof v !== "string" && typeof v !== "number") return `failed to parse field [${path}] of type [keyword]`;
        if (f.type === "geo_shape" && !(typeof v === "object" && v !== null && typeof (v as Json).type === "string" && Array.isArray((v as Json).coordinates))) return `failed to parse field [${path}] of type [geo_shape]`;
      }
    }
    return null;
  }

  private matches(idx: Index, doc: Json, q: Json | undefined): boolean {
    if (!q) return true;
    const [kind, arg] = Object.entries(q)[0]! as [string, Json];
    const list = (x: unknown): Json[] => (x === undefined ? [] : Array.isArray(x) ? (x as Json[]) : [x as Json]);
    switch (kind) {
      case "match_all":
        return true;
      case "bool": {
        const must = [...list(arg.filter), ...list(arg.must)].every((c) => this.matches(idx, doc, c));
        const not = list(arg.must_not).some((c) => this.matches(idx, doc, c));
        const should = list(arg.should);
        const min = typeof arg.minimum_should_match === "number" ? arg.minimum_should_match : should.length && !list(arg.filter).length && !list(arg.must).length ? 1 : 0;
        return must && !not && should.filter((c) => this.matches(idx, doc, c)).length >= min;
      }
      case "term": {
        const [field, v] = Object.entries(arg)[0]!;
        const want = typeof v === "object" && v !== null ? (v as Json).value : v;
        return values(doc, field).some((x) => x === want);
      }
      case "exists":
        return values(doc, String(arg.field)).length > 0;
      case "range": {
        const [field, r] = Object.entries(arg)[0]! as [string, Json];
        const date = this.fields(idx.mappings).get(field)?.type === "date";
        const num = (x: unknown) => (date ? Date.parse(String(x)) : Number(x));
        return values(doc, field).some((x) => (r.gte === undefined || num(x) >= num(r.gte)) && (r.lte === undefined || num(x) <= num(r.lte)));
      }
      case "geo_shape": {
        const [field, spec] = Object.entries(arg)[0]! as [string, { shape: { type: string; coordinates: number[][] }; relation?: string }];
        if (spec.shape.type !== "envelope" || (spec.relation ?? "intersects") !== "intersects") throw new Error(`fake: geo_shape ${spec.shape.type}/${spec.relation} not implemented`);
        const [[w, n], [e, s]] = spec.shape.coordinates as [[number, number], [number, number]];
        const g = valueAt(doc, field);
        if (!g) return false;
        const b = bboxOf({ geometry: g });
        return b !== null && b[0] <= e! && b[2] >= w! && b[1] <= n! && b[3] >= s!;
      }
      case "match": {
        const [field, spec] = Object.entries(arg)[0]! as [string, Json];
        const sources = [...this.fields(idx.mappings)].filter(([, f]) => f.copy_to === field).map(([p]) => p);
        const have = new Set((sources.length ? sources : [field]).flatMap((p) => values(doc, p)).flatMap((v) => words(String(v))));
        const want = words(String(spec.query));
        return spec.operator === "and" ? want.every((w) => have.has(w)) : want.some((w) => have.has(w));
      }
      default:
        throw new Error(`fake: query ${kind} not implemented`);
    }
  }

  private search(names: string[], body: Json): Reply {
    if (body.from !== undefined) throw new Error("fake: the store must never page with from/size offsets");
    const hits: { index: string; id: string; doc: Json }[] = [];
    for (const n of names) {
      const idx = this.indices.get(n)!;
      for (const [id, doc] of idx.visible) if (this.matches(idx, doc, body.query as Json | undefined)) hits.push({ index: n, id, doc });
    }
    const sort = ((body.sort ?? []) as Json[]).map((s) => Object.keys(s)[0]!);
    const keyOf = (h: { doc: Json }) => sort.map((f) => String(values(h.doc, f)[0] ?? ""));
    const cmp = (a: string[], b: readonly unknown[]) => {
      for (let i = 0; i < a.length; i++) {
        const c = compareText(a[i]!, String(b[i]));
        if (c) return c;
      }
      return 0;
    };
    hits.sort((a, b) => cmp(keyOf(a), keyOf(b)));
    const after = body.search_after as unknown[] | undefined;
    const from = after ? hits.filter((h) => cmp(keyOf(h), after) > 0) : hits;
    const size = typeof body.size === "number" ? body.size : 10;
    const out: Json = {
      took: 1,
      hits: { hits: from.slice(0, size).map((h) => ({ _index: h.index, _id: h.id, ...(body._source === false ? {} : { _source: structuredClone(h.doc) }), ...(sort.length ? { sort: keyOf(h) } : {}) })) },
    };
    const aggs = body.aggs as Record<string, { terms: { field: string; size: number } }> | undefined;
    if (aggs) {
      out.aggregations = Object.fromEntries(Object.entries(aggs).map(([name, a]) => {
        const counts = new Map<string, number>();
        for (const h of hits) for (const v of values(h.doc, a.terms.field)) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
        const all = [...counts].sort((x, y) => compareText(x[0], y[0])).map(([key, doc_count]) => ({ key, doc_count }));
        const shown = all.slice(0, a.terms.size);
        return [name, { buckets: shown, sum_other_doc_count: all.slice(a.terms.size).reduce((s, b) => s + b.doc_count, 0) }];
      }));
    }
    return { status: 200, body: out };
  }

  private bulk(lines: Json[], requireAlias: boolean): Reply {
    const items: Json[] = [];
    for (let i = 0; i < lines.length; i++) {
      const [action, meta] = Object.entries(lines[i]!)[0]! as [string, { _index: string; _id: string }];
      if (requireAlias && !this.aliases.get(meta._index)?.size) {
        if (action === "index") i++;
        items.push({ [action]: { _index: meta._index, _id: meta._id, status: 404, error: { type: "index_not_found_exception", reason: `no such index [${meta._index}] and [require_alias] request flag is [true] and [${meta._index}] is not an alias` } } });
        continue;
      }
      // Without require_alias a write to a missing index creates it, unmapped (what auto_create_index does).
      if (action === "index" && !this.writeIndex(meta._index)) this.indices.set(meta._index, { mappings: {}, docs: new Map(), visible: new Map() });
      const name = this.writeIndex(meta._index);
      const idx = name ? this.indices.get(name) : undefined;
      if (action === "index") {
        const doc = lines[++i]!;
        if (!idx) {
          items.push({ index: { _id: meta._id, status: 404, error: { type: "index_not_found_exception", reason: `no such index [${meta._index}]` } } });
          continue;
        }
        const bad = this.mapperError(idx, doc);
        if (bad) items.push({ index: { _index: name, _id: meta._id, status: 400, error: { type: "mapper_parsing_exception", reason: bad } } });
        else {
          const had = idx.docs.has(meta._id);
          idx.docs.set(meta._id, structuredClone(doc));
          this.writes.set(meta._id, (this.writes.get(meta._id) ?? 0) + 1);
          items.push({ index: { _index: name, _id: meta._id, status: had ? 200 : 201, result: had ? "updated" : "created" } });
        }
      } else if (action === "delete") {
        const had = idx?.docs.delete(meta._id) ?? false;
        items.push({ delete: { _index: name, _id: meta._id, status: had ? 200 : 404, result: had ? "deleted" : "not_found" } });
      } else throw new Error(`fake: bulk ${action} not implemented`);
    }
    return { status: 200, body: { took: 1, errors: items.some((it) => Object.values(it).some((r) => (r as { error?: unknown }).error)), items } };
  }

  handle(method: string, rawPath: string, body: unknown, qs: Record<string, string> = {}): Reply {
    this.log.push({ method, path: rawPath, body });
    const parts = rawPath.split("/").filter(Boolean).map((p) => decodeURIComponent(p));
    const b = (body ?? {}) as Json;
    if (parts.length === 0 && method === "GET") return { status: 200, body: { name: "fake", cluster_name: "fake", version: { number: "8.19.1" }, tagline: "You Know, for Search" } };
    if (parts[0] === "_bulk" && method === "POST") return this.bulk(body as Json[], qs.require_alias === "true");
    if (parts[0] === "_alias" && method === "GET") {
      const a = this.aliases.get(parts[1]!);
      if (!a || !a.size) return err(404, "aliases_not_found_exception", `alias [${parts[1]}] missing`);
      return { status: 200, body: Object.fromEntries([...a].map(([i, o]) => [i, { aliases: { [parts[1]!]: o } }])) };
    }
    if (parts[0] === "_aliases" && method === "POST") {
      const actions = (b.actions ?? []) as Record<string, { index: string; alias: string; is_write_index?: boolean }>[];
      for (const a of actions) {
        const [op, x] = Object.entries(a)[0]!;
        if (!this.indices.has(x.index)) return err(404, "index_not_found_exception", `no such index [${x.index}]`);
        if (op === "add" && this.indices.has(x.alias)) return err(400, "invalid_alias_name_exception", `an index exists with the same name as the alias [${x.alias}]`);
        if (op === "remove" && !this.aliases.get(x.alias)?.has(x.index)) return err(404, "aliases_not_found_exception", `aliases [${x.alias}] missing`);
      }
      for (const a of actions) {
        const [op, x] = Object.entries(a)[0]!;
        if (op === "add") this.aliases.set(x.alias, (this.aliases.get(x.alias) ?? new Map()).set(x.index, x.is_write_index ? { is_write_index: true } : {}));
        else this.aliases.get(x.alias)!.delete(x.index);
      }
      return { status: 200, body: { acknowledged: true } };
    }
    const name = parts[0]!;
    if (parts.length === 1 && method === "PUT") {
      if (this.indices.has(name) || this.aliases.get(name)?.size) return err(400, "resource_already_exists_exception", `index [${name}] already exists`);
      if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) return err(400, "invalid_index_name_exception", `Invalid index name [${name}]`);
      this.indices.set(name, { mappings: structuredClone((b.mappings ?? {}) as Index["mappings"]), docs: new Map(), visible: new Map() });
      for (const [alias, o] of Object.entries((b.aliases ?? {}) as Record<string, { is_write_index?: boolean }>)) this.aliases.set(alias, (this.aliases.get(alias) ?? new Map()).set(name, o));
      return { status: 200, body: { acknowledged: true, index: name } };
    }
    const names = this.resolve(name);
    if (!names) return err(404, "index_not_found_exception", `no such index [${name}]`);
    if (parts.length === 1 && method === "DELETE") {
      if (!this.indices.has(name)) return err(400, "illegal_argument_exception", `deleting an alias [${name}] as an index`);
      this.indices.delete(name);
      for (const a of this.aliases.values()) a.delete(name);
      return { status: 200, body: { acknowledged: true } };
    }
    const op = parts[1];
    const first = this.indices.get(names[0]!)!;
    switch (op) {
      case "_mapping":
        return { status: 200, body: Object.fromEntries(names.map((n) => [n, { mappings: this.indices.get(n)!.mappings }])) };
      case "_refresh":
        for (const n of names) this.indices.get(n)!.visible = new Map(this.indices.get(n)!.docs);
        return { status: 200, body: { _shards: { total: 1, successful: 1, failed: 0 } } };
      case "_search":
        return this.search(names, b);
      case "_count":
        return { status: 200, body: { count: names.reduce((s, n) => s + [...this.indices.get(n)!.visible.values()].filter((d) => this.matches(this.indices.get(n)!, d, b.query as Json | undefined)).length, 0) } };
      case "_mget":
        return { status: 200, body: { docs: ((b.ids ?? []) as string[]).map((id) => (first.docs.has(id) ? { _id: id, found: true, _source: structuredClone(first.docs.get(id)) } : { _id: id, found: false })) } };
      case "_stats": {
        const size = names.reduce((s, n) => s + [...this.indices.get(n)!.docs.values()].reduce((t, d) => t + Buffer.byteLength(JSON.stringify(d)), 0), 0);
        return { status: 200, body: { _all: { primaries: { store: { size_in_bytes: size } }, total: { store: { size_in_bytes: size } } } } };
      }
      case "_doc": {
        const idx = this.indices.get(this.writeIndex(name)!)!;
        const id = parts[2]!;
        if (method === "GET") return idx.docs.has(id) ? { status: 200, body: { _id: id, found: true, _source: idx.docs.get(id) } } : { status: 404, body: { _id: id, found: false } };
        if (method === "PUT") {
          idx.docs.set(id, structuredClone(b));
          return { status: 200, body: { _id: id, result: "updated" } };
        }
      }
    }
    throw new Error(`fake: ${method} ${rawPath} not implemented`);
  }

  /** A document changed behind the store's back (both what GET and what a search sees). */
  tamper(index: string, id: string, change: (doc: Json) => void): void {
    const idx = this.indices.get(index)!;
    const d = idx.docs.get(id)!;
    change(d);
    idx.visible.set(id, structuredClone(d));
  }
}

/** The ES client's connection to a fake cluster, through @elastic/elasticsearch-mock. */
// The mock is CommonJS with a default-export typing: its class is the module itself at run time.
const Mock = ((MockModule as unknown as { default?: unknown }).default ?? MockModule) as typeof MockModule.default;

function esMock(cluster: FakeCluster) {
  const mock = new Mock();
  mock.add({ method: ["GET", "POST", "PUT", "DELETE"], path: ["/*"] }, (params: { method: string | string[]; path: string | string[]; body?: unknown; querystring?: Record<string, string> }) => {
    const r = cluster.handle(String(params.method), String(params.path), params.body, params.querystring ?? {});
    if (r.status >= 400) return new esErrors.ResponseError({ body: r.body, statusCode: r.status, headers: {}, warnings: null, meta: {} as never });
    return r.body as Json;
  });
  return mock.getConnection();
}

/** A fake cluster over HTTP on 127.0.0.1 (the OpenSearch client's, and a local deployment's, way to reach it). */
async function httpCluster(cluster: FakeCluster, product: "Elasticsearch" | "OpenSearch"): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const nd = String(req.headers["content-type"] ?? "").includes("ndjson");
      let reply: Reply;
      try {
        const body: unknown = !text ? undefined : nd ? text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as unknown) : JSON.parse(text);
        const url = new URL(req.url ?? "/", "http://x");
        reply = cluster.handle(req.method ?? "GET", url.pathname, body, Object.fromEntries(url.searchParams));
      } catch (e) {
        reply = err(500, "fake_failure", e instanceof Error ? e.message : String(e));
      }
      res.writeHead(reply.status, { "content-type": "application/json", ...(product === "Elasticsearch" ? { "x-elastic-product": "Elasticsearch" } : {}) });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const es = (cluster: FakeCluster, index = "stac-items") => new SearchEngineMetadataStore({ product: "elasticsearch", node: "http://es.test:9200", index, transport: elasticsearchTransport({ node: "http://es.test:9200", connection: esMock(cluster) }) });

const memClock = () => {
  let t = Date.parse("2026-11-26T00:00:00Z");
  return { now: () => new Date(t), sleep: async (ms: number) => void (t += ms) };
};
const memCursor = () => {
  const m = new Map<string, string>();
  return { load: async (n: string) => m.get(n) ?? null, save: async (n: string, v: string) => void m.set(n, v) };
};
async function copyAll(source: MetadataStore, target: MetadataStore, name: string, batchSize: number, stop?: () => Promise<string | null>) {
  return batchCopy<MetaRecord, RecordKey>({
    ...(stop ? { stop } : {}),
    name, read: (a, l) => source.page(a, l), keyOf: (r) => ({ collection: r.collection, id: r.id }),
    write: (rs, mark) => target.upsert(rs, mark ?? undefined), targetMark: (n) => target.mark(n),
    cursor: memCursor(), clock: memClock(), total: await source.count(), batchSize, targetBatchMs: null, concurrency: 1,
  });
}

// Real PostgreSQL: database `test`, a schema of this file's own.
const PG = process.env.HONUA_TEST_POSTGRES_URL ? (() => { const u = new URL(process.env.HONUA_TEST_POSTGRES_URL!); u.pathname = "/test"; return u.toString(); })() : "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = `w17_search_${randomBytes(4).toString("hex")}`;
const N = 800;
async function sql(text: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: PG });
  await c.connect();
  try {
    return (await c.query(text, params)).rows;
  } finally {
    await c.end();
  }
}

describe("Elasticsearch and OpenSearch metadata stores, against @elastic/elasticsearch-mock and a local HTTP fake (no search server runs here)", () => {
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    await sql(`CREATE SCHEMA ${SCHEMA}`);
    await sql(`CREATE TABLE ${SCHEMA}.stac_items (id text NOT NULL, collection text NOT NULL, content jsonb NOT NULL, datetime timestamptz, PRIMARY KEY (collection, id))`);
    const recs = Array.from({ length: N }, (_, i) => sandboxItem(i % 4, i));
    await sql(`INSERT INTO ${SCHEMA}.stac_items (collection, id, content, datetime) SELECT c, i, j, (j->'properties'->>'datetime')::timestamptz FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(c, i, j)`, [recs.map((r) => r.collection), recs.map((r) => r.id), recs.map((r) => JSON.stringify(r.content))]);
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  });
  const source = () => {
    const s = new PostgresMetadataStore({ url: PG, role: "source", table: `${SCHEMA}.stac_items` });
    closers.push(() => s.close());
    return s;
  };

  it("Elasticsearch (mock): provision creates the index with its explicit mapping behind a write alias; a second provision adopts it (created: false); an incompatible mapping is refused and nothing changes", async () => {
    const cluster = new FakeCluster();
    const a = es(cluster);
    expect(await a.plan()).toMatchObject({ creates: true });
    expect(await a.provision()).toMatchObject({ created: true });
    expect(cluster.indices.get("stac-items-v1")!.mappings).toEqual(SEARCH_MAPPING);
    expect([...cluster.aliases.get("stac-items-write")!.keys()]).toEqual(["stac-items-v1"]);
    expect(cluster.aliases.get("stac-items")).toBeUndefined();
    const again = es(cluster);
    expect(await again.plan()).toMatchObject({ creates: false, details: [expect.stringMatching(/compatible mapping: adopted/)] });
    expect(await again.provision()).toMatchObject({ created: false, details: [expect.stringMatching(/adopted index stac-items-v1/)] });

    // Someone else's index of that name, geometry as geo_point and no datetime: refused, untouched.
    cluster.handle("PUT", "/other-v1", { mappings: { properties: { collection: { type: "keyword" }, id: { type: "keyword" }, geometry: { type: "geo_point" } } } });
    const other = es(cluster, "other");
    expect((await other.plan()).details[0]).toMatch(/incompatible mapping/);
    const before = JSON.stringify([...cluster.indices.keys(), ...cluster.aliases.keys()]);
    await expect(other.provision()).rejects.toThrow(/refused: Elasticsearch index other-v1 exists with a mapping this catalog cannot use \(geometry is geo_point, needs geo_shape; .*properties\.datetime is not mapped.*nothing was changed/);
    expect(JSON.stringify([...cluster.indices.keys(), ...cluster.aliases.keys()])).toBe(before);
    await expect(other.deprovision()).rejects.toThrow(/refused to delete Elasticsearch index other-v1: honua-agent did not create it/);
    expect(cluster.indices.has("other-v1")).toBe(true);

    // A read alias name that is an index already cannot be flipped: refused before anything is made.
    cluster.handle("PUT", "/taken", { mappings: {} });
    await expect(es(cluster, "taken").provision()).rejects.toThrow(/already has an index named taken.*Nothing was changed/);
    expect(cluster.indices.has("taken-v1")).toBe(false);
  });

  it("PostgreSQL (real) -> Elasticsearch (mock): keyset copy in search_after pages, counts and checksums per key range equal, the same id/collection/bbox/datetime/text reads; a corrupted document is located by its key range", async () => {
    const cluster = new FakeCluster();
    const src = source();
    const t = es(cluster);
    await t.provision();
    const copied = await copyAll(src, t, "copy1", 200);
    expect(copied).toMatchObject({ copied: N, batches: 4 });
    expect(await t.count()).toBe(N);
    expect(await t.mark("copy1")).not.toBeNull();
    const m = await t.measure();
    expect(m).toMatchObject({ records: N, queryMix: null });
    expect(m.collections).toEqual((await src.measure()).collections);
    expect(m.bytes).toBeGreaterThan(N * 300);

    // Paged reads are search_after on (collection, id), never offsets.
    const pages: RecordKey[] = [];
    let after: RecordKey | null = null;
    for (;;) {
      const p = await t.page(after, 500);
      pages.push(...p);
      if (p.length < 500) break;
      after = p.at(-1)!;
    }
    expect(pages.map((k) => `${k.collection}/${k.id}`)).toEqual((await src.page(null, N)).map((k) => `${k.collection}/${k.id}`));
    const searches = cluster.log.filter((l) => l.path.endsWith("/_search") && (l.body as Json).sort);
    expect(searches.some((l) => Array.isArray((l.body as Json).search_after))).toBe(true);
    expect(searches.every((l) => (l.body as Json).from === undefined)).toBe(true);

    const queries = await sampleQueries(src, t);
    expect(new Set(queries.map((q) => q.kind))).toEqual(new Set(["id", "collection", "bbox", "datetime", "text"]));
    const c = await compareStores(src, t, { queries, rangeSize: 200 });
    expect(c.ok).toBe(true);
    expect(c).toMatchObject({ sourceCount: N, targetCount: N, ranges: 4, mismatchCount: 0 });
    for (const k of ["bbox", "datetime", "text"]) expect(c.queries.find((q) => q.kind === k)!.target).toBeGreaterThan(0);

    // A document changed on the target only: its key range and its key are named.
    const victim = (await src.page(null, 500)).at(-1)!;
    cluster.tamper("stac-items-v1", JSON.stringify([victim.collection, victim.id]), (d) => void ((d.properties as Json).title = "tampered"));
    const sums = await checksums(src, t, { rangeSize: 200 });
    expect(sums.mismatches).toEqual([{ key: `${victim.collection}/${victim.id}`, problem: "content differs" }]);
    expect(sums.badRanges).toHaveLength(1);
    expect(sums.badRanges[0]!.from <= `${victim.collection}/${victim.id}` && `${victim.collection}/${victim.id}` <= sums.badRanges[0]!.to).toBe(true);
    // Deletes are applied too, and a replayed delete is not an error.
    await t.remove([victim]);
    await t.remove([victim]);
    expect(await t.count()).toBe(N - 1);
  });

  it("Elasticsearch (mock): a _bulk with one failed item is an error naming that record; the mark is not moved past it; bad records are refused before any write", async () => {
    const cluster = new FakeCluster();
    const t = es(cluster);
    await expect(t.upsert([sandboxItem(0, 1)])).rejects.toThrow(/does not exist: provision it first/);
    await t.provision();
    const good = [sandboxItem(0, 1), sandboxItem(1, 2)];
    const bad = sandboxItem(2, 3);
    (bad.content.properties as Json).datetime = "not a date";
    await expect(t.upsert([good[0]!, bad, good[1]!], { name: "cursor", value: "x" })).rejects.toThrow(/_bulk failed for 1 of 3 records: dem-30m\/dem-30m-000003 \(index 400: mapper_parsing_exception: failed to parse field \[properties\.datetime\] of type \[date\]\)/);
    expect(await t.mark("cursor")).toBeNull();
    expect(await t.count()).toBe(2);
    const wrongKey = { ...sandboxItem(0, 4), id: "something-else" };
    await expect(t.upsert([wrongKey])).rejects.toThrow(/record landsat-c2l2\/something-else: its item JSON says landsat-c2l2\/landsat-c2l2-000004.*Nothing in this batch was written/);
    expect(await t.count()).toBe(2);
    // The index deleted behind the store's back: the next batch fails, named, and no unmapped index appears in its place.
    cluster.handle("DELETE", "/stac-items-v1", undefined);
    await expect(t.upsert([sandboxItem(3, 5)])).rejects.toThrow(/_bulk failed for 1 of 1 records: parcels\/parcels-000005 \(index 404: index_not_found_exception.*require_alias/);
    expect([...cluster.indices.keys()]).toEqual(["stac-items-v1-marks"]);
    // Without a refresh a search would not see the writes: the store refreshes before reading.
    expect(cluster.log.some((l) => l.path.endsWith("/_refresh"))).toBe(true);
  });

  it("Elasticsearch (mock): a copy stopped after two batches resumes, with a new store object and no saved cursor, from the mark kept in the marks index alone: every record once, none written twice", async () => {
    const cluster = new FakeCluster();
    const src = source();
    const first = es(cluster);
    await first.provision();
    let batches = 0;
    await expect(copyAll(src, first, "resume", 150, async () => (++batches >= 3 ? "stopped by the test" : null))).rejects.toThrow(/copy stopped after 300 records/);
    expect(await first.count()).toBe(300);
    // A new store object and no saved cursor: only the target's mark says how far the copy got.
    const again = es(cluster);
    const r = await copyAll(src, again, "resume", 150);
    expect(r).toMatchObject({ resumed: true, copied: N, done: true });
    expect(await again.count()).toBe(N);
    expect(cluster.writes.size).toBe(N);
    expect([...cluster.writes.values()].every((n) => n === 1)).toBe(true);
    expect((await checksums(src, again)).mismatchCount).toBe(0);
  });

  it("OpenSearch (local HTTP fake): copy, the read alias flipped and flipped back, a JSONL backup verified by reading it back, deprovision of what it created", async () => {
    const cluster = new FakeCluster();
    const http = await httpCluster(cluster, "OpenSearch");
    closers.push(http.close);
    const t = new SearchEngineMetadataStore({ product: "opensearch", node: http.url, index: "catalog", transport: opensearchTransport({ node: http.url }) });
    closers.push(() => t.close());
    expect(await t.provision()).toMatchObject({ created: true });
    const src = source();
    await copyAll(src, t, "copy2", 400);
    expect((await compareStores(src, t, { rangeSize: 500 })).ok).toBe(true);
    // Someone's old index behind the read alias; the cutover points the alias at ours alone, the rollback back.
    cluster.handle("PUT", "/catalog-old", { mappings: {}, aliases: { catalog: {} } });
    expect(await t.readAlias.current()).toEqual(["catalog-old"]);
    await t.readAlias.point(["catalog-v1"]);
    expect([...cluster.aliases.get("catalog")!.keys()]).toEqual(["catalog-v1"]);
    await t.readAlias.point(["catalog-old"]);
    expect([...cluster.aliases.get("catalog")!.keys()]).toEqual(["catalog-old"]);

    const home = tempHome();
    closers.push(async () => home.cleanup());
    const b = await t.backup(home.home, "catalog-before-retire");
    expect(b).toMatchObject({ verified: true, records: N, format: expect.stringMatching(/jsonl.*not a snapshot/) });
    const manifest = JSON.parse(readFileSync(join(home.home, "catalog-before-retire.manifest.json"), "utf8")) as { sha256: string; records: number };
    expect(manifest).toMatchObject({ sha256: b.sha256, records: N });
    const lines = readFileSync(b.location, "utf8").split("\n").filter(Boolean);
    expect(lines).toHaveLength(N);

    await t.deprovision();
    expect(cluster.indices.has("catalog-v1")).toBe(false);
    expect(cluster.indices.has("catalog-v1-marks")).toBe(false);
    expect(cluster.indices.has("catalog-old")).toBe(true);
  });

  it("bad config is refused at plan time with a clear error and nothing is created: a node that is not a URL, credentials in the URL, a missing or uppercase index, an auth value instead of a reference", async () => {
    const home = tempHome();
    closers.push(async () => home.cleanup());
    const cap = (target: Json) => new RealMetadata({ store: "postgres", url: PG, targets: [target] }, "lab", { env: {}, cwd: home.home, stateDir: home.home });
    expect(() => cap({ store: "elasticsearch", node: "not a url", index: "stac" })).toThrow(/node "not a url" is not a URL/);
    expect(() => cap({ store: "opensearch", node: "ftp://h:9200", index: "stac" })).toThrow(/http:\/\/ or https:\/\/ only/);
    expect(() => cap({ store: "opensearch", node: "http://u:pw@h:9200", index: "stac" })).toThrow(/credentials are given by reference only/);
    expect(() => cap({ store: "elasticsearch", node: "http://h:9200" })).toThrow(/index is required/);
    expect(() => cap({ store: "elasticsearch", node: "http://h:9200", index: "Stac" })).toThrow(/index names are lowercase/);
    expect(() => cap({ store: "elasticsearch", node: "http://h:9200", index: "stac", auth: { username: "elastic", password: "hunter2" } })).toThrow(/credentials are given by reference only/);
    expect(() => new RealMetadata({ store: "opensearch", node: "http://h:9200", index: "stac" }, "lab", { env: {}, cwd: home.home, stateDir: home.home })).toThrow(/elasticsearch and opensearch are targets only: a search index has no change capture/);
    const ok = cap({ store: "elasticsearch", node: "http://h:9200", index: "stac", auth: { apiKey: "env:ES_KEY_UNSET" } });
    expect(() => ok.target("elasticsearch")).toThrow(/env:ES_KEY_UNSET is not set in the environment/);
    expect(ok.readPath("elasticsearch").how).toMatch(/read alias stac is pointed at stac-v1/);
    expect(() => ok.target("opensearch")).toThrow(/no opensearch target.*node: https:\/\/search\.internal:9200, index: stac-items/);
  });

  it("the workflow on a local deployment (real PostgreSQL source, Elasticsearch over HTTP to the fake) copies, validates and reaches the read cutover, which flips the read alias; a rollback points it back", async () => {
    const cluster = new FakeCluster();
    const http = await httpCluster(cluster, "Elasticsearch");
    closers.push(http.close);
    const home = tempHome();
    closers.push(async () => home.cleanup());
    const env = { ...testEnv(home.home), W17_CATALOG: PG };
    const raw = { deployments: { lab: {
      provider: "local", approvers: ["alice", "bob"],
      // Seconds, not an hour; latency must move by a second to count (this test is about the cutover, not speed).
      monitoring: { windowMinutes: 0.03, stageMinutes: 0.02, sampleEveryMinutes: 0.01, minSamples: 1, latencyFactor: 4, latencyMinDeltaMs: 1000 },
      metrics: { source: "probe", urls: [`${http.url}/`], concurrency: 1, pauseMs: 0, minRequestsPerSample: 1, lookbackSeconds: 0.6, lookbackSamples: 2 },
      config: { kind: "envfile", path: join(home.home, "honua.env") },
      // The one router here moves the cache path; metadata reads, which no router splits, move whole (0 or 100%).
      traffic: { kind: "nginx", include: join(home.home, "split.conf"), primary: "honua", candidate: "honua_new", test: ["true"], reload: ["true"] },
      metadata: { store: "postgres", url: "env:W17_CATALOG", table: `${SCHEMA}.stac_items`, targets: [{ store: "elasticsearch", node: http.url, index: "stac-items" }], backupDir: join(home.home, "backups") },
    } }, groups: {} };
    const engine = await Engine.open({ env, cwd: home.home, config: parseConfig(raw, "test", env), });
    closers.push(() => engine.close());
    let s: RunSummary = await engine.start({ workflow: "modify-metadata-storage", deployment: "lab", params: { toStore: "elasticsearch", batchSize: 500 } }, "carol", "move lab's catalog to elasticsearch");
    expect(s.pending).toMatchObject({ step: "ProvisionNewStore", kind: "provision" });
    expect(JSON.stringify(s.pending!.gate.change.sections)).toMatch(/Field mapping postgres -> elasticsearch.*geo_shape/);
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(s.pending, s.outcome ?? "").toMatchObject({ step: "SwitchReadTrafficGradually", kind: "traffic" });
    expect(s.pending!.gate.change.traffic?.to).toBe(100);
    const tr = await engine.transcript(s.run);
    const val = tr.steps.find((x) => x.name === "ValidateDataIntegrity")!.output as { comparison: { ok: boolean; sourceCount: number; targetCount: number } };
    expect(val.comparison).toMatchObject({ ok: true, sourceCount: N, targetCount: N });
    expect(cluster.aliases.get("stac-items")).toBeUndefined();
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect([...(cluster.aliases.get("stac-items")?.keys() ?? [])]).toEqual(["stac-items-v1"]);
    // Past the cutover: stop here and roll back (the old store is not retired in this test).
    expect(s.pending, s.outcome ?? "").toMatchObject({ step: "DisableOldStore", kind: "delete" });
    expect((await engine.transcript(s.run)).steps.find((x) => x.name === "SwitchReadTrafficGradually")!.status).toBe("done");
    // Not retired: the delete is rejected, the rollback points the read alias back (it was not set) and offers the index it created.
    s = await engine.decide(s.run, "alice", "reject", { planHash: s.pending!.planHash });
    expect(cluster.aliases.get("stac-items")?.size ?? 0).toBe(0);
    expect(s.pending).toMatchObject({ step: "CleanupAfterRollback", kind: "delete" });
    const rb = (await engine.transcript(s.run)).steps.find((x) => x.name === "Rollback")!.output as { restored: string[]; leftovers: { id: string }[] };
    expect(rb.restored.join(" ")).toMatch(/alias:elasticsearch/);
    expect(rb.leftovers.map((l) => l.id)).toEqual(["target:elasticsearch"]);
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(cluster.indices.has("stac-items-v1")).toBe(false);
    expect(await sql(`SELECT count(*)::int AS n FROM ${SCHEMA}.stac_items`)).toEqual([{ n: N }]);
  }, 60_000);
});
