/**
 * Cache warming and probe benchmark, run on demand (not part of the tests):
 *
 *   npx tsx bench/warm.bench.ts > warm.json
 *
 * Needs Redis at 127.0.0.1:6379 (uses database BENCH_DB, 13 by default, and only the keys it writes) and
 * `redis-benchmark` (Debian redis-tools). Prints ONE JSON object; progress goes to stderr.
 *   1. warm keys/s: the pipelined SETs of 2 KiB tiles with TTL that warming does, with the tiles in hand
 *      (the Redis side alone), and LocalTileOperations.warm through a real local origin over HTTP (end to end);
 *   2. `redis-benchmark -P 16 -t set` on the same Redis in the same run, with the same value size and with the
 *      default 3 bytes: the ceiling to compare with (target: warm >= 0.5x);
 *   3. probe overhead: p50/p95 the HTTP probe measures minus the time the origin spent inside its handler.
 *
 * Knobs: BENCH_TILES (20000), BENCH_DB (13), BENCH_PROBE_S (4), BENCH_REPS (3; medians are reported).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { OpLog } from "../src/store/oplog.js";
import { RedisCacheOptions } from "../src/tools/cache/redis.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { ProbeMetrics, ProbeMetricsOptions, percentile } from "../src/tools/metrics/probe.js";
import { LocalTileOperations, TilesOptions } from "../src/tools/tiles/local.js";
import { tileOf, type Tile } from "../src/tools/tiles/popular.js";
import { startOrigin, tileBody } from "../src/dev/origin.js";

const N = Number(process.env.BENCH_TILES ?? 20_000);
const DB = Number(process.env.BENCH_DB ?? 13);
const PROBE_S = Number(process.env.BENCH_PROBE_S ?? 4);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const WRITE_CONNECTIONS = 2; // TilesOptions.writeConnections default
const PREFIX = "honua-bench:";
const URL_ = `redis://127.0.0.1:6379/${DB}`;
const log = (m: string) => process.stderr.write(`${m}\n`);

const dir = mkdtempSync(join(tmpdir(), "honua-warm-bench-"));
const admin = new Redis(URL_, { maxRetriesPerRequest: 1 });
const oplog = new OpLog(join(dir, "ops.sqlite"));

async function clean() {
  for (const pattern of [`${PREFIX}*`, "key:__rand_int__"]) {
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", pattern, "COUNT", 5000);
      cursor = next;
      if (keys.length) await admin.unlink(...keys);
    } while (cursor !== "0");
  }
}

function redisBenchmark(valueBytes: number, clients = 50): number {
  const res = spawnSync("redis-benchmark", ["-h", "127.0.0.1", "-p", "6379", "--dbnum", String(DB), "-P", "16", "-t", "set", "-c", String(clients), "-n", String(Math.max(N * 5, 100_000)), "-d", String(valueBytes), "-q", "--csv"], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`redis-benchmark failed: ${res.stderr || res.error?.message}`);
  const row = res.stdout.trim().split("\n").find((l) => l.startsWith('"SET"'));
  if (!row) throw new Error(`redis-benchmark printed no SET row: ${res.stdout}`);
  return Number(JSON.parse(`[${row}]`)[1]);
}

try {
  writeFileSync(join(dir, "honua.env"), `Cache__KeyPrefix=${PREFIX}\nCache__LayerTtlSeconds=600\n`);
  const paths = Array.from({ length: N }, (_, i) => `/ogc/tiles/collections/bench/tiles/WebMercatorQuad/${10 + (i % 6)}/${i}/${i % 997}`);
  const tiles: Tile[] = paths.map((p) => tileOf(p)!);
  const bodies = new Map(paths.map((p) => [p, tileBody(p)]));
  const config = new EnvFileConfigStore(join(dir, "honua.env"), oplog, "bench");
  const redis = RedisCacheOptions.parse({ url: URL_, keyPrefix: PREFIX });
  const ops = (originUrl: string, fetchImpl?: typeof fetch) =>
    new LocalTileOperations(TilesOptions.parse({ originUrl, paths: ["/tiles/x/0/0/0.mvt"], redisKey: "{prefix}tile:{layerId}:{tileMatrixSetId}:{z}:{row}:{col}", concurrency: 16 }), { redis, config, log: oplog, deployment: "bench", env: {}, fetch: fetchImpl });

  await clean();
  // 1a. Redis side alone: tiles already in hand, the writer the warm job uses. Interleaved with redis-benchmark
  // (2.) so both see the same machine load; the first pass warms the JIT and is not counted; medians reported.
  const entries = tiles.map((tile, i) => ({ tile, body: bodies.get(paths[i]!)! }));
  const writeOnce = async () => {
    const t0 = performance.now();
    const res = await ops("http://origin.invalid").write(entries);
    const s = (performance.now() - t0) / 1000;
    if (res.written !== N || (await admin.dbsize()) < N) throw new Error(`warm wrote ${res.written}/${N}`);
    await clean();
    return N / s;
  };
  await writeOnce();
  const writeRates: number[] = [], rbSizedRates: number[] = [], rbDefaultRates: number[] = [], rbSameConnRates: number[] = [];
  for (let i = 0; i < REPS; i++) {
    log(`pass ${i + 1}/${REPS}: warm writer, redis-benchmark -P 16 -t set (2 KiB, 3 B)`);
    writeRates.push(await writeOnce());
    rbSizedRates.push(redisBenchmark(2048));
    rbDefaultRates.push(redisBenchmark(3));
    rbSameConnRates.push(redisBenchmark(2048, WRITE_CONNECTIONS));
    await clean();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const warmMem = Math.round(median(writeRates));
  const rbSized = Math.round(median(rbSizedRates));
  const rbDefault = Math.round(median(rbDefaultRates));
  const rbSameConn = Math.round(median(rbSameConnRates));

  // 1b. End to end through a real local origin over HTTP.
  const origin = await startOrigin({ name: "bench", envFile: join(dir, "honua.env"), workMs: 0 });
  log(`warming ${N} tiles (HTTP origin)...`);
  const t0 = performance.now();
  const http = await ops(origin.url).warm(tiles);
  const httpS = (performance.now() - t0) / 1000;
  await clean();

  // 3. Probe overhead against the origin doing 30 ms of work per tile.
  const probeOrigin = await startOrigin({ name: "probe", envFile: join(dir, "honua.env"), workMs: 30 });
  const probe = new ProbeMetrics(ProbeMetricsOptions.parse({ source: "probe", urls: paths.slice(0, 50).map((p) => probeOrigin.url + p), concurrency: 4, pauseMs: 0, minRequestsPerSample: 5 }));
  log(`probing for ${PROBE_S} s...`);
  const from = new Date();
  await probe.clock.sleep(PROBE_S * 1000);
  const samples = await probe.samples(from, new Date(), PROBE_S / 60);
  const server = [...probeOrigin.stats.serverMs].sort((a, b) => a - b);
  const probedP95 = samples[0]?.p95Ms ?? NaN;
  await origin.close();
  await probeOrigin.close();

  const warmHttp = Math.round(N / httpS);
  console.log(JSON.stringify({
    machine: { cpus: cpus().length, loadavg1: Number(loadavg()[0]!.toFixed(2)), node: process.version },
    tiles: N,
    tileBytes: 2048,
    warm: {
      redisOnlyKeysPerSecond: warmMem,
      endToEndKeysPerSecond: warmHttp,
      endToEndFailed: http.failed,
      settings: { writer: "SET EX as RESP, 512 KiB writes", fetchConcurrency: 16, connections: WRITE_CONNECTIONS },
    },
    redisBenchmark: { command: `redis-benchmark -P 16 -t set -c 50 -d 2048 --dbnum ${DB}`, setPerSecond2KiB: rbSized, setPerSecond3B: rbDefault, setPerSecond2KiBSameConnections: rbSameConn },
    passes: { warmWriter: writeRates.map(Math.round), redisBenchmark2KiB: rbSizedRates.map(Math.round), redisBenchmark3B: rbDefaultRates.map(Math.round), redisBenchmark2KiBSameConnections: rbSameConnRates.map(Math.round) },
    ratio: {
      redisOnlyVs2KiB: Number((warmMem / rbSized).toFixed(2)),
      redisOnlyVs2KiBSameConnections: Number((warmMem / rbSameConn).toFixed(2)),
      redisOnlyVs3B: Number((warmMem / rbDefault).toFixed(2)),
      endToEndVs2KiB: Number((warmHttp / rbSized).toFixed(3)),
      target: 0.5,
    },
    probe: {
      requests: samples[0]?.requests ?? 0,
      probedP95Ms: probedP95,
      serverP95Ms: Number(percentile(server, 0.95).toFixed(2)),
      overheadP95Ms: Number((probedP95 - percentile(server, 0.95)).toFixed(2)),
      serverP50Ms: Number(percentile(server, 0.5).toFixed(2)),
    },
  }, null, 2));
} finally {
  await clean().catch(() => undefined);
  await admin.quit();
  oplog.close();
  rmSync(dir, { recursive: true, force: true });
}
