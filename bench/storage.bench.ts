/**
 * Storage copy benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:storage > storage.json
 *
 * Copies the same files from a directory to a real S3-compatible server (s3rver, started here on 127.0.0.1) two
 * ways in one run, alternating, and prints ONE JSON object (progress on stderr):
 *   - copy: the workflow's copy (copyPlan: batchCopy's batches and cursor, each object streamed through SHA-256 and MD5, HEAD before and after, verified by the
 *     store's checksum, recorded in the idempotency journal), batch 32, concurrency 4;
 *   - baseline: a plain @aws-sdk/client-s3 loop, one PutObject per file from a read stream, nothing else.
 * Each into its own fresh bucket; medians over BENCH_REPS. Target: copy >= 0.7x the baseline (MB/s and objects/s).
 *
 * Knobs: BENCH_FILES (120), BENCH_KB (512), BENCH_REPS (3), BENCH_CONCURRENCY (4).
 */
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { OpLog } from "../src/store/oplog.js";
import type { CopyItem } from "../src/tools/storage/copy.js";
import { copyPlan } from "../src/graph/workflows/add-storage-backend/copy.js";
import { systemClock } from "../src/core/clock.js";
import { RealStorage } from "../src/tools/storage/real.js";
import { s3Client } from "../src/tools/storage/s3.js";
import { StorageSection } from "../src/tools/storage/section.js";
import { S3RVER_CREDENTIALS, startS3rver } from "../test/fixtures/object-stores.js";

const FILES = Number(process.env.BENCH_FILES ?? 120);
const KB = Number(process.env.BENCH_KB ?? 512);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), "honua-storage-bench-"));
const src = join(dir, "rasters");
mkdirSync(join(src, "scenes"), { recursive: true });
const keys: string[] = [];
for (let i = 0; i < FILES; i++) {
  const key = `scenes/scene-${String(i).padStart(4, "0")}.tif`;
  writeFileSync(join(src, key), randomBytes(KB * 1024));
  keys.push(key);
}
const totalBytes = FILES * KB * 1024;
const s3 = await startS3rver(join(dir, "s3rver"));
const env = { ...process.env, BENCH_S3_KEY: S3RVER_CREDENTIALS.accessKeyId, BENCH_S3_SECRET: S3RVER_CREDENTIALS.secretAccessKey };
const section = StorageSection.parse({
  backends: [
    { name: "primary", kind: "filesystem", path: src },
    { name: "s3", kind: "s3", endpoint: s3.endpoint, credentials: { accessKeyId: "env:BENCH_S3_KEY", secretAccessKey: "env:BENCH_S3_SECRET" } },
  ],
});
const log = new OpLog(join(dir, "ops.sqlite"));
const client = await s3Client({ region: "us-east-1", endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS, checksums: "when-required" });

async function viaCopy(rep: number): Promise<number> {
  const bucket = `copy-${rep}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const storage = new RealStorage(section, log, "bench", env);
  const from = storage.store({ backend: "primary", kind: "filesystem", container: src, region: null, prefix: "" });
  const plan: CopyItem[] = keys.map((k) => ({ source: from.hrefOf(k), target: { backend: "s3", kind: "s3", container: bucket, region: "us-east-1", prefix: "" }, key: k, contentType: "image/tiff" }));
  const t0 = performance.now();
  const saved = new Map<string, string>();
  const cursor = await copyPlan(storage, plan, {
    copyKey: `bench-${rep}`, batchSize: 32, concurrency: CONCURRENCY, attempts: 3, totalBytes, clock: systemClock,
    cursor: { load: async (n) => saved.get(n) ?? null, save: async (n, v) => void saved.set(n, v) },
  });
  const s = (performance.now() - t0) / 1000;
  if (cursor.copied !== FILES || cursor.failed.length) throw new Error(`copy: ${JSON.stringify(cursor)}`);
  return s;
}

async function viaSdkLoop(rep: number): Promise<number> {
  const bucket = `plain-${rep}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const t0 = performance.now();
  for (const k of keys) await client.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: createReadStream(join(src, k)), ContentLength: KB * 1024, ContentType: "image/tiff" }));
  return (performance.now() - t0) / 1000;
}

const copy: number[] = [];
const plain: number[] = [];
try {
  await viaSdkLoop(-1); // warm-up: connections, JIT
  for (let r = 0; r < REPS; r++) {
    plain.push(await viaSdkLoop(r));
    copy.push(await viaCopy(r));
    process.stderr.write(`rep ${r + 1}/${REPS}: copy ${copy.at(-1)!.toFixed(2)} s, sdk loop ${plain.at(-1)!.toFixed(2)} s\n`);
  }
} finally {
  log.close();
  await s3.close();
  rmSync(dir, { recursive: true, force: true });
}
const rate = (s: number) => ({ seconds: Number(s.toFixed(3)), mbPerSec: Number((totalBytes / 1e6 / s).toFixed(2)), objectsPerSec: Number((FILES / s).toFixed(1)) });
const c = rate(median(copy));
const b = rate(median(plain));
console.log(JSON.stringify({
  benchmark: "storage copy filesystem -> S3-compatible server (s3rver)",
  files: FILES, kbEach: KB, totalMB: Number((totalBytes / 1e6).toFixed(1)), reps: REPS, concurrency: CONCURRENCY,
  copy: { ...c, verifies: "size + the store's MD5 (ETag) per object; HEAD before and after; journal record" },
  baseline: { ...b, what: "plain @aws-sdk/client-s3 PutObject loop from read streams, no verification" },
  ratio: { mbPerSec: Number((c.mbPerSec / b.mbPerSec).toFixed(2)), objectsPerSec: Number((c.objectsPerSec / b.objectsPerSec).toFixed(2)), target: 0.7 },
  machine: { cpus: cpus().length, load1: Number(loadavg()[0]!.toFixed(2)), node: process.version },
}, null, 2));
