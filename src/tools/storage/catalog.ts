import pg from "pg";
import { AgentError } from "../../core/errors.js";
import type { CatalogAsset, HrefChange, StacCatalog } from "./types.js";

/** Coarse regions by bounding box (lon/lat of the item's centre), for residency rules when an item names none. */
const REGIONS: { region: string; box: [number, number, number, number] }[] = [
  { region: "eu", box: [-25, 34, 45, 72] },
  { region: "us", box: [-170, 18, -50, 72] },
  { region: "sa", box: [-92, -56, -30, 18] },
  { region: "af", box: [-20, -36, 52, 34] },
  { region: "ap", box: [60, -50, 180, 60] },
];

export function regionOfItem(content: { bbox?: unknown; properties?: Record<string, unknown> }): string | null {
  const p = content.properties ?? {};
  const named = p.region ?? p["honua:region"];
  if (typeof named === "string" && named) return named.toLowerCase();
  const b = Array.isArray(content.bbox) ? content.bbox.map(Number) : [];
  if (b.length < 4 || b.some((x) => !Number.isFinite(x))) return null;
  const [w, s, e, n] = b.length >= 6 ? [b[0]!, b[1]!, b[3]!, b[4]!] : [b[0]!, b[1]!, b[2]!, b[3]!];
  const lon = (w + e) / 2;
  const lat = (s + n) / 2;
  return REGIONS.find((r) => lon >= r.box[0] && lat >= r.box[1] && lon <= r.box[2] && lat <= r.box[3])?.region ?? null;
}

interface ItemContent {
  bbox?: unknown;
  properties?: Record<string, unknown>;
  assets?: Record<string, { href?: unknown; type?: unknown }>;
}

/** Every asset with an href of one item, in key order. */
export function assetsOfItem(collection: string, item: string, content: ItemContent): CatalogAsset[] {
  const p = content.properties ?? {};
  const datetime = [p.datetime, p.start_datetime, p.created].find((x): x is string => typeof x === "string" && x !== "") ?? null;
  const region = regionOfItem(content);
  return Object.entries(content.assets ?? {})
    .filter(([, a]) => typeof a?.href === "string")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([asset, a]) => ({ collection, item, asset, href: a.href as string, datetime, region, mediaType: typeof a.type === "string" ? a.type : null }));
}

/** Changes in rounds where no item appears twice, so one UPDATE per round sets each row once. */
function rounds<T extends { collection: string; item: string }>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  const seen = new Map<string, number>();
  for (const x of xs) {
    const id = `${x.collection}\u0000${x.item}`;
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    (out[n] ??= []).push(x);
  }
  return out;
}

/**
 * Honua's STAC items in PostgreSQL (`collection`, `id`, `content jsonb`: the pgstac layout). Asset hrefs change by
 * jsonb_set on the one string, so the rest of each item is left exactly as it was; every rewrite is one transaction.
 */
export class PostgresStacCatalog implements StacCatalog {
  private readonly pool: pg.Pool;
  private readonly table: string;

  constructor(url: string, table: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
    this.pool.on("error", () => undefined); // an idle connection dropped by the server: the next query reconnects
    this.table = table.split(".").map((p) => `"${p}"`).join(".");
  }

  describe(): string {
    return `STAC items in PostgreSQL table ${this.table.replace(/"/g, "")}`;
  }

  async assets(): Promise<CatalogAsset[]> {
    const r = await this.pool.query<{ collection: string; id: string; content: ItemContent }>(`SELECT collection, id, content FROM ${this.table} ORDER BY collection, id`);
    return r.rows.flatMap((row) => assetsOfItem(row.collection, row.id, row.content));
  }

  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const out = await f(c);
      await c.query("COMMIT");
      return out;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  private async set(c: pg.PoolClient, xs: readonly { collection: string; item: string; asset: string; href: string }[], onlyWhere: ((x: { collection: string; item: string; asset: string }) => string[]) | null): Promise<number> {
    let n = 0;
    for (const round of rounds(xs)) {
      const guard = onlyWhere ? round.map((x) => onlyWhere(x)) : null;
      const r = await c.query(
        `UPDATE ${this.table} AS t SET content = jsonb_set(t.content, ARRAY['assets', v.asset, 'href'], to_jsonb(v.href))
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS v(collection, id, asset, href, was, also)
          WHERE t.collection = v.collection AND t.id = v.id AND t.content->'assets' ? v.asset
            AND ($7::boolean OR t.content->'assets'->v.asset->>'href' IN (v.was, v.also))
            AND t.content->'assets'->v.asset->>'href' IS DISTINCT FROM v.href`,
        [
          round.map((x) => x.collection), round.map((x) => x.item), round.map((x) => x.asset), round.map((x) => x.href),
          round.map((_, i) => guard?.[i]?.[0] ?? ""), round.map((_, i) => guard?.[i]?.[1] ?? ""), guard === null,
        ],
      );
      n += r.rowCount ?? 0;
    }
    return n;
  }

  async rewrite(changes: readonly HrefChange[], _key: string): Promise<number> {
    if (changes.length === 0) return 0;
    return this.tx(async (c) => {
      // Lock the rows, then check every href is still what the plan saw (or already the new one: a replay).
      const ids = [...new Set(changes.map((x) => `${x.collection}\u0000${x.item}`))].map((s) => s.split("\u0000") as [string, string]);
      const cur = await c.query<{ collection: string; id: string; content: ItemContent }>(
        `SELECT collection, id, content FROM ${this.table} WHERE (collection, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) FOR UPDATE`,
        [ids.map((x) => x[0]), ids.map((x) => x[1])],
      );
      const now = new Map(cur.rows.map((r) => [`${r.collection}\u0000${r.id}`, r.content]));
      const moved = changes.filter((x) => {
        const href = now.get(`${x.collection}\u0000${x.item}`)?.assets?.[x.asset]?.href;
        return href !== x.from && href !== x.to;
      });
      if (moved.length) {
        const first = moved[0]!;
        const href = now.get(`${first.collection}\u0000${first.item}`)?.assets?.[first.asset]?.href;
        throw new AgentError("conflict", `${moved.length} asset href(s) changed since the plan (e.g. ${first.collection}/${first.item} ${first.asset} is now ${href === undefined ? "gone" : JSON.stringify(href)}, the plan saw ${JSON.stringify(first.from)}): nothing was rewritten`);
      }
      const by = new Map(changes.map((x) => [`${x.collection}\u0000${x.item}\u0000${x.asset}`, x]));
      return this.set(c, changes.map((x) => ({ ...x, href: x.to })), (x) => {
        const ch = by.get(`${x.collection}\u0000${x.item}\u0000${x.asset}`)!;
        return [ch.from, ch.to];
      });
    });
  }

  async restore(values: readonly { collection: string; item: string; asset: string; href: string }[], _key: string): Promise<number> {
    if (values.length === 0) return 0;
    return this.tx((c) => this.set(c, values, null));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
