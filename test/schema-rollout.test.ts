/**
 * UpdateApplicationCode on a deployment whose config is Kubernetes manifests: the Honua version the change needs is
 * rolled out through the config's rollout (server-side apply of the Deployment, then a wait until its new pods are
 * ready), journalled like a config change, and put back by the rollback. Real PostgreSQL + PostGIS; a local fake
 * Kubernetes API.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { FakeKubernetesApi } from "./fixtures/k8s-api.js";
import { seedPostgis, startTileServer } from "./fixtures/postgis.js";
import { postgresTestDatabase, tempHome, testEnv } from "./helpers.js";

const pgdb = postgresTestDatabase("honua_w19_rollout");
const HELM = readFileSync(new URL("./fixtures/k8s/helm-honua.yaml", import.meta.url), "utf8");
const OLD = "honuaio/honua-server:1.4.2";
const NEW = "honuaio/honua-server:1.5.0";

type Json = Record<string, unknown>;
const imageOf = (d: Json | undefined): unknown => ((((d?.spec as Json)?.template as Json)?.spec as Json)?.containers as Json[] | undefined)?.[0]?.image;

describe("upgrade-database-schema rolls the Honua version it needs out and back (real PostgreSQL, fake Kubernetes API)", () => {
  const t = tempHome();
  let tiles: Awaited<ReturnType<typeof startTileServer>>;
  let api: FakeKubernetesApi;
  let manifest: string;
  let n = 0;

  const open = async (o: { rollout: boolean; smoke?: { name: string; sql: string; expectIndex?: string }[] }) => {
    const home = join(t.home, `run-${++n}`);
    const e = { ...testEnv(home), W19_DB_URL: pgdb.url };
    const raw = {
      deployments: {
        lab: {
          provider: "local",
          approvers: ["alice"],
          // The probes and this database share a loaded CI host: latency must move by a second to count (these tests are about DDL).
          monitoring: { windowMinutes: 0.06, stageMinutes: 0.04, sampleEveryMinutes: 0.01, minSamples: 2, latencyFactor: 4, latencyMinDeltaMs: 1000 },
          metrics: { source: "probe", urls: [`${tiles.url}/tiles/features/0/0/0.mvt`], concurrency: 2, pauseMs: 0, minRequestsPerSample: 2, lookbackSeconds: 0.6, lookbackSamples: 3 },
          config: {
            kind: "k8s", path: manifest, resource: { kind: "ConfigMap", name: "honua-config", namespace: "geo" },
            rollout: o.rollout ? { deployment: "honua", namespace: "geo", apply: true, timeoutSeconds: 10, pollSeconds: 0.01, kubeconfig: api.kubeconfig(t.home) } : false,
          },
          database: { url: "env:W19_DB_URL", honuaVersion: "1.5.0", lockTimeoutMs: 200, retries: { attempts: 2, baseMs: 20, maxMs: 50 }, backup: { mode: "schema", dir: join(t.home, "backups") }, smokeQueries: o.smoke ?? [] },
        },
      },
      groups: {},
    };
    return Engine.open({ env: e, cwd: t.home, config: parseConfig(raw, "test", e) });
  };
  const drive = async (e: Engine, s: RunSummary): Promise<RunSummary> => {
    let cur = s;
    // A thin watch window on a loaded machine may ask whether to continue: that is not what these tests are about.
    while (cur.pending && !(cur.pending.kind === "inconclusive" && cur.pending.step === "UpdateApplicationCode")) cur = await e.decide(cur.run, "alice", "approve", { planHash: cur.pending.planHash });
    return cur;
  };

  beforeAll(async () => {
    await seedPostgis(pgdb.url, 2_000);
    tiles = await startTileServer();
  }, 120_000);
  beforeEach(async () => {
    await api?.close();
    api = await new FakeKubernetesApi().start();
    const { parseAllDocuments } = await import("yaml");
    for (const d of parseAllDocuments(HELM)) api.put(d.toJS() as Json);
    manifest = join(t.home, `honua-${n}.yaml`);
    writeFileSync(manifest, HELM);
  });
  afterAll(async () => {
    await api?.close();
    await tiles?.close();
    t.cleanup();
  });

  it("the provision gate says what will be rolled out; after approval the new image runs, the manifest names it, nothing else changed", async () => {
    const e = await open({ rollout: true });
    try {
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["ALTER TABLE layers ADD COLUMN reviewed_at timestamptz"] } }, "carol", "add column");
      expect(s.pending).toMatchObject({ step: "ApplySchemaChanges", kind: "provision" });
      expect(s.pending!.gate.why).toContain(`Then Honua is rolled out: ${OLD} -> ${NEW} (server-side apply Deployment geo/honua, then the rollout of deployment geo/honua and wait until its new pods are ready`);
      const done = await drive(e, s);
      expect(done.status, done.outcome ?? "").toBe("done");
      expect(imageOf(api.get("deployments", "geo", "honua"))).toBe(NEW);
      expect(api.rolledOut("geo", "honua")).toBe(true);
      expect(readFileSync(manifest, "utf8")).toBe(HELM.replace(OLD, NEW)); // every other byte as it was
      const out = (await e.transcript(s.run)).steps.find((x) => x.name === "UpdateApplicationCode")!.output as { rolledOut: boolean; image: { from: string; to: string } };
      expect(out).toMatchObject({ rolledOut: true, image: { from: OLD, to: NEW } });
    } finally {
      await e.close();
    }
  }, 120_000);

  it("a regression after the rollout rolls back: the old image is applied and waited for again, the manifest is byte for byte what it was", async () => {
    const e = await open({ rollout: true, smoke: [{ name: "by id", sql: "SELECT count(*) FROM layers WHERE id = 3", expectIndex: "layers_checked_idx" }] });
    try {
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["ALTER TABLE layers ADD COLUMN checked_at timestamptz", "CREATE INDEX CONCURRENTLY layers_checked_idx ON layers (title)"] } }, "carol", "column and index");
      // The smoke query names an index its plan never uses: the regression check fails after the rollout.
      const end = await drive(e, s);
      expect(end.status, end.outcome ?? "").toBe("rolled-back");
      expect(api.requests.filter((r) => r.method === "PATCH" && r.path.endsWith("/deployments/honua"))).toHaveLength(2); // out, then back
      expect(readFileSync(manifest, "utf8")).toBe(HELM);
      expect(imageOf(api.get("deployments", "geo", "honua"))).toBe(OLD);
      expect(api.rolledOut("geo", "honua")).toBe(true);
    } finally {
      await e.close();
    }
  }, 120_000);

  it("with nothing configured to roll it out, the run stops for a human after the schema change and writes no image", async () => {
    const e = await open({ rollout: false });
    try {
      const s = await e.start({ workflow: "upgrade-database-schema", deployment: "lab", params: { changes: ["ALTER TABLE layers ADD COLUMN noted_at timestamptz"] } }, "carol", "add column");
      expect(s.pending!.gate.why).toContain("nothing is configured to roll it out: the run will stop for you to deploy it");
      const paused = await drive(e, s);
      expect(paused.pending).toMatchObject({ step: "UpdateApplicationCode", kind: "inconclusive" });
      expect(paused.pending!.gate.why).toMatch(/Honua 1\.5\.0 is needed: configure config\.rollout/);
      expect(readFileSync(manifest, "utf8")).toBe(HELM);
      expect(api.requests.filter((r) => r.method !== "GET")).toEqual([]);
    } finally {
      await e.close();
    }
  }, 120_000);
});
