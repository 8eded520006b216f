import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentError } from "../src/core/errors.js";
import { OpLog } from "../src/store/oplog.js";
import { AppSettingsConfigStore } from "../src/tools/config/appsettings.js";
import { diffConfig, inverse } from "../src/tools/config/diff.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import { K8sConfigStore } from "../src/tools/config/k8s.js";

let dir: string;
let log: OpLog;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-config-"));
  log = new OpLog(join(dir, "ops.sqlite"));
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

const DESIRED = {
  ConnectionStrings__Redis: "127.0.0.1:6379,defaultDatabase=3",
  Cache__Enabled: "true",
  Cache__DefaultTtlSeconds: "3600",
  Cache__KeyPrefix: "honua:",
};

const ENV = `# Honua (compose .env)
ConnectionStrings__DefaultConnection=Host=db;Username=honua;Password=hunter2
FileStorage__Provider=Local
Cache__Enabled=false   # off until Redis exists
export Cache__DefaultTtlSeconds="300"
HONUA_OBSERVABILITY=env:HONUA_OBS
`;

async function configureThenRollBack(store: EnvFileConfigStore | K8sConfigStore | AppSettingsConfigStore, path: string) {
  const original = readFileSync(path, "utf8");
  const changes = diffConfig(await store.read(), DESIRED);
  await store.apply(changes, "run-1:ConfigureCaching:0");
  const after = await store.read();
  for (const [k, v] of Object.entries(DESIRED)) expect(after[k]).toBe(v);
  expect(store.lastDiff).toContain("+");
  // The same key again changes nothing, even after someone else's read.
  await store.apply(changes, "run-1:ConfigureCaching:0");
  await store.apply(inverse(changes), "run-1:Rollback:0:config");
  expect(readFileSync(path, "utf8")).toBe(original);
  return changes;
}

describe("env file config adapter (real files)", () => {
  it("writes Honua keys in place, keeps comments and secrets out of what it returns, and restores byte for byte", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const store = new EnvFileConfigStore(path, log, "local");
    const read = await store.read();
    expect(read.ConnectionStrings__DefaultConnection).toMatch(/^secret:sha256:[0-9a-f]{16}$/);
    expect(JSON.stringify(read)).not.toContain("hunter2");
    expect(read.HONUA_OBSERVABILITY).toBe("env:HONUA_OBS");
    expect(read.Cache__Enabled).toBe("false");
    expect(read.Cache__DefaultTtlSeconds).toBe("300");
    const changes = await configureThenRollBack(store, path);
    expect(changes.map((c) => c.key).sort()).toEqual(["Cache__DefaultTtlSeconds", "Cache__Enabled", "Cache__KeyPrefix", "ConnectionStrings__Redis"]);
    expect(JSON.stringify(changes)).not.toContain("hunter2");
  });

  it("masks credentials in the file diff it records, context lines included", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, "Api__Token=abc123\nCache__Enabled=false\nStorage__Secret=env:S\nConnectionStrings__DefaultConnection=Host=db;Password=hunter2\nCache__DefaultTtlSeconds=300\n");
    const store = new EnvFileConfigStore(path, log, "local");
    await store.apply(diffConfig(await store.read(), { Cache__Enabled: "true", Cache__DefaultTtlSeconds: "3600" }), "m1");
    expect(store.lastDiff).toContain("-Cache__Enabled=false\n+Cache__Enabled=true");
    expect(store.lastDiff).toContain(" Api__Token=***");
    expect(store.lastDiff).toContain("Password=***");
    expect(store.lastDiff).toContain(" Storage__Secret=env:S"); // a reference is not a secret
    expect(store.lastDiff).not.toMatch(/abc123|hunter2/);
  });

  it("keeps the line's place and export keyword when it changes a value", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const store = new EnvFileConfigStore(path, log, "local");
    await store.apply(diffConfig(await store.read(), DESIRED), "k1");
    const lines = readFileSync(path, "utf8").split("\n");
    expect(lines[0]).toBe("# Honua (compose .env)");
    expect(lines[3]).toBe("Cache__Enabled=true   # off until Redis exists");
    expect(lines[4]).toBe('export Cache__DefaultTtlSeconds="3600"');
    expect(lines).toContain("ConnectionStrings__Redis=127.0.0.1:6379,defaultDatabase=3");
    expect(lines[1]).toContain("Password=hunter2"); // untouched, still on disk where it was
  });

  it("refuses to write when the file changed since it was read (conflict) and writes nothing", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const store = new EnvFileConfigStore(path, log, "local");
    const changes = diffConfig(await store.read(), DESIRED);
    writeFileSync(path, `${ENV}FileStorage__LocalStorage__BasePath=/data\n`); // someone else edits meanwhile
    const edited = readFileSync(path, "utf8");
    const err = await store.apply(changes, "k2").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("conflict");
    expect((err as AgentError).message).toMatch(/changed since honua-agent read it/);
    expect(readFileSync(path, "utf8")).toBe(edited);
  });

  it("refuses a change whose `before` no longer holds, in a process that never read the file", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const fresh = new EnvFileConfigStore(path, log, "local");
    const err = await fresh.apply([{ key: "Cache__Enabled", before: "true", after: "yes" }], "k3").catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("conflict");
    expect((err as AgentError).message).toContain("Cache__Enabled is false, expected true");
  });

  it("treats a replay after a crash (change already on disk, not journalled) as done", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const a = new EnvFileConfigStore(path, log, "local");
    const changes = diffConfig(await a.read(), DESIRED);
    await a.apply(changes, "k4");
    const otherLog = new OpLog(join(dir, "other.sqlite")); // the journal write was lost
    try {
      const b = new EnvFileConfigStore(path, otherLog, "local");
      await b.apply(changes, "k4");
      expect((await b.read()).Cache__Enabled).toBe("true");
    } finally {
      otherLog.close();
    }
  });

  it("will not write a secret it never saw back from a marker", async () => {
    const path = join(dir, ".env");
    writeFileSync(path, ENV);
    const store = new EnvFileConfigStore(path, log, "local");
    const read = await store.read();
    const marker = read.ConnectionStrings__DefaultConnection!;
    const err = await store.apply([{ key: "ConnectionStrings__DefaultConnection", before: marker, after: "secret:sha256:0000000000000000" }], "k5").catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("conflict");
    expect(readFileSync(path, "utf8")).toBe(ENV);
  });
});

const MANIFEST = `# GitOps: honua in prod
apiVersion: v1
kind: ConfigMap
metadata:
  name: honua-config # Honua's environment
  namespace: geo
data:
  Cache__Enabled: "false" # flipped by the caching rollout
  FileStorage__Provider: Local
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: honua
  namespace: geo
spec:
  template:
    spec:
      containers:
        - name: honua
          image: honuaio/honua-server:1.4
          env:
            - name: Cache__Enabled
              value: "false"
            - name: ConnectionStrings__DefaultConnection
              valueFrom:
                secretKeyRef: { name: honua-db, key: url }
        - name: sidecar
          image: busybox
`;

describe("Kubernetes manifest config adapter (real files, multi-document YAML)", () => {
  it("edits ConfigMap data, keeps comments and the other documents, and restores exactly", async () => {
    const path = join(dir, "honua.yaml");
    writeFileSync(path, MANIFEST);
    const store = new K8sConfigStore(path, { kind: "ConfigMap", name: "honua-config", namespace: "geo" }, log, "k8s", false);
    expect((await store.read()).Cache__Enabled).toBe("false");
    await store.apply(diffConfig(await store.read(), DESIRED), "c1");
    const text = readFileSync(path, "utf8");
    expect(text).toContain('Cache__Enabled: "true" # flipped by the caching rollout');
    expect(text).toContain('Cache__DefaultTtlSeconds: "3600"'); // a string, as ConfigMap data must be
    expect(text).toContain("# GitOps: honua in prod");
    expect(text).toContain("kind: Deployment");
    writeFileSync(path, MANIFEST);
    const again = new K8sConfigStore(path, { kind: "ConfigMap", name: "honua-config" }, log, "k8s", false);
    await configureThenRollBack(again, path);
  });

  it("edits a Deployment container's env and never overwrites a valueFrom reference", async () => {
    const path = join(dir, "honua.yaml");
    writeFileSync(path, MANIFEST);
    const store = new K8sConfigStore(path, { kind: "Deployment", name: "honua", container: "honua" }, log, "k8s");
    const read = await store.read();
    expect(read.ConnectionStrings__DefaultConnection).toBe("k8s:secret:honua-db/url");
    await configureThenRollBack(store, path);
    const err = await store.apply([{ key: "ConnectionStrings__DefaultConnection", before: "k8s:secret:honua-db/url", after: "Host=x" }], "c2").catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("conflict");
    expect(readFileSync(path, "utf8")).toBe(MANIFEST);
  });

  it("asks which container when there are several, and refuses on a concurrent edit", async () => {
    const path = join(dir, "honua.yaml");
    writeFileSync(path, MANIFEST);
    await expect(new K8sConfigStore(path, { kind: "Deployment", name: "honua" }, log, "k8s").read()).rejects.toThrow(/2 containers/);
    const store = new K8sConfigStore(path, { kind: "ConfigMap", name: "honua-config" }, log, "k8s", false);
    const changes = diffConfig(await store.read(), DESIRED);
    writeFileSync(path, MANIFEST.replace("FileStorage__Provider: Local", "FileStorage__Provider: AwsS3"));
    await expect(store.apply(changes, "c3")).rejects.toMatchObject({ code: "conflict" });
  });
});

const APPSETTINGS = `{
    "ConnectionStrings": {
        "DefaultConnection": "aws:secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:honua-db"
    },
    "cache": {
        "Enabled": false,
        "DefaultTtlSeconds": 300
    },
    "Logging": { "LogLevel": { "Default": "Information" } }
}
`;

describe("appsettings.json config adapter (real files)", () => {
  it("maps Section__Key to nested sections case-insensitively, keeps JSON types and indentation, and restores exactly", async () => {
    const path = join(dir, "appsettings.json");
    writeFileSync(path, JSON.stringify(JSON.parse(APPSETTINGS), null, 4) + "\n");
    const original = readFileSync(path, "utf8");
    const store = new AppSettingsConfigStore(path, log, "legacy");
    const read = await store.read();
    expect(read.cache__Enabled).toBe("false");
    expect(read.ConnectionStrings__DefaultConnection).toMatch(/^aws:secretsmanager:/); // a reference stays as it is
    const changes = diffConfig(read, DESIRED); // keys found in the spelling they have (`cache__Enabled`)
    await store.apply(changes, "a1");
    const json = JSON.parse(readFileSync(path, "utf8")) as { cache: Record<string, unknown>; Cache?: unknown; ConnectionStrings: Record<string, unknown> };
    expect(json.cache).toEqual({ Enabled: true, DefaultTtlSeconds: 3600, KeyPrefix: "honua:" });
    expect(json.Cache).toBeUndefined();
    expect(json.ConnectionStrings.Redis).toBe("127.0.0.1:6379,defaultDatabase=3");
    expect(readFileSync(path, "utf8")).toContain('\n    "cache": {');
    await store.apply(inverse(changes), "a2");
    expect(readFileSync(path, "utf8")).toBe(original);
  });

  it("refuses a concurrent edit", async () => {
    const path = join(dir, "appsettings.json");
    writeFileSync(path, APPSETTINGS);
    const store = new AppSettingsConfigStore(path, log, "legacy");
    const changes = diffConfig(await store.read(), { Cache__KeyPrefix: "honua:" });
    writeFileSync(path, APPSETTINGS.replace("Information", "Debug"));
    await expect(store.apply(changes, "a3")).rejects.toMatchObject({ code: "conflict" });
    expect(readFileSync(path, "utf8")).toContain("Debug");
  });
});
