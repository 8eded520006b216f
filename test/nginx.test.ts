import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpLog } from "../src/store/oplog.js";
import { IngressTraffic, IngressTrafficOptions } from "../src/tools/traffic/ingress.js";
import { NginxTraffic, NginxTrafficOptions, parseSplit, renderSplit, sampleShare } from "../src/tools/traffic/nginx.js";
import { startNginx, type NginxServer } from "./fixtures/nginx-server.js";
import { startOrigin, type Origin } from "../src/dev/origin.js";

const TILE = "/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/1/1";

describe("nginx split_clients traffic adapter (a real nginx)", () => {
  let dir: string;
  let log: OpLog;
  let primary: Origin, candidate: Origin;
  let nginx: NginxServer;
  let options: NginxTrafficOptions;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "honua-nginx-"));
    log = new OpLog(join(dir, "ops.sqlite"));
    writeFileSync(join(dir, "honua.env"), "Cache__Enabled=false\n");
    primary = await startOrigin({ name: "primary", envFile: join(dir, "honua.env"), workMs: 0 });
    candidate = await startOrigin({ name: "candidate", envFile: join(dir, "honua.env"), workMs: 0 });
    const include = join(dir, "honua-split.conf");
    const base = { kind: "nginx", include, primary: "honua_primary", candidate: "honua_candidate" } as const;
    nginx = await startNginx({ dir, include, upstreams: { honua_primary: primary.url, honua_candidate: candidate.url }, initialInclude: renderSplit(NginxTrafficOptions.parse(base), 0) });
    options = NginxTrafficOptions.parse({ ...base, test: nginx.test, reload: nginx.reload, verify: { url: `${nginx.url}${TILE}`, requests: 300 } });
  });
  afterAll(async () => {
    await nginx?.stop();
    await primary?.close();
    await candidate?.close();
    log?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shifts 10 -> 100 -> 0 % through nginx, verified by sampling real requests, once per idempotency key", async () => {
    const traffic = new NginxTraffic(options, log, "local");
    expect(await traffic.share("cache")).toBe(0);
    await traffic.setShare("cache", 10, "run-1:EnableCachingGradually:0");
    expect(await traffic.share("cache")).toBe(10);
    expect(readFileSync(options.include, "utf8")).toMatch(/split_clients "\$request_id" \$honua_backend \{\n {4}10% honua_candidate;\n {4}\* honua_primary;/);
    const seen = await sampleShare({ url: `${nginx.url}${TILE}`, header: "x-honua-upstream", candidate: "honua_candidate", requests: 400, concurrency: 8, timeoutSeconds: 5 });
    expect(seen.percent).toBeGreaterThan(3);
    expect(seen.percent).toBeLessThan(20);
    expect(candidate.stats.requests).toBeGreaterThan(0);

    await traffic.setShare("cache", 100, "run-1:EnableCachingGradually:2");
    const before = primary.stats.requests;
    await sampleShare({ url: `${nginx.url}${TILE}`, header: "x-honua-upstream", candidate: "honua_candidate", requests: 50, concurrency: 4, timeoutSeconds: 5 });
    expect(primary.stats.requests).toBe(before);

    // Rollback: back to 0 and verified; a replay of the same key does nothing (no reload, no sampling).
    await traffic.setShare("cache", 0, "run-1:Rollback:0:traffic");
    expect(await traffic.share("cache")).toBe(0);
    const c = candidate.stats.requests;
    await traffic.setShare("cache", 0, "run-1:Rollback:0:traffic");
    expect(candidate.stats.requests).toBe(c);
  });

  it("puts the previous include back when nginx -t rejects the new one", async () => {
    const bad = new NginxTraffic({ ...options, key: "$no_such_variable" }, log, "local");
    const prior = readFileSync(options.include, "utf8");
    await expect(bad.setShare("cache", 50, "run-2:EnableCachingGradually:1")).rejects.toThrow(/nginx rejected the split .*unknown "no_such_variable" variable/s);
    expect(readFileSync(options.include, "utf8")).toBe(prior);
  });

  it("reads a hand-made starting include, and refuses one that splits something else", async () => {
    writeFileSync(join(dir, "start.conf"), 'split_clients "$request_id" $honua_backend {\n  * honua_primary;\n}\n');
    expect(await new NginxTraffic({ ...options, include: join(dir, "start.conf") }, log, "local").share("cache")).toBe(0);
    expect(parseSplit("split_clients $remote_addr $honua_backend { 25% honua_candidate; * honua_primary; }", options)).toBe(25);
    writeFileSync(join(dir, "foreign.conf"), "split_clients $x $y { * a; }\n");
    const t = new NginxTraffic({ ...options, include: join(dir, "foreign.conf") }, log, "local");
    await expect(t.share("cache")).rejects.toMatchObject({ code: "conflict" });
    expect(() => parseSplit("split_clients $x $honua_backend { 50% honua_candidate; * someone_else; }", options)).toThrow(/refusing/);
  });
});

const INGRESS = `# canary for the cache rollout
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: honua
spec: { rules: [] }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: honua-canary
  annotations:
    kubernetes.io/ingress.class: nginx # keep
spec:
  rules: []
`;

describe("ingress-nginx canary annotations (manifest file)", () => {
  it("sets canary and canary-weight on the canary Ingress only, keeps comments, and rolls back to weight 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "honua-ingress-"));
    const log = new OpLog(join(dir, "ops.sqlite"));
    try {
      const path = join(dir, "ingress.yaml");
      writeFileSync(path, INGRESS);
      const t = new IngressTraffic(IngressTrafficOptions.parse({ kind: "ingress", path, name: "honua-canary" }), log, "k8s");
      expect(await t.share("cache")).toBe(0);
      await t.setShare("cache", 50, "r:EnableCachingGradually:1");
      const text = readFileSync(path, "utf8");
      expect(text).toContain('nginx.ingress.kubernetes.io/canary: "true"');
      expect(text).toContain('nginx.ingress.kubernetes.io/canary-weight: "50"');
      expect(text).toContain("kubernetes.io/ingress.class: nginx # keep");
      expect(text.split("---")[0]).not.toContain("canary-weight");
      expect(await t.share("cache")).toBe(50);
      await t.setShare("cache", 0, "r:Rollback:0:traffic");
      expect(await t.share("cache")).toBe(0);
      await expect(new IngressTraffic(IngressTrafficOptions.parse({ kind: "ingress", path, name: "nope" }), log, "k8s").share("cache")).rejects.toMatchObject({ code: "not-found" });
    } finally {
      log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
