import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { OpLog } from "../src/store/oplog.js";
import { NginxTraffic, NginxTrafficOptions, renderSplit } from "../src/tools/traffic/nginx.js";

// The nginx commands are stand-ins that record each call, so what the adapter runs (and does not run) is visible.
let dir: string;
let log: OpLog;
let calls: string;
const sh = (script: string) => ["sh", "-c", script];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "honua-adapters-nginx-"));
  log = new OpLog(join(dir, "ops.sqlite"));
  calls = join(dir, "calls");
  writeFileSync(calls, "");
});
afterEach(() => {
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

const options = (extra: Partial<Record<"test" | "reload", string[]>> = {}) =>
  NginxTrafficOptions.parse({
    kind: "nginx",
    include: join(dir, "honua-split.conf"),
    primary: "honua_primary",
    candidate: "honua_candidate",
    test: sh(`echo test >> ${calls}`),
    reload: sh(`echo reload >> ${calls}`),
    ...extra,
  });
const ran = () => readFileSync(calls, "utf8").split("\n").filter(Boolean);

describe("nginx traffic adapter under replay and failure (recorded commands)", () => {
  it("a replay after a crash between writing the include and reloading nginx still tests and reloads", async () => {
    const o = options();
    // The first attempt wrote the 10% include and died before `nginx -s reload`: nginx still serves 0%.
    writeFileSync(o.include, renderSplit(o, 10));
    await new NginxTraffic(o, log, "local").setShare("cache", 10, "run-1:EnableCachingGradually:0");
    expect(ran()).toEqual(["test", "reload"]);
    // The same key once journalled does nothing.
    await new NginxTraffic(o, log, "local").setShare("cache", 10, "run-1:EnableCachingGradually:0");
    expect(ran()).toEqual(["test", "reload"]);
  });

  it("nginx -t failing on a first include leaves no include behind and reloads nothing", async () => {
    const o = options({ test: sh(`echo test >> ${calls}; echo 'emerg: bad split' >&2; exit 1`) });
    const t = new NginxTraffic(o, log, "local");
    await expect(t.setShare("cache", 10, "run-1:EnableCachingGradually:0")).rejects.toThrow(/nginx rejected the split .*nothing was reloaded.*emerg: bad split/s);
    expect(existsSync(o.include)).toBe(false);
    expect(ran()).toEqual(["test"]);
    expect(await t.share("cache")).toBe(0);
  });

  it("nginx -t failing puts the previous include back byte for byte and reloads nothing", async () => {
    const o = options({ test: sh(`echo test >> ${calls}; exit 1`) });
    const prior = '# hand-made\nsplit_clients "$request_id" $honua_backend {\n  * honua_primary;\n}\n';
    writeFileSync(o.include, prior);
    await expect(new NginxTraffic(o, log, "local").setShare("cache", 50, "k")).rejects.toMatchObject({ code: "failed" });
    expect(readFileSync(o.include, "utf8")).toBe(prior);
    expect(ran()).toEqual(["test"]);
  });

  it("a rollback that crashed after writing 0% but before the reload is not read as 'already at 0'", async () => {
    const o = options();
    const t = new NginxTraffic(o, log, "local");
    await t.setShare("cache", 50, "run-1:EnableCachingGradually:1");
    expect(await t.share("cache")).toBe(50);
    // What a crash inside setShare(0) leaves: the intent journalled, the include rewritten, no reload.
    log.put("local", "nginx-intent", "run-1:__rollback:0:traffic", { from: 50, to: 0 });
    writeFileSync(o.include, renderSplit(o, 0));
    expect(await t.share("cache")).toBe(50);
    // The replayed rollback (same key) reloads, and from then on the include is the truth.
    await t.setShare("cache", 0, "run-1:__rollback:0:traffic");
    expect(ran().slice(-2)).toEqual(["test", "reload"]);
    expect(await t.share("cache")).toBe(0);
  });

  it("a failed reload leaves the share unconfirmed, so a rollback still runs", async () => {
    const o = options({ reload: sh("exit 1") });
    const t = new NginxTraffic(options(), log, "local");
    await t.setShare("cache", 10, "a");
    await expect(new NginxTraffic(o, log, "local").setShare("cache", 50, "b")).rejects.toThrow(/exited 1; the previous include is back/);
    expect(readFileSync(o.include, "utf8")).toBe(renderSplit(o, 10));
    expect(await t.share("cache")).toBe(50);
  });

  it("refuses a glob as the include it owns, naming the field", () => {
    const r = NginxTrafficOptions.safeParse({ kind: "nginx", include: "/etc/nginx/conf.d/*.conf", primary: "a", candidate: "b" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]).toMatchObject({ path: ["include"], message: expect.stringMatching(/not a glob or a folder/) });
    expect(NginxTrafficOptions.safeParse({ kind: "nginx", include: "/etc/nginx/conf.d/", primary: "a", candidate: "b" }).success).toBe(false);
    expect(NginxTrafficOptions.safeParse({ kind: "nginx", include: "honua-split.conf", primary: "a", candidate: "b" }).success).toBe(true);
  });
});
