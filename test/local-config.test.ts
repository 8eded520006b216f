import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { AgentError } from "../src/core/errors.js";
import { Engine } from "../src/engine.js";
import { requireWorkflow } from "../src/graph/workflows/registry.js";
import { requireSections } from "../src/tools/sections.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OpLog } from "../src/store/oplog.js";
import { configSection, realAdapters } from "../src/providers/real.js";
import { CloudFrontInfra } from "../src/tools/cache/cloudfront.js";
import { ElastiCacheInfra } from "../src/tools/cache/elasticache.js";
import { RedisCacheInfra } from "../src/tools/cache/redis.js";
import { VarnishInfra } from "../src/tools/cache/varnish.js";
import { AppSettingsConfigStore } from "../src/tools/config/appsettings.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { K8sConfigStore } from "../src/tools/config/k8s.js";
import { KubernetesRollout } from "../src/tools/rollout/k8s.js";
import { CloudWatchMetrics } from "../src/tools/metrics/cloudwatch.js";
import { ProbeMetrics } from "../src/tools/metrics/probe.js";
import { PrometheusMetrics } from "../src/tools/metrics/prometheus.js";
import { CloudFrontTraffic } from "../src/tools/traffic/cloudfront.js";
import { IngressTraffic } from "../src/tools/traffic/ingress.js";
import { NginxTraffic } from "../src/tools/traffic/nginx.js";
import { systemClock } from "../src/core/clock.js";

const base = { provider: "local", approvers: ["oncall"] };
const full = {
  ...base,
  cache: { redis: { url: "redis://127.0.0.1:6379/2" } },
  metrics: { source: "probe", urls: ["http://127.0.0.1:8080/ogc/tiles/collections/a/tiles/WebMercatorQuad/1/0/0"] },
  config: { kind: "envfile", path: "./deploy/.env" },
  traffic: { kind: "nginx", include: "/etc/nginx/conf.d/honua-split.conf", primary: "honua", candidate: "honua_cache" },
};

function problems(deployment: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig({ deployments: { local: deployment } }, "honua-agent.yaml", env);
    return "";
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return (e as AgentError).message;
  }
}

describe("local/aws deployment sections at config load", () => {
  it("accepts a complete local deployment and fills defaults", () => {
    const { config } = parseConfig({ deployments: { local: full } }, "t", {});
    const d = config.deployments.local!;
    expect(d.cache).toEqual({ redis: expect.objectContaining({ url: "redis://127.0.0.1:6379/2", keyPrefix: "honua:", setEvictionPolicy: true }) });
    expect(d.traffic).toMatchObject({ kind: "nginx", variable: "$honua_backend", key: "$request_id", test: ["nginx", "-t"], reload: ["nginx", "-s", "reload"] });
    expect(d.metrics).toMatchObject({ source: "probe", concurrency: 4, minRequestsPerSample: 5 });
  });

  it("loads a deployment with no sections; what a workflow needs is asked when it is planned there, each named with what to write", async () => {
    expect(problems(base)).toBe("");
    const { config } = parseConfig({ deployments: { local: base, box: { ...base, provider: "sandbox" } } }, "t", {});
    const caching = requireWorkflow("add-caching-layer");
    let msg = "";
    try {
      requireSections("local", config.deployments.local!, caching.capabilities, caching.summary);
    } catch (e) {
      expect(e).toBeInstanceOf(AgentError);
      msg = (e as AgentError).message;
    }
    expect(msg).toMatch(/^deployment local \(provider local\) needs sections in honua-agent\.yaml to add a caching layer:/);
    expect(msg).toMatch(/- cache: the cache \(cache: \{ redis: \{ url: /);
    expect(msg).toMatch(/- metrics: /);
    expect(msg).toMatch(/- config: /);
    expect(msg).toMatch(/- traffic: /);
    expect(msg).not.toMatch(/- tiles:|- cost:/); // optional: without them nothing is warmed, cost counts the price table
    expect(() => requireSections("box", config.deployments.box!, caching.capabilities, caching.summary)).not.toThrow();
    expect(() => requireSections("local", { ...config.deployments.local!, ...full }, caching.capabilities, caching.summary)).not.toThrow();
    // The same refusal from the engine, before anything starts.
    const home = mkdtempSync(join(tmpdir(), "honua-sections-"));
    const engine = await Engine.open({ env: { ...process.env, HONUA_AGENT_HOME: home, HONUA_AGENT_DATABASE_URL: "" }, cwd: home, config: { config, source: "t" } });
    try {
      await expect(engine.preflight({ workflow: "add-caching-layer", deployment: "local", params: {} })).rejects.toMatchObject({ code: "bad-input", message: expect.stringMatching(/needs sections .* to add a caching layer/) });
      await expect(engine.start({ workflow: "add-caching-layer", deployment: "local", params: {} }, "carol", "add redis caching to local")).rejects.toMatchObject({ code: "bad-input" });
      expect(await engine.runs()).toEqual([]);
    } finally {
      await engine.close();
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("keeps `appsettings: path` as the shorthand for an appsettings config, but not both", () => {
    const { config } = parseConfig({ deployments: { local: { ...full, config: undefined, appsettings: "./appsettings.json" } } }, "t", {});
    expect(configSection(config.deployments.local!)).toEqual({ kind: "appsettings", path: "./appsettings.json" });
    expect(problems({ ...full, appsettings: "./appsettings.json" })).toMatch(/either config or appsettings/);
  });

  it("rejects unknown keys, unknown kinds and a Redis password that would land in the config", () => {
    expect(problems({ ...full, cache: { redis: { url: "redis://127.0.0.1", ttl: 5 } } })).toMatch(/local\.cache/);
    expect(problems({ ...full, config: { kind: "helm", path: "x" } })).toMatch(/local\.config\.kind/);
    expect(problems({ ...full, metrics: { source: "probe", urls: [] } })).toMatch(/at least one tile URL/);
    expect(problems({ ...full, cache: { redis: { url: "redis://:pw@10.0.0.1:6379" } } })).toMatch(/connectionString.*reference/);
    expect(problems({ ...full, config: { kind: "k8s", path: "x.yaml" } })).toMatch(/local\.config\.resource/);
    expect(problems({ ...full, tiles: { originUrl: "http://127.0.0.1:8080" } })).toMatch(/accessLog or paths/);
  });

  it("takes a Kubernetes rollout section with defaults, and names what is wrong in one", () => {
    const k8s = (rollout: unknown) => ({ ...full, config: { kind: "k8s", path: "gitops/", resource: { kind: "ConfigMap", name: "honua-config", namespace: "geo" }, rollout } });
    const { config } = parseConfig({ deployments: { local: k8s({ deployment: "honua" }) } }, "t", {});
    expect(configSection(config.deployments.local!)).toMatchObject({ rollout: { deployment: "honua", apply: false, timeoutSeconds: 600, pollSeconds: 2 } });
    expect(problems(k8s(false))).toBe("");
    expect(problems(k8s({ deployment: "honua", namespace: "geo", apply: true, timeoutSeconds: 120, kubeconfig: "~/.kube/prod", context: "prod" }))).toBe("");
    expect(problems(k8s({ deployment: "Honua_Server" }))).toMatch(/local\.config\.rollout\.deployment: a Deployment name: lower-case letters/);
    expect(problems(k8s({ deployment: "honua", namespace: "Geo" }))).toMatch(/local\.config\.rollout\.namespace: a namespace name/);
    expect(problems(k8s({ deployment: "honua", restart: true }))).toMatch(/local\.config\.rollout: Unrecognized key: "restart"/);
    expect(problems(k8s({ deployment: "honua", timeoutSeconds: 7200 }))).toMatch(/local\.config\.rollout\.timeoutSeconds: at most 3600 seconds/);
    expect(problems(k8s({ namespace: "geo" }))).toMatch(/local\.config\.rollout: false \(something else restarts the pods\), or \{ deployment: <name>/);
    expect(problems(k8s(true))).toMatch(/local\.config\.rollout: false/);
    expect(problems({ ...full, config: { kind: "k8s", path: "m.yaml", resource: { kind: "Secret", name: "honua-secrets" } } })).toBe("");
    expect(problems({ ...full, config: { kind: "k8s", path: "m.yaml", resource: { kind: "Deployment", name: "honua" }, rollout: { deployment: "other" } } })).toMatch(/local\.config\.rollout\.deployment: the rollout waits for the Deployment whose env it edits: deployment: honua/);
  });

  it("takes the cloud sections through their adapters' own option schemas", () => {
    expect(problems({ ...full, metrics: { source: "prometheus", url: "http://127.0.0.1:9090" } })).toBe("");
    expect(problems({ ...full, metrics: { source: "prometheus" } })).toMatch(/local\.metrics\.url/);
    expect(problems({ ...full, provider: "aws", cache: { elasticache: { region: "us-east-1" } } })).toBe("");
    expect(problems({ ...full, provider: "aws", cache: { elasticache: { region: "us-east-1", bogus: 1 } } })).toMatch(/local\.cache/);
    expect(problems({ ...full, provider: "aws", cache: { cloudfront: { originDomainName: "honua.example.org" } } })).toBe("");
    expect(problems({ ...full, provider: "aws", traffic: { kind: "cloudfront", primaryDistributionId: "E123ABC", cachePolicyId: "p" } })).toBe("");
    expect(problems({ ...full, provider: "aws", traffic: { kind: "cloudfront", primaryDistributionId: "nope", cachePolicyId: "p" } })).toMatch(/local\.traffic\.primaryDistributionId/);
    expect(problems({ ...full, cache: { varnish: { secretFile: "/etc/varnish/secret", vclDir: "/etc/varnish", backend: { host: "127.0.0.1", port: 8080 }, listenUrl: "http://127.0.0.1:6081" } } })).toBe("");
  });
});

describe("provider wiring: one adapter per capability, from the deployment's sections", () => {
  const dir = mkdtempSync(join(tmpdir(), "honua-wiring-"));
  const log = new OpLog(join(dir, "ops.sqlite"));
  const build = (d: Record<string, unknown>) => {
    const { config } = parseConfig({ deployments: { x: d } }, "t", {});
    return realAdapters("x", config.deployments.x!, { log, env: {}, cwd: dir });
  };

  it("local: Redis, probes (with a probing clock), env file / k8s / appsettings, nginx / ingress", () => {
    const a = build(full);
    expect(a.provider).toBe("local");
    expect(a.cache).toBeInstanceOf(RedisCacheInfra);
    expect(a.metrics).toBeInstanceOf(ProbeMetrics);
    expect(a.clock).toBe((a.metrics as ProbeMetrics).clock);
    expect(a.config).toBeInstanceOf(EnvFileConfigStore);
    expect((a.config as EnvFileConfigStore).path).toBe(join(dir, "deploy/.env"));
    expect(a.traffic).toBeInstanceOf(NginxTraffic);
    expect(build({ ...full, config: { kind: "k8s", path: "m.yaml", resource: { kind: "ConfigMap", name: "honua" } } }).config).toBeInstanceOf(K8sConfigStore);
    const rolled = build({ ...full, config: { kind: "k8s", path: "gitops", resource: { kind: "ConfigMap", name: "honua", namespace: "geo" }, rollout: { deployment: "honua", kubeconfig: "kube/config" } } }).config as K8sConfigStore;
    expect(rolled.path).toBe(join(dir, "gitops"));
    expect(rolled.rollout).toBeInstanceOf(KubernetesRollout);
    expect((rolled.rollout as KubernetesRollout).namespace).toBe("geo"); // the resource's, when the rollout names none
    expect((rolled.rollout as KubernetesRollout).kubeconfig).toBe(join(dir, "kube/config"));
    expect(build({ ...full, config: undefined, appsettings: "appsettings.json" }).config).toBeInstanceOf(AppSettingsConfigStore);
    expect(build({ ...full, traffic: { kind: "ingress", path: "i.yaml", name: "honua-canary" } }).traffic).toBeInstanceOf(IngressTraffic);
  });

  it("aws: ElastiCache / CloudFront / Varnish, Prometheus / CloudWatch on the system clock, CloudFront traffic", () => {
    const a = build({ ...full, provider: "aws", cache: { elasticache: { region: "us-east-1" } }, metrics: { source: "cloudwatch", region: "us-east-1", namespace: "Honua" }, traffic: { kind: "cloudfront", primaryDistributionId: "E1ABC", cachePolicyId: "p" } });
    expect(a.cache).toBeInstanceOf(ElastiCacheInfra);
    expect(a.metrics).toBeInstanceOf(CloudWatchMetrics);
    expect(a.clock).toBe(systemClock);
    expect(a.traffic).toBeInstanceOf(CloudFrontTraffic);
    expect(build({ ...full, cache: { cloudfront: { originDomainName: "honua.example.org" } } }).cache).toBeInstanceOf(CloudFrontInfra);
    expect(build({ ...full, cache: { varnish: { secretFile: "/s", vclDir: "/v", backend: { host: "127.0.0.1", port: 8080 }, listenUrl: "http://127.0.0.1:6081" } } }).cache).toBeInstanceOf(VarnishInfra);
    expect(build({ ...full, metrics: { source: "prometheus", url: "http://127.0.0.1:9090" } }).metrics).toBeInstanceOf(PrometheusMetrics);
  });

  it("prices the deployment's Redis from the table only while Honua's config points at it", async () => {
    const a = build({ ...full, config: { kind: "envfile", path: join(dir, "priced.env") }, cache: { redis: { url: "redis://127.0.0.1:6379/2", nodeType: "cache.t4g.small" } }, cost: { monthlyUsd: { compute: 100 } } });
    writeFileSync(join(dir, "priced.env"), "Cache__Enabled=true\n");
    expect(await a.cost.monthly()).toEqual({ compute: 100 });
    writeFileSync(join(dir, "priced.env"), "Cache__Enabled=true\nConnectionStrings__redis=127.0.0.1:6379,defaultDatabase=2\n");
    expect(await a.cost.monthly()).toEqual({ compute: 100, "cache:redis": 23.36 });
    writeFileSync(join(dir, "priced.env"), "Cache__Enabled=true\n");
    expect(await a.cost.monthly()).toEqual({ compute: 100 });
    log.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
