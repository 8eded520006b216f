import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer, request, type Server } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryJournal } from "../src/core/journal.js";
import { rollbackFromJournal } from "../src/graph/rollback.js";
import type { StepContext } from "../src/graph/step.js";
import { OpLog } from "../src/store/oplog.js";
import { systemClock } from "../src/core/clock.js";
import { copyPlan, type PlanCopy } from "../src/graph/workflows/add-storage-backend/copy.js";
import type { CopyItem } from "../src/tools/storage/copy.js";
import { connectivityProbe, digestOf } from "../src/tools/storage/probe.js";
import { RealStorage } from "../src/tools/storage/real.js";
import { StorageSection } from "../src/tools/storage/section.js";
import { assetTarget, type BackendTarget, type StorageCapability } from "../src/tools/storage/types.js";
import { AZURITE_ACCOUNT, AZURITE_KEY, S3RVER_CREDENTIALS, startAzurite, startS3rver, type AzuriteHandle, type S3rverHandle } from "./fixtures/object-stores.js";
import { postgresTestDatabase, tempHome } from "./helpers.js";

const pgdb = postgresTestDatabase("storage_real");
const SETTINGS = { versioning: true, encryption: "AES256", blockPublicAccess: true, lifecycle: null };
const ROOT = new URL("..", import.meta.url).pathname;

/** Forwards to s3rver, flipping one byte of every PUT body whose path contains `corrupt`: bytes damaged in transit. */
async function corruptingProxy(target: string): Promise<{ url: string; server: Server }> {
  const t = new URL(target);
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      if (req.method === "PUT" && req.url?.includes("corrupt") && body.length > 0) body[body.length >> 1]! ^= 0xff;
      const up = request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on("error", () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe("storage adapters against real servers (s3rver, Azurite, the filesystem, PostgreSQL)", () => {
  const t = tempHome();
  let s3: S3rverHandle;
  let az: AzuriteHandle;
  let proxy: { url: string; server: Server };
  const primary = join(t.home, "rasters");
  const env = { ...process.env, S3_KEY: S3RVER_CREDENTIALS.accessKeyId, S3_SECRET: S3RVER_CREDENTIALS.secretAccessKey, AZ_CONN: "" };
  const files = new Map<string, Buffer>();
  let log: OpLog;

  const section = (extra: Record<string, unknown> = {}) => StorageSection.parse({
    backends: [
      { name: "primary", kind: "filesystem", path: primary },
      { name: "cold", kind: "s3", bucket: "cold-rasters", endpoint: s3.endpoint, credentials: { accessKeyId: "env:S3_KEY", secretAccessKey: "env:S3_SECRET" }, multipartThresholdMb: 0.25, ...extra },
      { name: "flaky", kind: "s3", bucket: "flaky-rasters", endpoint: proxy.url, credentials: { accessKeyId: "env:S3_KEY", secretAccessKey: "env:S3_SECRET" } },
      { name: "gcs", kind: "gcs", bucket: "gcs-rasters", endpoint: s3.endpoint, hmac: { accessId: "env:S3_KEY", secret: "env:S3_SECRET" } },
      { name: "eu", kind: "azure-blob", account: AZURITE_ACCOUNT, endpoint: az.endpoint, container: "eu-rasters", credentials: { connectionString: "env:AZ_CONN" } },
    ],
    catalog: { url: pgdb.url, table: "stac_items" },
  });
  const target = (backend: string, kind: BackendTarget["kind"], container: string): BackendTarget => ({ backend, kind, container, region: "us-east-1", prefix: "" });
  const planTo = (storage: StorageCapability, to: BackendTarget, keys: string[]): CopyItem[] =>
    keys.map((k) => ({ source: storage.store(target("primary", "filesystem", primary)).hrefOf(k), target: to, key: k, contentType: "image/tiff" }));
  const copyAll = (storage: StorageCapability, plan: CopyItem[], copyKey: string, concurrency = 3): Promise<PlanCopy> => {
    // A cursor of this call's own: a second call starts over and finds what is verified in the ledger.
    const saved = new Map<string, string>();
    return copyPlan(storage, plan, { copyKey, batchSize: 5, concurrency, attempts: 3, clock: systemClock, cursor: { load: async (n) => saved.get(n) ?? null, save: async (n, v) => void saved.set(n, v) } });
  };

  beforeAll(async () => {
    s3 = await startS3rver(join(t.home, "s3rver"));
    az = await startAzurite(join(t.home, "azurite"));
    env.AZ_CONN = az.connectionString;
    proxy = await corruptingProxy(s3.endpoint);
    log = new OpLog(join(t.home, "ops.sqlite"));
    for (let i = 0; i < 24; i++) {
      const key = `imagery/scene-${String(i).padStart(2, "0")}${i === 7 ? "-corrupt" : ""}.tif`;
      const body = randomBytes(i === 3 ? 600 * 1024 : 20 * 1024 + i * 100); // scene-03 is uploaded in parts
      mkdirSync(join(primary, "imagery"), { recursive: true });
      writeFileSync(join(primary, key), body);
      files.set(key, body);
    }
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    await c.query(`CREATE TABLE stac_items (collection text NOT NULL, id text NOT NULL, content jsonb NOT NULL, PRIMARY KEY (collection, id))`);
    await c.end();
  }, 60_000);
  afterAll(async () => {
    log?.close();
    await az?.close();
    await s3?.close();
    await new Promise((r) => proxy?.server.close(r));
    t.cleanup();
  });

  it("a bucket whose owner (as s3rver reports it) is not the expected owner is refused, not adopted; the deployment's own bucket is adopted", async () => {
    const mine = new RealStorage(section(), log, "local", env);
    const created = await mine.provision(target("cold", "s3", "cold-rasters"), SETTINGS, "run1:ProvisionStorageBackend:0");
    expect(created).toMatchObject({ created: true, id: "cold/cold-rasters" });
    // s3rver implements no versioning, encryption or public access block: reported as not set, never faked.
    expect(created.settings.filter((x) => x.outcome === "unsupported").map((x) => x.setting).sort()).toEqual(["encryption", "public-access", "versioning"]);
    const again = await new RealStorage(section(), log, "local", env).provision(target("cold", "s3", "cold-rasters"), SETTINGS, "run2:ProvisionStorageBackend:0");
    expect(again).toMatchObject({ created: false, owner: "123456789000" });
    const strict = new RealStorage(section({ expectedOwner: "111122223333" }), log, "local", env);
    const seen = await strict.inspect(target("cold", "s3", "cold-rasters"), SETTINGS);
    expect(seen.refuse).toMatch(/owned by 123456789000, not by 111122223333.*does not adopt someone else's bucket/);
    await expect(strict.provision(target("cold", "s3", "cold-rasters"), SETTINGS, "run3:ProvisionStorageBackend:0")).rejects.toThrow(/does not adopt/);
    expect(await strict.provisioned("run3:ProvisionStorageBackend:0")).toBeNull();
    expect(await mine.provisioned("run1:ProvisionStorageBackend:0")).toMatchObject({ id: "cold/cold-rasters" });
    await expect(mine.deprovision("cold/flaky-elsewhere", "run1:cleanup")).rejects.toThrow(/not created by honua-agent/);
  });

  it("copies filesystem -> S3 (s3rver) streaming, in parts above the threshold, each object verified by size and the store's MD5 (its ETag), and a second pass under the same key writes nothing", async () => {
    const storage = new RealStorage(section(), log, "local", env);
    const to = target("cold", "s3", "cold-rasters");
    await storage.provision(to, SETTINGS, "copy1:prov");
    const keys = [...files.keys()].filter((k) => !k.includes("corrupt"));
    const cursor = await copyAll(storage, planTo(storage, to, keys), "copy1");
    expect(cursor).toMatchObject({ objects: keys.length, copied: keys.length, alreadyThere: 0, failed: [], batches: 5, resumed: false });
    const written = await storage.ledger.written("copy1");
    expect(written).toHaveLength(keys.length);
    for (const w of written) {
      const key = w.source.split("/rasters/")[1]!;
      expect(w.sha256).toBe(createHash("sha256").update(files.get(key)!).digest("hex"));
      const d = await digestOf(await storage.store(to).read(key));
      expect(d.sha256).toBe(w.sha256);
    }
    expect(new Set(written.map((w) => w.verifiedBy))).toEqual(new Set(["size + the store's MD5"]));
    // Again under the same key: nothing is written twice.
    const before = s3.puts.length;
    expect(await copyAll(storage, planTo(storage, to, keys), "copy1")).toMatchObject({ copied: 0, alreadyThere: keys.length });
    expect(s3.puts.length).toBe(before);
  });

  it("an object damaged in transit is detected by hash, deleted, retried and then reported as failed; a corrupt object found at the destination is replaced", async () => {
    const storage = new RealStorage(section(), log, "local", env);
    const flaky = target("flaky", "s3", "flaky-rasters");
    await storage.provision(flaky, SETTINGS, "copy2:prov");
    const keys = ["imagery/scene-06.tif", "imagery/scene-07-corrupt.tif", "imagery/scene-08.tif"];
    const cursor = await copyAll(storage, planTo(storage, flaky, keys), "copy2");
    expect(cursor.copied).toBe(2);
    expect(cursor.retried).toBe(2);
    expect(cursor.failed).toEqual([{ source: expect.stringContaining("scene-07-corrupt.tif"), reason: expect.stringMatching(/hash mismatch: .*the store's md5 is [0-9a-f]{32}, the source's [0-9a-f]{32} \(after 3 attempts\)/) }]);
    expect(await storage.store(flaky).head("imagery/scene-07-corrupt.tif")).toBeNull(); // never left behind as if copied
    expect((await storage.ledger.written("copy2")).map((w) => w.source)).not.toContainEqual(expect.stringContaining("corrupt"));

    // Same size, other bytes at the destination (e.g. an earlier bad copy): the hash catches it and it is rewritten.
    const cold = storage.store(target("cold", "s3", "cold-rasters"));
    const bad = Buffer.from(files.get("imagery/scene-09.tif")!);
    bad[10]! ^= 1;
    await cold.write("imagery/scene-09.tif", Readable.from([bad]), bad.length);
    const c2 = await copyAll(storage, planTo(storage, target("cold", "s3", "cold-rasters"), ["imagery/scene-09.tif"]), "copy3");
    expect(c2).toMatchObject({ copied: 1, alreadyThere: 0, failed: [] });
    expect((await digestOf(await cold.read("imagery/scene-09.tif"))).sha256).toBe(createHash("sha256").update(files.get("imagery/scene-09.tif")!).digest("hex"));
  });

  it("a copy killed mid-way resumes in another process with no object written twice", async () => {
    const to = target("cold", "s3", "resume-rasters");
    const storage = new RealStorage(section(), log, "local", env);
    await storage.provision(to, SETTINGS, "copy4:prov");
    const plan = planTo(storage, to, [...files.keys()].filter((k) => !k.includes("corrupt")));
    const opPath = join(t.home, "resume.sqlite");
    const puts = () => s3.puts.filter((k) => plan.some((p) => `resume-rasters/${p.key}` === k));
    const start = s3.puts.length;
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "test/fixtures/copy-child.ts"), JSON.stringify(section()), JSON.stringify(plan), opPath, "copy4"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const tick = setInterval(() => {
        if (s3.puts.length - start >= 6) {
          clearInterval(tick);
          child.kill("SIGKILL");
          resolve();
        }
      }, 2);
      child.once("exit", (code) => {
        clearInterval(tick);
        if (code !== null) reject(new Error(`the child finished (${code}) before it was killed: ${err}`));
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    const atKill = puts().length;
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(plan.length);
    const resumed = new RealStorage(section(), new OpLog(opPath), "local", env);
    const cursor = await copyAll(resumed, plan, "copy4", 2);
    expect(cursor.failed).toEqual([]);
    expect(cursor.copied + cursor.alreadyThere).toBe(plan.length);
    expect(cursor.copied).toBe(plan.length - atKill);
    const counts = new Map<string, number>();
    for (const k of puts()) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(counts.size).toBe(plan.length);
    expect(await resumed.ledger.written("copy4")).toHaveLength(plan.length);
  });

  it("stopped between batches, the copy resumes from its saved cursor without visiting what it passed; a failure from before the restart is still reported; a cursor from another plan is refused", async () => {
    const storage = new RealStorage(section(), log, "local", env);
    const to = target("cold", "s3", "cursor-rasters");
    await storage.provision(to, SETTINGS, "copy5:prov");
    const keys = [...files.keys()].filter((k) => !k.includes("corrupt")).slice(0, 9);
    const plan = planTo(storage, to, keys);
    const saved = new Map<string, string>();
    const cursor = { load: async (n: string) => saved.get(n) ?? null, save: async (n: string, v: string) => void saved.set(n, v) };
    let asked = 0;
    const first = await copyPlan(storage, plan, { copyKey: "copy5", batchSize: 3, concurrency: 2, attempts: 1, clock: systemClock, cursor, stop: async () => (++asked > 2 ? "stop requested" : null) }).catch((e: unknown) => e);
    expect((first as Error).message).toMatch(/^copy stopped after 6 objects \(stop requested\); the cursor is saved/);
    // One object of the first batches lost from the ledger (as if it had failed there): reported, not skipped in silence.
    const lost = plan[1]!.source;
    const heads = () => s3.puts.filter((k) => k.startsWith("cursor-rasters/")).length;
    const before = heads();
    const forgetful: StorageCapability = Object.assign(Object.create(storage) as StorageCapability, {
      ledger: { written: async (k: string) => (await storage.ledger.written(k)).filter((w) => w.source !== lost), record: storage.ledger.record.bind(storage.ledger) },
    });
    const again = await copyPlan(forgetful, plan, { copyKey: "copy5", batchSize: 3, concurrency: 2, attempts: 1, clock: systemClock, cursor });
    expect(again).toMatchObject({ resumed: true, copied: 3, alreadyThere: 0, batches: 3 });
    expect(heads() - before).toBe(3); // only the last batch's objects were written
    expect(again.failed).toEqual([{ source: lost, reason: "not verified at the destination (it failed before the copy was resumed)" }]);
    const other = await copyPlan(storage, [...plan].reverse(), { copyKey: "copy5", batchSize: 3, concurrency: 2, attempts: 1, clock: systemClock, cursor: { load: async () => JSON.stringify({ after: { i: 5, source: "s3://elsewhere/x" }, copied: 6, batches: 2, batchSize: 3, elapsedMs: 1, done: false }), save: async () => undefined } }).catch((e: unknown) => e);
    expect(other).toMatchObject({ code: "conflict" });
  });

  it("Azure Blob (Azurite): probe object, then copies verified by the service's Content-MD5; GCS through its XML API (local fake: s3rver standing in for storage.googleapis.com) gets gs:// hrefs", async () => {
    const storage = new RealStorage(section(), log, "local", env);
    const eu = target("eu", "azure-blob", "eu-rasters");
    expect(await storage.inspect(eu, SETTINGS)).toMatchObject({ exists: false, creates: true });
    expect(await storage.provision(eu, SETTINGS, "az:prov")).toMatchObject({ created: true });
    const checks = await connectivityProbe(storage.store(eu), "", "probe-1");
    expect(checks.map((c) => `${c.operation}:${c.ok}`)).toEqual(["write:true", "list:true", "read:true", "delete:true"]);
    const keys = ["imagery/scene-01.tif", "imagery/scene-02.tif"];
    const cursor = await copyAll(storage, planTo(storage, eu, keys), "az-copy");
    expect(cursor).toMatchObject({ copied: 2, failed: [] });
    const written = await storage.ledger.written("az-copy");
    expect(written.map((w) => w.verifiedBy)).toEqual(["size + the store's MD5", "size + the store's MD5"]);
    expect(written[0]!.dest).toBe(`${az.endpoint}/eu-rasters/imagery/scene-01.tif`);
    expect(storage.resolve(written[0]!.dest)?.key).toBe("imagery/scene-01.tif");

    const gcs = target("gcs", "gcs", "gcs-rasters");
    await storage.provision(gcs, SETTINGS, "gcs:prov");
    await copyAll(storage, planTo(storage, gcs, ["imagery/scene-04.tif"]), "gcs-copy");
    expect((await storage.ledger.written("gcs-copy"))[0]!.dest).toBe("gs://gcs-rasters/imagery/scene-04.tif");
    expect(storage.backends.find((b) => b.name === "gcs")!.honuaKeys("gcs-rasters")).toMatchObject({ FileStorage__Provider: "AwsS3", FileStorage__AwsS3__ServiceUrl: s3.endpoint, FileStorage__AwsS3__ForcePathStyle: "true" });
    void AZURITE_KEY;
  });

  it("STAC hrefs in PostgreSQL: rewritten in one transaction against what the plan saw, and the journal's rollback restores them byte for byte", async () => {
    const storage = new RealStorage(section(), log, "local", env);
    const c = new pg.Client({ connectionString: pgdb.url });
    await c.connect();
    const odd = ["file:///data/rasters/Ünïcode scene.tif", "file:///data/rasters/a%2Fb.tif?version=3&x=%20", "s3://old-bucket/path with spaces/x.TIF"];
    for (const [i, href] of odd.entries()) {
      const content = { type: "Feature", id: `item-${i}`, collection: "imagery", properties: { datetime: "2019-01-01T00:00:00Z", "custom:ordering": [3, 1, 2] }, bbox: [8, 47, 9, 48], assets: { data: { href, type: "image/tiff", "file:size": 123 }, thumbnail: { href: `${href}.png` } } };
      await c.query(`INSERT INTO stac_items (collection, id, content) VALUES ('imagery', $1, $2)`, [`item-${i}`, JSON.stringify(content)]);
    }
    const snapshot = async () => (await c.query(`SELECT id, content::text AS text FROM stac_items ORDER BY id`)).rows as { id: string; text: string }[];
    const before = await snapshot();
    const assets = await storage.catalog.assets();
    expect(assets.filter((a) => a.asset === "data").map((a) => a.href)).toEqual(odd);
    expect(assets[0]).toMatchObject({ region: "eu", datetime: "2019-01-01T00:00:00Z" });

    const journal = new MemoryJournal("run-pg", "UpdateCatalogReferences");
    const changes = assets.map((a) => ({ collection: a.collection, item: a.item, asset: a.asset, from: a.href, to: `s3://cold-rasters/${a.item}/${a.asset}` }));
    const { key } = await journal.intend(null, changes.map((x) => ({ kind: "restore" as const, capability: "storage", target: assetTarget(x), before: x.from, after: x.to })));
    expect(await storage.catalog.rewrite(changes, key)).toBe(6);
    await journal.done(null);
    expect(await storage.catalog.rewrite(changes, key)).toBe(0); // a replay changes nothing
    expect((await storage.catalog.assets()).map((a) => a.href)).toEqual(changes.map((x) => x.to));

    // A plan made on hrefs that changed since is refused whole: nothing is rewritten.
    await expect(storage.catalog.rewrite([{ ...changes[0]!, from: "file:///elsewhere.tif", to: "s3://x/y" }, { ...changes[1]!, from: changes[1]!.to, to: "s3://x/z" }], "k2")).rejects.toThrow(/changed since the plan.*nothing was rewritten/);
    expect((await storage.catalog.assets()).map((a) => a.href)).toEqual(changes.map((x) => x.to));

    const ctx = { journal: journal.at("Rollback"), adapters: { storage }, idempotencyKey: (s?: string) => `run-pg:Rollback:0:${s ?? ""}`, progress: () => undefined } as unknown as StepContext;
    const rb = await rollbackFromJournal(ctx);
    expect(rb.restored).toEqual([expect.stringMatching(/^storage: 6 value\(s\) restored in one call/)]);
    const after = await snapshot();
    expect(after).toEqual(before);
    expect((await storage.catalog.assets()).filter((a) => a.asset === "data").map((a) => Buffer.from(a.href))).toEqual(odd.map((h) => Buffer.from(h)));
    await c.end();
  });
});
