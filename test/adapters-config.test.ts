import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseConfig } from "../src/config.js";
import { AgentError } from "../src/core/errors.js";
import { OpLog } from "../src/store/oplog.js";
import { AppSettingsConfigStore } from "../src/tools/config/appsettings.js";
import { diffConfig, inverse } from "../src/tools/config/diff.js";
import { EnvFileConfigStore } from "../src/tools/config/envfile.js";
import type { FileConfigStore } from "../src/tools/config/file.js";
import { K8sConfigStore } from "../src/tools/config/k8s.js";
import { CrashingLog } from "./fixtures/redis-server.js";

let dir: string;
let log: OpLog;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-adapters-config-"));
  log = new OpLog(join(dir, "ops.sqlite"));
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

const DESIRED = { ConnectionStrings__Redis: "127.0.0.1:6379", Cache__Enabled: "true", Cache__DefaultTtlSeconds: "3600" };


/** Configure, then roll back (each once, under its own key); returns the bytes after each. */
async function roundTrip(store: FileConfigStore, path: string): Promise<{ applied: string; restored: string }> {
  const changes = diffConfig(await store.read(), DESIRED);
  await store.apply(changes, "run-1:ConfigureCaching:0");
  const applied = readFileSync(path, "utf8");
  await store.apply(inverse(changes), "run-1:__rollback:0:config");
  return { applied, restored: readFileSync(path, "utf8") };
}

describe("rollback restores the last known-good bytes (real files)", () => {
  it.each([
    ["no final newline", "A=1\nCache__Enabled=false"],
    ["trailing blank lines", "A=1\nCache__Enabled=false\n\n\n"],
    ["an empty file", ""],
    ["CRLF line ends", "A=1\r\nCache__Enabled=false\r\n"],
  ])("env file with %s", async (_, text) => {
    const path = join(dir, "honua.env");
    writeFileSync(path, text);
    const { restored } = await roundTrip(new EnvFileConfigStore(path, log, "local"), path);
    expect(restored).toBe(text);
  });

  it.each([
    ["a one-line section and an empty root", '{"Logging": {"LogLevel": {"Default": "Information"}}}\n'],
    ["tabs, 1.0 and a long integer that JSON numbers cannot hold", '{\n\t"Version": 1.0,\n\t"TenantId": 12345678901234567890,\n\t"Arr": [1, 2]\n}'],
    ["an empty object", "{}"],
  ])("appsettings.json with %s: only the changed members change, and rollback gives the bytes back", async (_, text) => {
    const path = join(dir, "appsettings.json");
    writeFileSync(path, text);
    const { applied, restored } = await roundTrip(new AppSettingsConfigStore(path, log, "legacy"), path);
    expect(JSON.parse(applied)).toMatchObject({ Cache: { Enabled: true, DefaultTtlSeconds: 3600 }, ConnectionStrings: { Redis: "127.0.0.1:6379" } });
    if (text.includes("TenantId")) expect(applied).toContain('"TenantId": 12345678901234567890,\n\t"Arr": [1, 2]');
    expect(restored).toBe(text);
  });

  it("appsettings.json whose sections are cased otherwise: the workflow's diff finds the keys .NET would bind", async () => {
    const path = join(dir, "appsettings.json");
    const text = '{\n  "cache": { "enabled": false, "defaultTtlSeconds": 300 }\n}\n';
    writeFileSync(path, text);
    const { applied, restored } = await roundTrip(new AppSettingsConfigStore(path, log, "legacy"), path);
    expect(applied).toContain('"cache": { "enabled": true, "defaultTtlSeconds": 3600 }');
    expect(JSON.parse(applied)).not.toHaveProperty("Cache");
    expect(restored).toBe(text);
  });

  it("reads CRLF env files: a key that exists is changed in place, not appended a second time", async () => {
    const path = join(dir, "honua.env");
    writeFileSync(path, "A=1\r\nCache__Enabled=false\r\n");
    const store = new EnvFileConfigStore(path, log, "local");
    expect((await store.read()).Cache__Enabled).toBe("false");
    const { applied } = await roundTrip(store, path);
    expect(applied.match(/Cache__Enabled=/g)).toHaveLength(1);
    expect(applied).toContain("Cache__Enabled=true\r\n");
  });

  it("Kubernetes Deployment whose container had no env list", async () => {
    const path = join(dir, "honua.yaml");
    const text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: honua\nspec:\n  template:\n    spec:\n      containers:\n        - name: honua # the server\n          image: honuaio/honua-server:1.4\n";
    writeFileSync(path, text);
    const { applied, restored } = await roundTrip(new K8sConfigStore(path, { kind: "Deployment", name: "honua" }, log, "k8s"), path);
    expect(applied).toContain("- name: Cache__Enabled");
    expect(restored).toBe(text);
  });

  it("a rollback replayed after a crash between its write and its journal entry leaves the original bytes", async () => {
    const crashing = new CrashingLog(join(dir, "crash.sqlite"));
    try {
      const path = join(dir, "honua.env");
      const text = "# compose\nCache__Enabled=false   # off until Redis exists\n";
      writeFileSync(path, text);
      const store = new EnvFileConfigStore(path, crashing, "local");
      const changes = diffConfig(await store.read(), DESIRED);
      await store.apply(changes, "run-1:ConfigureCaching:0");
      crashing.crashOn = "config-apply";
      await expect(store.apply(inverse(changes), "run-1:__rollback:0:config")).rejects.toThrow(/crash/);
      expect(readFileSync(path, "utf8")).toBe(text); // written, not journalled
      // A new process resumes the rollback with the same key.
      await new EnvFileConfigStore(path, crashing, "local").apply(inverse(changes), "run-1:__rollback:0:config");
      expect(readFileSync(path, "utf8")).toBe(text);
    } finally {
      crashing.close();
    }
  });

  it("refuses to write through a symlink that leads out of the configured file's folder, and writes nothing", async () => {
    const outside = mkdtempSync(join(tmpdir(), "honua-adapters-outside-"));
    try {
      const target = join(outside, "passwd");
      writeFileSync(target, "root:x:0:0\n");
      const link = join(dir, "honua.env");
      symlinkSync(target, link);
      const store = new EnvFileConfigStore(link, log, "local");
      const err = await store.apply([{ key: "Cache__Enabled", before: null, after: "true" }], "k").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "conflict", message: expect.stringMatching(/outside its folder.*nothing was written/) });
      expect(readFileSync(target, "utf8")).toBe("root:x:0:0\n");
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("writes through a symlinked config file instead of replacing the link", async () => {
    const real = join(dir, "shared.env");
    const link = join(dir, "honua.env");
    writeFileSync(real, "Cache__Enabled=false\n");
    symlinkSync(real, link);
    const store = new EnvFileConfigStore(link, log, "local");
    await store.apply(diffConfig(await store.read(), DESIRED), "k");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, "utf8")).toContain("Cache__Enabled=true");
  });
});

describe("optimistic concurrency: a concurrent edit is refused and nothing is written", () => {
  const cases: [string, string, (p: string) => FileConfigStore, (t: string) => string][] = [
    ["k8s ConfigMap", "kind: ConfigMap\nmetadata:\n  name: honua\ndata:\n  Cache__Enabled: \"false\"\n  Other: a\n", (p) => new K8sConfigStore(p, { kind: "ConfigMap", name: "honua" }, log, "k8s", false), (t) => t.replace("Other: a", "Other: b")],
    ["appsettings", '{\n  "Cache": {\n    "Enabled": false\n  },\n  "Other": "a"\n}\n', (p) => new AppSettingsConfigStore(p, log, "legacy"), (t) => t.replace('"a"', '"b"')],
    ["env file", "Cache__Enabled=false\nOther=a\n", (p) => new EnvFileConfigStore(p, log, "local"), (t) => t.replace("Other=a", "Other=b")],
  ];
  it.each(cases)("%s", async (_, text, make, edit) => {
    const path = join(dir, "config");
    writeFileSync(path, text);
    const store = make(path);
    const changes = diffConfig(await store.read(), DESIRED);
    writeFileSync(path, edit(text)); // someone else's edit between the read and the write
    const err = await store.apply(changes, "k").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "conflict" });
    expect(readFileSync(path, "utf8")).toBe(edit(text));
    // Nothing was journalled either: once the file is read again, the same key applies.
    await store.read();
    await store.apply(changes, "k");
    expect((await store.read()).Cache__Enabled).toBe("true");
  });
});

describe("no secret value in an error message", () => {
  it("an appsettings.json that is not JSON is refused without quoting the text around the error", async () => {
    const path = join(dir, "appsettings.json");
    writeFileSync(path, '{ "Api": { "Token": sk-live-4242 } }\n');
    const err = await new AppSettingsConfigStore(path, log, "legacy").read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as Error).message).toMatch(/not valid JSON/);
    expect((err as Error).message).not.toContain("sk-live");
  });

  it("a manifest that is not YAML is refused without quoting its lines", async () => {
    const path = join(dir, "honua.yaml");
    writeFileSync(path, "kind: ConfigMap\nmetadata:\n  name: honua\ndata:\n  DB_PASSWORD: hunter2: oops\n");
    const err = await new K8sConfigStore(path, { kind: "ConfigMap", name: "honua" }, log, "k8s").read().catch((e: unknown) => e);
    expect((err as AgentError).code).toBe("bad-input");
    expect((err as Error).message).toMatch(/line 5/);
    expect((err as Error).message).not.toContain("hunter2");
  });

  it("a Redis URL with a password that does not parse is named without the password, and nothing else is touched", () => {
    const before = readFileSync(join(dir, "ops.sqlite")).length;
    const err = (() => {
      try {
        parseConfig({ deployments: { x: {
          provider: "local", approvers: ["a"],
          cache: { redis: { url: "redis://:hunter2@10.0.0.5:99999", connectionString: "env:HONUA_REDIS" } },
          metrics: { source: "probe", urls: ["http://127.0.0.1:8080/tiles/a/1/0/0.mvt"] },
          config: { kind: "envfile", path: "x.env" },
          traffic: { kind: "nginx", include: "x.conf", primary: "p", candidate: "c" },
        } } }, "honua-agent.yaml", {});
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.message).toMatch(/deployments\.x\.cache\.redis\.url: not a URL/);
    expect(err?.message).not.toContain("hunter2");
    expect(readFileSync(join(dir, "ops.sqlite")).length).toBe(before);
  });
});

describe("a rollback long after the change (same process)", () => {
  it("is held to the keys it restores, not to a hash from an earlier step: an operator's unrelated edit is kept", async () => {
    const path = join(dir, "honua.env");
    writeFileSync(path, "Cache__Enabled=false\nLogging__Level=Information\n");
    const store = new EnvFileConfigStore(path, log, "local");
    const changes = diffConfig(await store.read(), DESIRED);
    await store.apply(changes, "run-1:ConfigureCaching:0");
    writeFileSync(path, readFileSync(path, "utf8").replace("Information", "Debug")); // during the monitoring hour
    await store.apply(inverse(changes), "run-1:__rollback:0:config");
    expect(readFileSync(path, "utf8")).toBe("Cache__Enabled=false\nLogging__Level=Debug\n");
  });

  it("still refuses when one of the keys it restores was changed by someone else, and writes nothing", async () => {
    const path = join(dir, "honua.env");
    writeFileSync(path, "Cache__Enabled=false\n");
    const store = new EnvFileConfigStore(path, log, "local");
    const changes = diffConfig(await store.read(), DESIRED);
    await store.apply(changes, "run-1:ConfigureCaching:0");
    const edited = readFileSync(path, "utf8").replace("Cache__DefaultTtlSeconds=3600", "Cache__DefaultTtlSeconds=60");
    writeFileSync(path, edited);
    await expect(store.apply(inverse(changes), "run-1:__rollback:0:config")).rejects.toMatchObject({ code: "conflict", message: expect.stringContaining("Cache__DefaultTtlSeconds is 60, expected 3600") });
    expect(readFileSync(path, "utf8")).toBe(edited);
  });
});

describe("a connection string whose password is a reference (ElastiCache with passwordReference)", () => {
  const ENDPOINT = "master.honua-1a2b.euw1.cache.amazonaws.com:6379,ssl=true,password=aws:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:honua-redis";

  it("is kept as a reference: a replay after a crash finds it applied, and the rollback removes it", async () => {
    const crashing = new CrashingLog(join(dir, "crash.sqlite"));
    try {
      const path = join(dir, "honua.env");
      const text = "Cache__Enabled=false\n";
      writeFileSync(path, text);
      const store = new EnvFileConfigStore(path, crashing, "aws");
      const changes = diffConfig(await store.read(), { ConnectionStrings__Redis: ENDPOINT, Cache__Enabled: "true" });
      crashing.crashOn = "config-apply";
      await expect(store.apply(changes, "run-1:ConfigureCaching:0")).rejects.toThrow(/crash/);
      const fresh = new EnvFileConfigStore(path, crashing, "aws"); // the resumed process
      expect((await fresh.read()).ConnectionStrings__Redis).toBe(ENDPOINT);
      await fresh.apply(changes, "run-1:ConfigureCaching:0");
      expect(fresh.lastDiff).toBe("(already applied)");
      await fresh.apply(inverse(changes), "run-1:__rollback:0:config");
      expect(readFileSync(path, "utf8")).toBe(text);
    } finally {
      crashing.close();
    }
  });

  it("while a literal password in the same place is still masked", async () => {
    const path = join(dir, "honua.env");
    writeFileSync(path, "ConnectionStrings__Redis=h:6379,ssl=true,password=hunter2\n");
    const store = new EnvFileConfigStore(path, log, "aws");
    expect((await store.read()).ConnectionStrings__Redis).toMatch(/^secret:sha256:/);
    expect(await store.preview([{ key: "Cache__Enabled", before: null, after: "true" }])).not.toContain("hunter2");
  });
});

describe("a config path that is not a file", () => {
  it("a folder is refused with the option named, and nothing is written", async () => {
    const store = new EnvFileConfigStore(dir, log, "local");
    await expect(store.read()).rejects.toMatchObject({ code: "bad-input", message: expect.stringMatching(/is a folder; config\.path names the file/) });
    await expect(store.apply([{ key: "Cache__Enabled", before: null, after: "true" }], "k")).rejects.toMatchObject({ code: "bad-input" });
    expect(log.get("local", "config-apply", "k", z.unknown())).toBeUndefined();
  });
});
