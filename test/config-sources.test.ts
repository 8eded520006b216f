import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentError } from "../src/core/errors.js";
import { OpLog } from "../src/store/oplog.js";
import { AppSettingsConfigStore } from "../src/tools/config/appsettings.js";
import { diffConfig, inverse } from "../src/tools/config/diff.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { secretMarker } from "../src/core/secrets.js";
import { K8sConfigStore } from "../src/tools/config/k8s.js";

/** Honua's Helm chart, rendered: a ConfigMap and a Secret loaded with envFrom by the Deployment, blank lines before `---`. */
const HELM = readFileSync(new URL("./fixtures/k8s/helm-honua.yaml", import.meta.url), "utf8");
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string) => Buffer.from(s, "base64").toString("utf8");
const line = (text: string, prefix: string) => text.split("\n").find((l) => l.trimStart().startsWith(prefix))!;
const REDIS_B64 = line(HELM, "ConnectionStrings__redis:").split(": ")[1]!;
const REDIS = unb64(REDIS_B64);
const DB_B64 = line(HELM, "ConnectionStrings__DefaultConnection:").split(": ")[1]!;

let dir: string;
let log: OpLog;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-config-sources-"));
  log = new OpLog(join(dir, "ops.sqlite"));
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `text` with exactly these whole lines replaced (each must occur once): what an edit of those lines alone gives. */
function withLines(text: string, replacements: [string, string][]): string {
  let out = text;
  for (const [from, to] of replacements) {
    expect(out.split(from).length - 1).toBe(1);
    out = out.replace(from, to);
  }
  return out;
}

const helm = (text = HELM, target: { kind: "ConfigMap" | "Secret" | "Deployment"; name: string } = { kind: "ConfigMap", name: "honua-config" }) => {
  const path = join(dir, "honua.yaml");
  writeFileSync(path, text);
  return { path, store: new K8sConfigStore(path, { ...target, namespace: "geo" }, log, "prod", false) };
};

describe("Kubernetes config spread over a Deployment's env and the ConfigMap and Secret it loads with envFrom", () => {
  it("the rendered fixture is what it claims: a 200-character connection string, lines longer than 80 columns", () => {
    expect(REDIS).toHaveLength(200);
    expect(Math.max(...HELM.split("\n").map((l) => l.length))).toBeGreaterThan(250);
    expect(HELM).toContain("\n\n---\n");
  });

  it("reads every effective setting: env wins over envFrom, the Secret's keys decoded and masked, under the spelling they have", async () => {
    const { store } = helm();
    const read = await store.read();
    expect(read.ConnectionStrings__redis).toBe(secretMarker(REDIS));
    expect(read.ConnectionStrings__DefaultConnection).toMatch(/^secret:sha256:[0-9a-f]{16}$/);
    expect(read).not.toHaveProperty("ConnectionStrings__Redis");
    expect(read.Cache__Enabled).toBe("false");
    expect(read.HONUA_OBSERVABILITY).toBe("true"); // the container's env over its envFrom ConfigMap
    expect(read.OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(/^http:\/\/opentelemetry-collector/);
    const json = JSON.stringify(read);
    for (const leak of [REDIS, REDIS_B64, DB_B64, "Zq8vTn3L", "pg-S3cr3t"]) expect(json).not.toContain(leak);
  });

  it("a round trip with no change gives the identical file and writes nothing", async () => {
    const { path, store } = helm();
    const before = statSync(path);
    const read = await store.read();
    const changes = diffConfig(read, { Cache__Enabled: "false", ConnectionStrings__Redis: read.ConnectionStrings__redis! });
    expect(changes).toEqual([]);
    expect(await store.preview(changes)).toBe("");
    await store.apply(changes, "noop");
    const after = statSync(path);
    expect(readFileSync(path, "utf8")).toBe(HELM);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it("a change to ConnectionStrings__Redis is written into the Secret under ConnectionStrings__redis, base64, and only that line changes", async () => {
    const { path, store } = helm();
    const next = "honua-redis-master.geo.svc.cluster.local:6380,password=N3w-Pa55-4a7c,ssl=true,abortConnect=false";
    const changes = diffConfig(await store.read(), { ConnectionStrings__Redis: next });
    expect(changes).toEqual([{ key: "ConnectionStrings__redis", before: secretMarker(REDIS), after: next }]);
    const preview = await store.preview(changes);
    await store.apply(changes, "run-1:ConfigureCaching:0");
    expect(readFileSync(path, "utf8")).toBe(withLines(HELM, [[`  ConnectionStrings__redis: ${REDIS_B64}\n`, `  ConnectionStrings__redis: ${b64(next)}\n`]]));
    expect((await store.read()).ConnectionStrings__redis).toBe(secretMarker(next));
    // What the approver and the transcript see: which key changed, never the value.
    for (const shown of [preview, store.lastDiff!, JSON.stringify(changes.map((c) => c.before))]) {
      for (const leak of [REDIS, REDIS_B64, next, b64(next), "N3w-Pa55", "Zq8vTn3L", DB_B64]) expect(shown).not.toContain(leak);
    }
    expect(store.lastDiff).toContain(`-  ConnectionStrings__redis: ${secretMarker(REDIS)}`);
    expect(store.lastDiff).toContain(`+  ConnectionStrings__redis: ${secretMarker(next)}`);
    expect(store.lastDiff!.split("\n").filter((l) => /^[-+] /.test(l))).toHaveLength(2); // the Secret's other lines do not change
  });

  it("a rollback of a Secret value it replaced is refused, naming the key: honua-agent never held the old value", async () => {
    const { path, store } = helm();
    const changes = diffConfig(await store.read(), { ConnectionStrings__Redis: "r2:6379" });
    await store.apply(changes, "k1");
    const applied = readFileSync(path, "utf8");
    const err = await store.apply(inverse(changes), "k2").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "conflict", message: expect.stringMatching(/ConnectionStrings__redis would need a secret value honua-agent never stores/) });
    expect((err as Error).message).not.toContain(REDIS);
    expect(readFileSync(path, "utf8")).toBe(applied);
  });

  it("resolves a change given in another spelling itself (no diffConfig in front)", async () => {
    const { path, store } = helm();
    await store.apply([{ key: "connectionstrings:REDIS", before: secretMarker(REDIS), after: "r2:6379" }], "k");
    expect(readFileSync(path, "utf8")).toBe(withLines(HELM, [[REDIS_B64, b64("r2:6379")]]));
  });

  it("changes a ConfigMap key, an env entry and adds a new key to the target, each line alone, and rolls back to the original bytes", async () => {
    const { path, store } = helm();
    const changes = diffConfig(await store.read(), { Cache__Enabled: "true", HONUA_OBSERVABILITY: "false", Cache__KeyPrefix: "honua:" });
    await store.apply(changes, "run-1:ConfigureCaching:0");
    const otel = line(HELM, "OTEL_EXPORTER_OTLP_ENDPOINT:");
    expect(readFileSync(path, "utf8")).toBe(withLines(HELM, [
      ['  Cache__Enabled: "false"\n', '  Cache__Enabled: "true"\n'],
      [`${otel}\n`, `${otel}\n  Cache__KeyPrefix: "honua:"\n`],
      ['  value: "true"\n', '  value: "false"\n'],
    ]));
    await store.apply(inverse(changes), "run-1:__rollback:0:config");
    expect(readFileSync(path, "utf8")).toBe(HELM);
  });

  it("refuses two spellings of one setting across sources, naming the keys and never the values", async () => {
    const text = HELM.replace('              value: "true"\n', '              value: "true"\n            - name: ConnectionStrings__Redis\n              value: other-redis:6379,password=0ther-Pw\n');
    const { path, store } = helm(text);
    const read = await store.read();
    expect(() => diffConfig(read, { ConnectionStrings__Redis: "x:6379" })).toThrow(/2 times in different spellings/);
    const err = await store.apply([{ key: "ConnectionStrings__Redis", before: null, after: "x:6379" }], "k").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("conflict");
    expect((err as Error).message).toMatch(/ConnectionStrings__Redis, ConnectionStrings__redis|ConnectionStrings__redis, ConnectionStrings__Redis/);
    expect((err as Error).message).not.toMatch(/0ther-Pw|Zq8vTn3L/);
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  it("follows a valueFrom secretKeyRef into the Secret, and writes stringData as plain text, masked in the diff", async () => {
    const text = `apiVersion: v1
kind: Secret
metadata:
  name: honua-redis
stringData:
  url: "redis-a:6379,password=Str1ngD4ta"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: honua
spec:
  template:
    spec:
      containers:
        - name: honua
          env:
            - name: ConnectionStrings__Redis
              valueFrom:
                secretKeyRef: { name: honua-redis, key: url }
`;
    const path = join(dir, "honua.yaml");
    writeFileSync(path, text);
    const store = new K8sConfigStore(path, { kind: "Deployment", name: "honua" }, log, "prod", false);
    const read = await store.read();
    expect(read.ConnectionStrings__Redis).toBe(secretMarker("redis-a:6379,password=Str1ngD4ta"));
    await store.apply(diffConfig(read, { ConnectionStrings__Redis: "redis-b:6379,password=Str1ngD4tb" }), "k");
    expect(readFileSync(path, "utf8")).toBe(text.replace("redis-a:6379,password=Str1ngD4ta", "redis-b:6379,password=Str1ngD4tb"));
    expect(store.lastDiff).not.toMatch(/Str1ngD4t/);
    // Unset through the reference: the env entry goes, the Secret keeps its key (a pod whose secretKeyRef names a missing key does not start).
    await store.apply([{ key: "ConnectionStrings__Redis", before: secretMarker("redis-b:6379,password=Str1ngD4tb"), after: null }], "k2");
    const after = readFileSync(path, "utf8");
    expect(after).toContain('url: "redis-b:6379,password=Str1ngD4tb"');
    expect(after).not.toContain("ConnectionStrings__Redis");
    expect(after).not.toContain("env:");
  });

  it("reads a folder: only the file holding the changed key is written", async () => {
    const docs = HELM.split(/\n(?=---\n)/);
    const folder = join(dir, "gitops");
    mkdirSync(folder);
    const names = ["configmap.yaml", "secret.yaml", "deployment.yaml"];
    docs.forEach((d, i) => writeFileSync(join(folder, names[i]!), `${d}\n`));
    const stamps = names.map((n) => statSync(join(folder, n)).mtimeMs);
    const store = new K8sConfigStore(folder, { kind: "Secret", name: "honua-secrets", namespace: "geo" }, log, "prod", false);
    const read = await store.read();
    expect(read.HONUA_OBSERVABILITY).toBe("true");
    await store.apply(diffConfig(read, { ConnectionStrings__Redis: "r3:6379" }), "k");
    expect(readFileSync(join(folder, "secret.yaml"), "utf8")).toBe(`${docs[1]!.replace(REDIS_B64, b64("r3:6379"))}\n`);
    expect(statSync(join(folder, "configmap.yaml")).mtimeMs).toBe(stamps[0]);
    expect(statSync(join(folder, "deployment.yaml")).mtimeMs).toBe(stamps[2]);
  });

  it("a ConfigMap change with no rollout configured is refused: it would not be live", async () => {
    const path = join(dir, "honua.yaml");
    writeFileSync(path, HELM);
    const store = new K8sConfigStore(path, { kind: "ConfigMap", name: "honua-config", namespace: "geo" }, log, "prod");
    expect(await store.preview(diffConfig(await store.read(), { Cache__Enabled: "true" }))).toMatch(/refused at apply: a ConfigMap\/Secret change needs config\.rollout/);
    const err = await store.apply(diffConfig(await store.read(), { Cache__Enabled: "true" }), "k").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "bad-input", message: expect.stringMatching(/does not restart pods.*config\.rollout.*nothing was written/) });
    expect(readFileSync(path, "utf8")).toBe(HELM);
  });

  it("finds the Deployment that loads the ConfigMap among others in the folder (a worker that does not load it is not Honua's)", async () => {
    const worker = "\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: honua-worker\n  namespace: geo\nspec:\n  template:\n    spec:\n      containers:\n        - name: honua\n          env:\n            - name: HONUA_OBSERVABILITY\n              value: \"off\"\n";
    const { store } = helm(HELM + worker);
    expect((await store.read()).HONUA_OBSERVABILITY).toBe("true");
    const both = HELM + worker.replace("          env:", "          envFrom:\n            - configMapRef: { name: honua-config }\n          env:");
    const { store: ambiguous } = helm(both);
    await expect(ambiguous.read()).rejects.toMatchObject({ code: "bad-input", message: expect.stringMatching(/ConfigMap geo\/honua-config is loaded by Deployment geo\/honua and Deployment geo\/honua-worker; name the one that runs Honua with config\.rollout\.deployment/) });
  });

  it("masks a literal credential in an env entry in the diff, though its value sits on a line of its own", async () => {
    const text = HELM.replace('              value: "true"\n', '              value: "true"\n            - name: Database__AdminPassword\n              value: L1ne-0f-1ts-0wn\n            - name: Logging__LogLevel__Default\n              value: Debug\n');
    const { store } = helm(text);
    const changes = diffConfig(await store.read(), { Logging__LogLevel__Default: null }); // the line above the removed entry is the password's
    expect(await store.preview(changes)).toContain(`value: ${secretMarker("L1ne-0f-1ts-0wn")}`);
    await store.apply(changes, "k");
    expect(store.lastDiff).not.toContain("L1ne-0f-1ts-0wn");
  });

  it("says so when the Deployment loads a Secret the folder does not hold", async () => {
    const { store } = helm(HELM.replace("name: honua-secrets\n          env", "name: honua-external\n          env"));
    expect(await store.preview(diffConfig(await store.read(), { Cache__Enabled: "true" }))).toContain("note: Secret honua-external (loaded with envFrom) is not in");
  });

  it("keeps CRLF line ends and a missing final newline", async () => {
    const text = 'apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: honua\r\ndata:\r\n  Cache__Enabled: "false"';
    const path = join(dir, "honua.yaml");
    writeFileSync(path, text);
    const store = new K8sConfigStore(path, { kind: "ConfigMap", name: "honua" }, log, "prod", false);
    const changes = diffConfig(await store.read(), { Cache__Enabled: "true", Cache__KeyPrefix: "honua:" });
    await store.apply(changes, "k1");
    expect(readFileSync(path, "utf8")).toBe(text.replace('"false"', '"true"') + '\r\n  Cache__KeyPrefix: "honua:"');
    await store.apply(inverse(changes), "k2");
    expect(readFileSync(path, "utf8")).toBe(text);
  });
});

describe("the Redis connection in the spellings Honua's own files use", () => {
  const ENV = "# .env.docker.example\nHONUA_OBSERVABILITY=false\nConnectionStrings__redis=redis:6379\nCache__Enabled=false\n";

  it("env file with ConnectionStrings__redis: a change to ConnectionStrings__Redis edits that line and adds no second spelling", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const store = new EnvFileConfigStore(path, log, "compose");
    const read = await store.read();
    expect(read.ConnectionStrings__redis).toBe("redis:6379");
    const changes = diffConfig(read, { ConnectionStrings__Redis: "redis:6380" });
    expect(await store.preview([])).toBe("");
    await store.apply(changes, "k");
    expect(readFileSync(path, "utf8")).toBe(ENV.replace("ConnectionStrings__redis=redis:6379", "ConnectionStrings__redis=redis:6380"));
    await store.apply([{ key: "ConnectionStrings__Redis", before: "redis:6380", after: "redis:6381" }], "k2"); // named in another spelling
    expect(readFileSync(path, "utf8")).toBe(ENV.replace("redis:6379", "redis:6381"));
  });

  it.each([
    ["env file", ".env", ENV, (p: string) => new EnvFileConfigStore(p, log, "compose")],
    ["appsettings.json", "appsettings.json", '{\n  "ConnectionStrings": { "redis": "redis:6379" },\n  "Cache": { "Enabled": false }\n}\n', (p: string) => new AppSettingsConfigStore(p, log, "legacy")],
  ] as const)("%s: a round trip with no change gives the identical file and writes nothing", async (_, name, text, make) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    const before = statSync(path);
    const store = make(path);
    const changes = diffConfig(await store.read(), { ConnectionStrings__Redis: "redis:6379", Cache__Enabled: "false" });
    expect(changes).toEqual([]);
    await store.apply(changes, "noop");
    await store.apply([{ key: "ConnectionStrings__Redis", before: "redis:6379", after: "redis:6379" }], "same");
    expect(readFileSync(path, "utf8")).toBe(text);
    expect([statSync(path).ino, statSync(path).mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it("env file with the compose alias HONUA_REDIS_URL: written there, refused beside a second spelling", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, "HONUA_REDIS_URL=redis:6379\n");
    const store = new EnvFileConfigStore(path, log, "compose");
    await store.apply([{ key: "ConnectionStrings__Redis", before: "redis:6379", after: "redis:6380" }], "k");
    expect(readFileSync(path, "utf8")).toBe("HONUA_REDIS_URL=redis:6380\n");
    writeFileSync(path, "HONUA_REDIS_URL=redis:6379\nConnectionStrings__Redis=redis:6379\n");
    await expect(store.apply([{ key: "ConnectionStrings__Redis", before: "redis:6379", after: "x:1" }], "k2")).rejects.toMatchObject({ code: "conflict", message: expect.stringContaining("2 times in different spellings") });
  });

  it('appsettings.json with "ConnectionStrings": {"redis": ...}: the change replaces that member\'s value and nothing else', async () => {
    const text = `{
  "ConnectionStrings": {
    "DefaultConnection": "env:HONUA_DB",
    "redis": "redis:6379"
  },
  "Cache": { "Enabled": false }
}
`;
    const path = join(dir, "appsettings.json");
    writeFileSync(path, text);
    const store = new AppSettingsConfigStore(path, log, "legacy");
    const read = await store.read();
    expect(read.ConnectionStrings__redis).toBe("redis:6379");
    expect(await store.preview(diffConfig(read, { ConnectionStrings__Redis: "redis:6379" }))).toBe("");
    const changes = diffConfig(read, { ConnectionStrings__Redis: "redis-2:6379", Cache__Enabled: "true" });
    await store.apply(changes, "k");
    expect(readFileSync(path, "utf8")).toBe(text.replace('"redis": "redis:6379"', '"redis": "redis-2:6379"').replace('"Enabled": false', '"Enabled": true'));
    await store.apply(inverse(changes), "k2");
    expect(readFileSync(path, "utf8")).toBe(text);
  });
});
