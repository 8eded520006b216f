import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { AgentError } from "../src/core/errors.js";
import { OpLog } from "../src/store/oplog.js";
import { diffConfig, inverse } from "../src/tools/config/diff.js";
import { K8sConfigStore } from "../src/tools/config/k8s.js";
import { KubernetesRollout, RESTART_KEY, RolloutOptions } from "../src/tools/rollout/k8s.js";
import { FakeKubernetesApi } from "./fixtures/k8s-api.js";
import { CrashingLog } from "./fixtures/redis-server.js";

const HELM = readFileSync(new URL("./fixtures/k8s/helm-honua.yaml", import.meta.url), "utf8");
const manifests = () => parseAllDocuments(HELM).map((d) => d.toJS() as Record<string, unknown>);
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const REDIS_B64 = HELM.split("\n").find((l) => l.includes("ConnectionStrings__redis:"))!.split(": ")[1]!;
const REDIS = Buffer.from(REDIS_B64, "base64").toString("utf8");

let dir: string;
let log: CrashingLog;
let api: FakeKubernetesApi;
let path: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "honua-rollout-"));
  log = new CrashingLog(join(dir, "ops.sqlite"));
  api = await new FakeKubernetesApi().start();
  for (const m of manifests()) api.put(m);
  path = join(dir, "honua.yaml");
  writeFileSync(path, HELM);
});
afterEach(async () => {
  log.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

const rollout = (o: Partial<z.input<typeof RolloutOptions>> = {}, journal: OpLog = log) =>
  new KubernetesRollout(RolloutOptions.parse({ deployment: "honua", namespace: "geo", apply: true, timeoutSeconds: 10, pollSeconds: 0.01, kubeconfig: api.kubeconfig(dir), ...o }), journal, "prod");
const store = (o: Partial<z.input<typeof RolloutOptions>> = {}, journal: OpLog = log) =>
  new K8sConfigStore(path, { kind: "ConfigMap", name: "honua-config", namespace: "geo" }, journal, "prod", rollout(o, journal));
const ssa = (resource: string) => api.requests.filter((r) => r.method === "PATCH" && r.path.endsWith(`/${resource}`) && r.contentType === "application/apply-patch+yaml");

describe("a ConfigMap/Secret change is live only after a rollout restart (local fake Kubernetes API)", () => {
  it("(local fake Kubernetes API) applies the edited ConfigMap and Secret server-side, restarts the Deployment as kubectl does, and returns once its new pods are ready", async () => {
    const s = store();
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true", ConnectionStrings__Redis: "redis-2:6379,password=R0ll-0ut" });
    expect(await s.preview(changes)).toContain("then: server-side apply ConfigMap geo/honua-config, Secret geo/honua-secrets, then rollout restart deployment geo/honua and wait until its new pods are ready (timeout 10 s)");
    expect(api.requests).toEqual([]); // a preview asks the cluster nothing
    await s.apply(changes, "run-1:ConfigureCaching:0");
    expect(api.refused).toEqual([]);
    expect(api.rolledOut("geo", "honua")).toBe(true); // not before: apply() waited for it

    const [cm] = ssa("honua-config");
    expect(cm).toMatchObject({ path: "/api/v1/namespaces/geo/configmaps/honua-config", query: { fieldManager: "honua-agent", force: "true" } });
    expect((cm!.body as { data: Record<string, string> }).data).toMatchObject({ Cache__Enabled: "true", FileStorage__Provider: "Local" });
    const [secret] = ssa("honua-secrets");
    expect((secret!.body as { data: Record<string, string> }).data.ConnectionStrings__redis).toBe(b64("redis-2:6379,password=R0ll-0ut"));

    const [restart, ...more] = api.restarts();
    expect(more).toEqual([]);
    expect(restart!.path).toBe("/apis/apps/v1/namespaces/geo/deployments/honua");
    const annotations = (restart!.body as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations;
    expect(Object.keys(annotations).sort()).toEqual([RESTART_KEY, "kubectl.kubernetes.io/restartedAt"].sort());
    expect(annotations[RESTART_KEY]).toBe("run-1:ConfigureCaching:0");
    // Order: the config objects are in the cluster before the pods restart, and the wait reads until done.
    const at = (r: unknown) => api.requests.indexOf(r as (typeof api.requests)[number]);
    expect(at(cm)).toBeLessThan(at(restart));
    expect(at(secret)).toBeLessThan(at(restart));
    expect(api.requests.slice(at(restart) + 1).filter((r) => r.method === "GET").length).toBeGreaterThanOrEqual(4);
    expect(s.lastDiff).not.toMatch(/R0ll-0ut/);
  });

  it("(local fake Kubernetes API) a replay of an apply with the same idempotency key changes nothing and restarts nothing", async () => {
    const s = store();
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true" });
    await s.apply(changes, "run-1:ConfigureCaching:0");
    const file = readFileSync(path, "utf8");
    const seen = api.requests.length;
    await store().apply(changes, "run-1:ConfigureCaching:0"); // a resumed process
    expect(api.requests.length).toBe(seen);
    expect(readFileSync(path, "utf8")).toBe(file);
  });

  it("(local fake Kubernetes API) a crash between writing the file and the restart: the replay restarts and waits", async () => {
    /** The process dies right after the files are written, before anything reaches the cluster. */
    class DiesAfterWrite extends K8sConfigStore {
      protected override async settle(): Promise<void> {
        throw new Error("crash after the write");
      }
    }
    const s = new DiesAfterWrite(path, { kind: "ConfigMap", name: "honua-config", namespace: "geo" }, log, "prod", rollout());
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true" });
    await expect(s.apply(changes, "run-1:ConfigureCaching:0")).rejects.toThrow(/crash/);
    expect(readFileSync(path, "utf8")).toContain('Cache__Enabled: "true"');
    expect(api.requests).toEqual([]);
    await store().apply(changes, "run-1:ConfigureCaching:0");
    expect(api.restarts()).toHaveLength(1);
    expect(ssa("honua-config")).toHaveLength(1);
    expect(api.rolledOut("geo", "honua")).toBe(true);
  });

  it("(local fake Kubernetes API) a crash after the restart, before it was journalled: the replay waits but does not restart twice", async () => {
    const s = store();
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true" });
    log.crashOn = "k8s-restart";
    await expect(s.apply(changes, "run-1:ConfigureCaching:0")).rejects.toThrow(/crash/);
    expect(api.restarts()).toHaveLength(1);
    expect(api.rolledOut("geo", "honua")).toBe(false);
    const before = api.requests.length;
    await store().apply(changes, "run-1:ConfigureCaching:0");
    expect(api.restarts()).toHaveLength(1); // the key in the pod template says it already happened
    expect(api.requests.length).toBeGreaterThan(before); // it waited
    expect(api.rolledOut("geo", "honua")).toBe(true);
  });

  it("(local fake Kubernetes API) a rollback that restores the config triggers its own restart", async () => {
    const s = store();
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true", Cache__KeyPrefix: "honua:" });
    await s.apply(changes, "run-1:ConfigureCaching:0");
    await s.apply(inverse(changes), "run-1:__rollback:0:config");
    expect(readFileSync(path, "utf8")).toBe(HELM);
    expect(api.restarts().map((r) => (r.body as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations[RESTART_KEY])).toEqual(["run-1:ConfigureCaching:0", "run-1:__rollback:0:config"]);
    expect((api.get("configmaps", "geo", "honua-config")!.data as Record<string, string>).Cache__Enabled).toBe("false");
    expect(api.rolledOut("geo", "honua")).toBe(true);
  });

  it("(local fake Kubernetes API) a rollout that never becomes ready fails after the timeout, saying what it waited for, and the change is undone and rolled out again", async () => {
    api.plan = ["never"]; // the new config keeps the new pods from becoming ready; the old one is fine
    const s = store({ timeoutSeconds: 0.3 });
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true" });
    const err = await s.apply(changes, "run-1:ConfigureCaching:0").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("failed");
    expect((err as Error).message).toMatch(/^deployment geo\/honua did not finish its rollout within 0\.3 s \(1 of 2 new replicas updated\)\. See `kubectl -n geo rollout status deployment\/honua`; the change was undone: Cache__Enabled restored in .* and rolled out again$/);
    // A failed step leaves the deployment as it was: the workflow's rollback never learns a failed step's changes.
    expect(readFileSync(path, "utf8")).toBe(HELM);
    expect((api.get("configmaps", "geo", "honua-config")!.data as Record<string, string>).Cache__Enabled).toBe("false");
    expect(api.restarts().map((r) => (r.body as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations[RESTART_KEY])).toEqual(["run-1:ConfigureCaching:0", expect.stringMatching(/^run-1:ConfigureCaching:0:undo:[0-9a-f]{6}$/)]);
    expect(api.rolledOut("geo", "honua")).toBe(true);
    expect(log.get("prod", "config-apply", "run-1:ConfigureCaching:0", z.unknown())).toBeUndefined(); // a retry applies again
  });

  it("(local fake Kubernetes API) the same key applied again after an undo writes and restarts again", async () => {
    api.plan = ["never"];
    const s = store({ timeoutSeconds: 0.3 });
    const changes = diffConfig(await s.read(), { Cache__Enabled: "true" });
    await expect(s.apply(changes, "run-1:ConfigureCaching:0")).rejects.toThrow(/the change was undone/);
    await store().apply(changes, "run-1:ConfigureCaching:0"); // a replay of the step (the failure was never recorded)
    expect(readFileSync(path, "utf8")).toContain('Cache__Enabled: "true"');
    expect(api.restarts()).toHaveLength(3);
    expect((api.get("configmaps", "geo", "honua-config")!.data as Record<string, string>).Cache__Enabled).toBe("true");
    expect(api.rolledOut("geo", "honua")).toBe(true);
  });

  it("(local fake Kubernetes API) when the undo's rollout does not become ready either, the error says what to restore by hand", async () => {
    api.behaviour = "never";
    const s = store({ timeoutSeconds: 0.2 });
    await expect(s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "k")).rejects.toMatchObject({
      code: "failed",
      message: expect.stringMatching(/did not finish its rollout within 0\.2 s .*; the change was undone in the files \(Cache__Enabled restored\), but making that live failed too \(deployment geo\/honua did not finish its rollout .*\): check the deployment by hand$/),
    });
    expect(readFileSync(path, "utf8")).toBe(HELM);
  });

  it("(local fake Kubernetes API) a rollout past its progress deadline fails at once", async () => {
    api.plan = ["deadline"];
    const s = store({ timeoutSeconds: 30 });
    const started = Date.now();
    await expect(s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "k")).rejects.toMatchObject({ code: "failed", message: expect.stringMatching(/exceeded its progress deadline \(ReplicaSet "honua-7d9f" has timed out progressing\.\).*the change was undone/) });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readFileSync(path, "utf8")).toBe(HELM);
  });

  it("(local fake Kubernetes API) GitOps (apply: false): nothing is written to the cluster; the restart waits until the controller synced the ConfigMap", async () => {
    let reads = 0;
    api.onRead = (resource, ns, name) => {
      if (resource !== "configmaps" || ++reads !== 3) return;
      const cm = manifests()[0]!;
      api.put({ ...cm, data: { ...(cm.data as Record<string, string>), Cache__Enabled: "true" } }); // the controller applies the commit
      void ns, name;
    };
    const s = store({ apply: false });
    await s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "run-1:ConfigureCaching:0");
    expect(api.requests.filter((r) => r.method === "PATCH" && !r.path.includes("/deployments/"))).toEqual([]);
    const restart = api.requests.indexOf(api.restarts()[0]!);
    expect(api.requests.slice(0, restart).filter((r) => r.path.endsWith("/configmaps/honua-config"))).toHaveLength(3);
    expect(api.rolledOut("geo", "honua")).toBe(true);
  });

  it("(local fake Kubernetes API) GitOps that never syncs: the pods are not restarted and the error says why", async () => {
    const s = store({ apply: false, timeoutSeconds: 0.2 });
    await expect(s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "k")).rejects.toMatchObject({
      code: "failed",
      message: expect.stringMatching(/ConfigMap geo\/honua-config in the cluster does not carry the change after 0\.2 s \(config\.rollout\.apply is false: a GitOps controller is expected to sync.*the pods were not restarted/),
    });
    expect(api.restarts()).toEqual([]); // nor by the undo: they never ran the change
    expect(readFileSync(path, "utf8")).toBe(HELM);
  });

  it("(local fake Kubernetes API) a Deployment env change is applied and waited for, with no separate restart", async () => {
    const s = new K8sConfigStore(path, { kind: "Deployment", name: "honua", namespace: "geo" }, log, "prod", rollout());
    await s.apply(diffConfig(await s.read(), { HONUA_OBSERVABILITY: "false" }), "k");
    const [d] = ssa("honua");
    expect(d!.path).toBe("/apis/apps/v1/namespaces/geo/deployments/honua");
    expect(api.restarts()).toEqual([]);
    expect(api.rolledOut("geo", "honua")).toBe(true);
    expect(api.refused).toEqual([]);
  });

  it("(local fake Kubernetes API) a refused token and an unreachable API are named, with no value in the message", async () => {
    const denied = store({ kubeconfig: api.kubeconfig(dir, "wrong-token") });
    const err = await denied.apply(diffConfig(await denied.read(), { ConnectionStrings__Redis: "r:1,password=N0pe" }), "k1").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "forbidden", message: expect.stringMatching(/server-side apply of Secret geo\/honua-secrets: the Kubernetes API answered 403 Forbidden; the kubeconfig's user needs get and patch/) });
    expect((err as Error).message).not.toMatch(/N0pe|wrong-token/);

    writeFileSync(path, HELM);
    const closed = new FakeKubernetesApi();
    const port = await closed.start().then(async (c) => { const u = c.url; await c.close(); return u; });
    const away = store({ kubeconfig: api.kubeconfig(dir, api.token, port) });
    await expect(away.apply(diffConfig(await away.read(), { Cache__Enabled: "true" }), "k2")).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(new RegExp(`cannot reach the Kubernetes API at ${port.replace(/[.]/g, "\\.")} \\(ECONNREFUSED\\)`)),
    });
  });

  it("(local fake Kubernetes API) an API server that never answers is given up on at the timeout", async () => {
    api.hang = true;
    const s = store({ timeoutSeconds: 0.2 });
    const started = Date.now();
    await expect(s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "k")).rejects.toMatchObject({ code: "unavailable", message: expect.stringMatching(/^server-side apply of ConfigMap geo\/honua-config: the Kubernetes API at http:\/\/127\.0\.0\.1:\d+ did not answer within 1 s/) });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(readFileSync(path, "utf8")).toBe(HELM); // undone: nothing reached the pods
  });

  it("a kubeconfig that is not there is named (there is no cluster on this machine to fall back to)", async () => {
    const s = store({ kubeconfig: join(dir, "nope") });
    await expect(s.apply(diffConfig(await s.read(), { Cache__Enabled: "true" }), "k")).rejects.toMatchObject({ code: "bad-input", message: expect.stringContaining("config.rollout.kubeconfig") });
  });

  it("the Secret's value never reaches a request it does not belong to, a journal entry or a message", async () => {
    const s = store();
    await s.apply(diffConfig(await s.read(), { ConnectionStrings__Redis: "r:6379,password=J0urn4l" }), "k");
    const others = api.requests.filter((r) => !r.path.endsWith("/secrets/honua-secrets"));
    for (const leak of ["J0urn4l", b64("r:6379,password=J0urn4l"), REDIS, REDIS_B64]) {
      expect(JSON.stringify(others)).not.toContain(leak);
      for (const f of readdirSync(dir).filter((n) => n.startsWith("ops.sqlite"))) expect(readFileSync(join(dir, f)).toString("latin1")).not.toContain(leak); // -wal too
    }
  });
});
