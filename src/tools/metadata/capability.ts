import { z } from "zod";
import { isAbsolute, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { AgentError, parseOptions } from "../../core/errors.js";
import { FilesMetadataStore } from "./files.js";
import { PostgresMetadataStore } from "./postgres.js";
import { elasticsearchTransport, opensearchTransport, SearchEngineMetadataStore, type SearchAuth } from "./search-engine.js";
import { describeSection } from "../sections.js";
import { METADATA_EXAMPLE, MetadataSection, type MetadataStoreConfig } from "./section.js";
import { SqliteMetadataStore } from "./sqlite.js";
import type { MetadataCapability, MetadataStore, MetadataStoreKind, SampleQuery } from "./types.js";

describeSection("metadata", { what: "the STAC metadata catalog's store and the stores it may move to", example: METADATA_EXAMPLE });

/** How reads really move to a new store, per target kind: Honua reads its STAC catalog from PostgreSQL only. */
export function readPathOf(kind: MetadataStoreKind, honuaConnection: string | undefined, readAlias?: string): { how: string; config: Record<string, string> } {
  switch (kind) {
    case "postgres":
      return {
        how: honuaConnection
          ? `a canary Honua whose ConnectionStrings__DefaultConnection is ${honuaConnection} serves the router's share of /stac and /stac/search reads; at 100% Honua's own connection moves to it`
          : "a canary Honua pointed at the new database serves the router's share of /stac and /stac/search reads; no honuaConnection reference is configured, so Honua's own connection string is not changed by the agent (point it at the new database when retiring)",
        config: honuaConnection ? { ConnectionStrings__DefaultConnection: honuaConnection } : {},
      };
    case "elasticsearch":
    case "opensearch":
      return {
        how: readAlias
          ? `an alias flip: at 100% the read alias ${readAlias} is pointed at ${readAlias}-v1 in one atomic _aliases call (journalled; a rollback points it back); before that, the router's /stac/search share goes to the search service that queries the new index`
          : `an alias flip: the read alias moves to the new ${kind} index; the router's /stac/search share goes to the search service that queries it`,
        config: {},
      };
    case "sqlite":
    case "files":
      return { how: `Honua has no ${kind} catalog provider: the router's share of /stac reads goes to a static STAC read service over the new ${kind} store; Honua's own config is not changed`, config: {} };
  }
}

/** Timed sampled reads (wall time of each query, the measurement itself). */
export async function timeQueries(store: MetadataStore, queries: readonly SampleQuery[]): Promise<{ p95Ms: number | null; errors: number; reads: number }> {
  const ms: number[] = [];
  let errors = 0;
  for (const q of queries) {
    const t0 = performance.now();
    try {
      await store.query(q);
      ms.push(performance.now() - t0);
    } catch {
      errors++;
    }
  }
  ms.sort((a, b) => a - b);
  const p95 = ms.length ? ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.95) - 1)]! : null;
  return { p95Ms: p95 === null ? null : Number(p95.toFixed(2)), errors, reads: queries.length };
}

function urlOf(v: string, env: NodeJS.ProcessEnv, what: string): string {
  if (!v.startsWith("env:")) return v;
  const got = env[v.slice(4)];
  if (!got) throw new AgentError("bad-input", `${what}: ${v} is not set in the environment`);
  return got;
}

function refOf(ref: string, env: NodeJS.ProcessEnv, what: string): string {
  const got = env[ref.slice(4)];
  if (!got) throw new AgentError("bad-input", `${what}: ${ref} is not set in the environment`);
  return got;
}

/** The metadata capability of a `local`/`aws` deployment, from its `metadata:` section. */
export class RealMetadata implements MetadataCapability {
  private readonly section: MetadataSection;
  private readonly stores = new Map<string, MetadataStore>();
  readonly backupDir: string;

  readonly splitReads: boolean;

  constructor(raw: unknown, private readonly deployment: string, private readonly o: { env: NodeJS.ProcessEnv; cwd: string; stateDir: string; splitReads?: boolean }) {
    this.splitReads = o.splitReads ?? false;
    this.section = parseOptions(MetadataSection, raw, `deployment ${deployment} metadata`);
    this.backupDir = isAbsolute(this.section.backupDir) ? this.section.backupDir : resolve(o.cwd, this.section.backupDir);
  }

  get sourceKind(): MetadataStoreKind {
    return this.section.store;
  }

  get targets(): MetadataStoreKind[] {
    return this.section.targets.map((t) => t.store);
  }

  private build(c: MetadataStoreConfig, role: "source" | "target"): MetadataStore {
    const path = (p: string) => (isAbsolute(p) ? p : resolve(this.o.cwd, p));
    switch (c.store) {
      case "postgres":
        return new PostgresMetadataStore({ url: urlOf(c.url, this.o.env, `deployment ${this.deployment} metadata`), role, ...(c.table ? { table: c.table } : {}), ...(c.schema ? { schema: c.schema } : {}) });
      case "sqlite":
        return new SqliteMetadataStore({ path: path(c.path), ...(c.table ? { table: c.table } : {}) });
      case "files":
        return new FilesMetadataStore({ path: path(c.path), stateDir: join(this.o.stateDir, "metadata-capture") });
      case "elasticsearch":
      case "opensearch": {
        const what = `deployment ${this.deployment} metadata ${c.store} auth`;
        const auth: SearchAuth | undefined = !c.auth ? undefined : "apiKey" in c.auth ? { apiKey: refOf(c.auth.apiKey, this.o.env, what) } : { username: refOf(c.auth.username, this.o.env, what), password: refOf(c.auth.password, this.o.env, what) };
        const transport = c.store === "elasticsearch" ? elasticsearchTransport({ node: c.node, ...(auth ? { auth } : {}) }) : opensearchTransport({ node: c.node, ...(auth ? { auth } : {}) });
        return new SearchEngineMetadataStore({ product: c.store, node: c.node, index: c.index, transport });
      }
    }
  }

  source(): MetadataStore {
    let s = this.stores.get("source");
    if (!s) this.stores.set("source", (s = this.build(this.section, "source")));
    return s;
  }

  private targetConfig(kind: MetadataStoreKind): MetadataStoreConfig {
    const c = this.section.targets.find((t) => t.store === kind);
    if (!c) {
      const have = this.targets.length ? this.targets.join(", ") : "none";
      throw new AgentError("bad-input", `deployment ${this.deployment} has no ${kind} target in its metadata section (targets: ${have}); add one, e.g. targets: [{ store: ${kind}, ${kind === "postgres" ? "url: env:NEW_CATALOG_URL" : kind === "elasticsearch" || kind === "opensearch" ? "node: https://search.internal:9200, index: stac-items" : "path: ..."} }]`);
    }
    return c;
  }

  target(kind: MetadataStoreKind): MetadataStore {
    let s = this.stores.get(`target:${kind}`);
    if (!s) this.stores.set(`target:${kind}`, (s = this.build(this.targetConfig(kind), "target")));
    return s;
  }

  readPath(kind: MetadataStoreKind) {
    const c = this.section.targets.find((t) => t.store === kind);
    return readPathOf(kind, c?.store === "postgres" ? c.honuaConnection : undefined, c?.store === "elasticsearch" || c?.store === "opensearch" ? c.index : undefined);
  }

  probe(store: MetadataStore, queries: readonly SampleQuery[]) {
    return timeQueries(store, queries);
  }

  async deprovision(id: string): Promise<void> {
    const kind = id.replace(/^target:/, "") as MetadataStoreKind;
    await this.target(kind).deprovision();
  }

  async restore(target: string, value: string): Promise<void> {
    if (target.startsWith("alias:")) {
      const kind = target.slice("alias:".length) as MetadataStoreKind;
      const alias = this.target(kind).readAlias;
      if (!alias) throw new AgentError("failed", `metadata cannot restore ${target}: the ${kind} target has no read alias`);
      await alias.point(z.array(z.string()).parse(JSON.parse(value)));
      return;
    }
    if (!target.startsWith("capture:") || value !== "off") throw new AgentError("failed", `metadata cannot restore ${target} to ${value}`);
    await this.source().capture?.stop(target.slice("capture:".length));
  }

  async close(): Promise<void> {
    for (const s of this.stores.values()) await s.close();
  }
}
