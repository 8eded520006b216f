/**
 * Metadata copy benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:metadata > metadata.json
 *
 * On the local PostgreSQL (HONUA_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres) it seeds a
 * pgstac-layout catalog table (`collection, id, content jsonb`) of BENCH_RECORDS items in a database of its own and,
 * in the same run, copies it two ways into the provisioned target layout (JSONB + GIN, PostGIS GiST, datetime,
 * full-text GIN), each into a fresh schema:
 *   - copy: the workflow's batchCopy (keyset pages, upsert by key with geometry and datetime derived, the cursor
 *     stored with each batch in one transaction), BENCH_BATCH per batch adapted to a 2 s batch;
 *   - baseline: `COPY (SELECT collection, id, content ...) TO STDOUT` piped into `COPY ... FROM STDIN` (pg-copy-streams),
 *     which derives no geometry or datetime and keeps no cursor.
 * Target: copy >= 0.5x the baseline (records/s). Then the change-capture overhead: BENCH_WRITES single-row UPDATEs
 * on the source with and without the capture trigger, alternating in rounds; p50 and p99 of each.
 * Prints ONE JSON object (progress on stderr). Knobs: BENCH_RECORDS (1000000), BENCH_BATCH (5000), BENCH_WRITES (2000), BENCH_CONCURRENCY (2: the next page is read while the last batch is written).
 */
import { randomBytes } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";
import { systemClock } from "../src/core/clock.js";
import { batchCopy } from "../src/graph/patterns/batch-copy.js";
import { PostgresMetadataStore } from "../src/tools/metadata/postgres.js";
import type { MetaRecord, RecordKey } from "../src/tools/metadata/types.js";

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 5000);
const WRITES = Number(process.env.BENCH_WRITES ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2);
const admin = process.env.HONUA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const name = `honua_w17_bench_${randomBytes(3).toString("hex")}`;
const urlOf = (db: string) => {
  const u = new URL(admin);
  u.pathname = `/${db}`;
  return u.toString();
};
const log = (m: string) => process.stderr.write(`${m}\n`);
const q = async (url: string, sql: string) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)]!.toFixed(3));
};

await q(admin, `CREATE DATABASE ${name}`);
const src = urlOf(name);
const dst = urlOf(`${name}_new`);
try {
  let t0 = performance.now();
  await q(src, `CREATE TABLE public.stac_items (id text NOT NULL, collection text NOT NULL, content jsonb NOT NULL, PRIMARY KEY (collection, id))`);
  // Items shaped like the sandbox's (geometry, bbox, datetime, title, keywords, one asset), generated server side.
  await q(src, `INSERT INTO public.stac_items (collection, id, content)
    SELECT 'col-' || (g % 4), 'item-' || lpad(g::text, 8, '0'), jsonb_build_object(
      'type', 'Feature', 'stac_version', '1.0.0', 'id', 'item-' || lpad(g::text, 8, '0'), 'collection', 'col-' || (g % 4),
      'bbox', jsonb_build_array(x, y, x + 0.02, y + 0.02),
      'geometry', jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(jsonb_build_array(jsonb_build_array(x, y), jsonb_build_array(x + 0.02, y), jsonb_build_array(x + 0.02, y + 0.02), jsonb_build_array(x, y + 0.02), jsonb_build_array(x, y)))),
      'properties', jsonb_build_object('datetime', to_char(timestamptz '2024-01-01' + g * interval '7 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'title', 'scene ' || g, 'keywords', jsonb_build_array('landsat', 'imagery')),
      'assets', jsonb_build_object('data', jsonb_build_object('href', 'file:///data/rasters/' || g || '.tif', 'type', 'image/tiff')))
    FROM (SELECT g, (g % 3600) / 10.0 - 180 AS x, (g % 1700) / 10.0 - 85 AS y FROM generate_series(1, ${RECORDS}) g) s`);
  await q(src, "ANALYZE public.stac_items");
  const seedMs = performance.now() - t0;
  log(`seeded ${RECORDS} records in ${(seedMs / 1000).toFixed(1)} s`);

  const source = new PostgresMetadataStore({ url: src, role: "source" });
  const a = new PostgresMetadataStore({ url: dst, role: "target", schema: "copy_a" });
  const b = new PostgresMetadataStore({ url: dst, role: "target", schema: "copy_b" });
  await a.provision();
  await b.provision();

  // Baseline: COPY TO STDOUT piped into COPY FROM STDIN, into the same provisioned layout.
  t0 = performance.now();
  const out = new pg.Client({ connectionString: src });
  const inn = new pg.Client({ connectionString: dst });
  await out.connect();
  await inn.connect();
  await pipeline(
    out.query(copyTo(`COPY (SELECT collection, id, content FROM public.stac_items ORDER BY collection, id) TO STDOUT`)),
    inn.query(copyFrom(`COPY copy_b.items (collection, id, content) FROM STDIN`)),
  );
  await out.end();
  await inn.end();
  const baseMs = performance.now() - t0;
  log(`baseline COPY: ${(baseMs / 1000).toFixed(1)} s`);

  // The workflow's copy.
  const cursor = new Map<string, string>();
  t0 = performance.now();
  const r = await batchCopy<MetaRecord, RecordKey>({
    name: "bench", read: (after, limit) => source.page(after, limit), keyOf: (x) => ({ collection: x.collection, id: x.id }),
    write: (rs, mark) => a.upsert(rs, mark ?? undefined), targetMark: (n) => a.mark(n),
    cursor: { load: async (n) => cursor.get(n) ?? null, save: async (n, v) => void cursor.set(n, v) },
    clock: systemClock, total: RECORDS, batchSize: BATCH, targetBatchMs: 2000, concurrency: CONCURRENCY,
    progress: (p) => p.done % (BATCH * 20) < p.batchSize && log(`copy ${p.done}/${p.total} ${p.rate} rec/s (batch ${p.batchSize})`),
  });
  const copyMs = performance.now() - t0;
  const counts = await q(dst, `SELECT (SELECT count(*) FROM copy_a.items)::int AS a, (SELECT count(*) FROM copy_b.items)::int AS b`);

  // Change-capture overhead on source writes: the same single-row UPDATEs with and without the trigger, in rounds.
  const w = new pg.Client({ connectionString: src });
  await w.connect();
  const timed = async (n: number, off: number) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const g = 1 + ((off + i * 7919) % RECORDS);
      const s = performance.now();
      await w.query(`UPDATE public.stac_items SET content = jsonb_set(content, '{properties,title}', to_jsonb($3::text)) WHERE collection = $1 AND id = $2`, [`col-${g % 4}`, `item-${String(g).padStart(8, "0")}`, `t${off + i}`]);
      ms.push(performance.now() - s);
    }
    return ms;
  };
  const without: number[] = [];
  const withCapture: number[] = [];
  const ROUNDS = 4;
  for (let round = 0; round < ROUNDS; round++) {
    without.push(...(await timed(WRITES / ROUNDS / 2, round * 100_000)));
    await source.capture.start("bench");
    withCapture.push(...(await timed(WRITES / ROUNDS / 2, round * 100_000 + 50_000)));
    await source.capture.stop("bench");
  }
  await w.end();
  await source.close();
  await a.close();
  await b.close();

  const copyRate = Math.round((r.copied / copyMs) * 1000);
  const baseRate = Math.round((RECORDS / baseMs) * 1000);
  process.stdout.write(`${JSON.stringify({
    records: RECORDS,
    machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))) },
    seedSeconds: Number((seedMs / 1000).toFixed(1)),
    copy: { concurrency: CONCURRENCY, recordsPerSecond: copyRate, seconds: Number((copyMs / 1000).toFixed(1)), batches: r.batches, finalBatchSize: r.batchSize, copied: r.copied, onTarget: counts[0]!.a },
    baseline: { recordsPerSecond: baseRate, seconds: Number((baseMs / 1000).toFixed(1)), onTarget: counts[0]!.b, what: "COPY TO STDOUT | COPY FROM STDIN (no geometry/datetime derived, no cursor)" },
    ratio: Number((copyRate / baseRate).toFixed(3)),
    target: ">= 0.5",
    captureOverhead: {
      writes: without.length + withCapture.length,
      withoutMs: { p50: pct(without, 0.5), p99: pct(without, 0.99) },
      withMs: { p50: pct(withCapture, 0.5), p99: pct(withCapture, 0.99) },
      p99Increase: Number((pct(withCapture, 0.99) / pct(without, 0.99) - 1).toFixed(3)),
    },
  }, null, 2)}\n`);
} finally {
  await q(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await q(admin, `DROP DATABASE IF EXISTS ${name}_new WITH (FORCE)`);
}
