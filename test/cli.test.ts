import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { userInfo } from "node:os";
import { cli, tempHome } from "./helpers.js";

describe("command line contract", () => {
  let t: ReturnType<typeof tempHome>;
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(() => t.cleanup());

  it("plan --json prints the typed plan and changes nothing", () => {
    const r = cli(t.home, ["plan", "add redis caching to prod with a ttl of 10 minutes", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ workflow: "add-caching-layer", deployment: "prod", params: { cacheType: "redis", ttlSeconds: 600 } });
    expect(cli(t.home, ["runs", "--json"]).json()).toEqual([]);
  });

  it("unknown deployment: exit 2 with the known names, nothing started", () => {
    const r = cli(t.home, ["run", "add redis caching to qa", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/prod/);
    expect(r.stdout).toMatch(/staging/);
    expect(cli(t.home, ["runs", "--json"]).json()).toEqual([]);
  });

  it("with no $USER or $LOGNAME the requester is the account the process runs as, not \"unknown\"", () => {
    const unset = { USER: "", LOGNAME: "", HONUA_AGENT_USER: "" };
    const r = cli(t.home, ["run", "add redis caching to prod", "--json"], unset);
    expect(r.code, r.stderr).toBe(3); // waiting at its first gate
    const runs = cli(t.home, ["runs", "--json"], unset).json() as { requestedBy: string }[];
    expect(runs.map((x) => x.requestedBy)).toEqual([userInfo().username]);
    expect(userInfo().username).not.toBe("unknown");
  });

  it("missing deployment: exit 5 with the question", () => {
    const r = cli(t.home, ["run", "add redis caching", "--json"]);
    expect(r.code).toBe(5);
    expect(r.json()).toMatchObject({ missing: ["deployment"] });
  });

  it("a second run on a locked deployment exits 2 naming the holder; reject releases it", () => {
    const first = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]).json() as { run: string };
    const second = cli(t.home, ["run", "add varnish to production", "--as", "dave", "--json"]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(first.run);
    const rej = cli(t.home, ["reject", first.run, "--as", "bob", "--comment", "not now", "--json"]);
    expect(rej.code).toBe(4);
    expect(rej.json()).toMatchObject({ run: first.run, status: "rejected", pending: null });
    expect(cli(t.home, ["run", "add varnish to production", "--as", "dave", "--json"]).code).toBe(3);
  });

  it("a non-approver's click exits 2 and records nothing; transcript shows who decided what", () => {
    const s = cli(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"]).json() as { run: string };
    const bad = cli(t.home, ["approve", s.run, "--as", "mallory", "--json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/approvers: alice, bob/);
    cli(t.home, ["approve", s.run, "--as", "alice", "--comment", "go", "--json"]);
    const tr = cli(t.home, ["transcript", s.run, "--json"]).json() as { requestedBy: string; decisions: { by: string; decision: string; comment: string }[]; steps: { name: string; startedAt: string; endedAt: string }[] };
    expect(tr.requestedBy).toBe("carol");
    expect(tr.decisions).toEqual([expect.objectContaining({ step: "ProvisionCacheInfrastructure", decision: "approve", by: "alice", comment: "go" })]);
    expect(tr.steps.length).toBeGreaterThanOrEqual(6);
    const md = cli(t.home, ["transcript", s.run, "--markdown"]);
    expect(md.stdout).toMatch(/\| ProvisionCacheInfrastructure \|  \| provision \| approve \| alice \|/);
  });

  it("an invalid config file is refused with every problem listed", () => {
    writeFileSync(join(t.home, "bad.yaml"), "deployments:\n  prod:\n    provider: k8s\n    approvers: []\n");
    const r = cli(t.home, ["runs", "--json"], { HONUA_AGENT_CONFIG: join(t.home, "bad.yaml") });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/deployments\.prod\.provider/);
    expect(r.stderr).toMatch(/at least one approver/);
  });

  it("unknown run: exit 2", () => {
    expect(cli(t.home, ["approve", "run-nope", "--json"]).code).toBe(2);
  });
});
