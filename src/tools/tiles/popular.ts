import { open, stat } from "node:fs/promises";
import { AgentError } from "../../core/errors.js";

/** One tile as Honua serves it. `form` says which URL family it came from, so it can be requested again. */
export interface Tile {
  form: "ogc" | "mvt";
  layerId: string;
  tileMatrixSetId: string;
  z: number;
  row: number;
  col: number;
}

const OGC = /\/ogc\/tiles\/collections\/([^/?\s]+)\/tiles\/([^/?\s]+)\/(\d+)\/(\d+)\/(\d+)(?=[?\s"]|$)/;
const MVT = /\/tiles\/([^/?\s]+)\/(\d+)\/(\d+)\/(\d+)\.mvt(?=[?\s"]|$)/;
/** Vector tiles are addressed z/x/y in Web Mercator. */
export const MVT_MATRIX_SET = "WebMercatorQuad";

/** The tile a request path names, if it names one (`/ogc/tiles/...` or `/tiles/{layer}/{z}/{x}/{y}.mvt`). */
export function tileOf(path: string): Tile | undefined {
  const o = OGC.exec(path);
  if (o) return { form: "ogc", layerId: decodeURIComponent(o[1]!), tileMatrixSetId: decodeURIComponent(o[2]!), z: Number(o[3]), row: Number(o[4]), col: Number(o[5]) };
  const m = MVT.exec(path);
  if (m) return { form: "mvt", layerId: decodeURIComponent(m[1]!), tileMatrixSetId: MVT_MATRIX_SET, z: Number(m[2]), row: Number(m[4]), col: Number(m[3]) };
  return undefined;
}

export function tilePath(t: Tile): string {
  return t.form === "ogc"
    ? `/ogc/tiles/collections/${encodeURIComponent(t.layerId)}/tiles/${encodeURIComponent(t.tileMatrixSetId)}/${t.z}/${t.row}/${t.col}`
    : `/tiles/${encodeURIComponent(t.layerId)}/${t.z}/${t.col}/${t.row}.mvt`;
}

export const tileId = (t: Tile): string => `${t.form}|${t.layerId}|${t.tileMatrixSetId}|${t.z}|${t.row}|${t.col}`;

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const STAMP = /\[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\]/;

function stampOf(line: string): number | undefined {
  const m = STAMP.exec(line);
  if (!m) return undefined;
  const [, d, mon, y, hh, mm, ss, tz] = m;
  const month = MONTHS[mon!];
  if (month === undefined) return undefined;
  const sign = tz!.startsWith("-") ? -1 : 1;
  const offset = sign * (Number(tz!.slice(1, 3)) * 60 + Number(tz!.slice(3, 5)));
  return Date.UTC(Number(y), month, Number(d), Number(hh), Number(mm), Number(ss)) - offset * 60_000;
}

export interface TileCount {
  tile: Tile;
  count: number;
}

export interface Popularity {
  tiles: TileCount[];
  /** Hours the counted lines span (at least one minute), for per-hour rates. */
  hours: number;
}

/**
 * Counts tile requests in an access log (nginx/Apache "combined" or "common": the request line and the
 * `[time]` field). Only the last `maxBytes` are read: popularity is about recent traffic, and logs grow.
 */
export async function countAccessLog(path: string, maxBytes: number): Promise<Popularity> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new AgentError(e.code === "ENOENT" ? "not-found" : "unavailable", `tiles.accessLog: ${path} cannot be read (${e.code ?? e.message}); it says which tiles are popular`);
  });
  if (!info.isFile()) throw new AgentError("bad-input", `tiles.accessLog: ${path} is not a file`);
  const size = info.size;
  const start = Math.max(0, size - maxBytes);
  const fh = await open(path, "r");
  let text: string;
  try {
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    text = buf.toString("utf8");
  } finally {
    await fh.close();
  }
  const lines = text.split("\n");
  if (start > 0) lines.shift(); // a partial first line
  const counts = new Map<string, TileCount>();
  let first = Infinity, last = -Infinity;
  for (const line of lines) {
    const req = /"(?:GET|HEAD) ([^ "]+)[^"]*" (\d{3})/.exec(line);
    if (!req || !req[2]!.startsWith("2")) continue;
    const tile = tileOf(req[1]!);
    if (!tile) continue;
    const id = tileId(tile);
    const c = counts.get(id) ?? { tile, count: 0 };
    c.count++;
    counts.set(id, c);
    const at = stampOf(line);
    if (at !== undefined) {
      first = Math.min(first, at);
      last = Math.max(last, at);
    }
  }
  const hours = Number.isFinite(first) ? Math.max((last - first) / 3600_000, 1 / 60) : 1;
  return { tiles: [...counts.values()].sort((a, b) => b.count - a.count), hours };
}
