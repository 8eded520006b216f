import { spawn } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tempHome, testEnv } from "./helpers.js";
import { planReply, startFakeOpenAI, type FakeOpenAI } from "./fixtures/fake-openai.js";

describe("command line with a model (OpenAI-compatible fake)", () => {
  let t: ReturnType<typeof tempHome>;
  let fake: FakeOpenAI | undefined;
  beforeEach(() => {
    t = tempHome();
  });
  afterEach(async () => {
    await fake?.close();
    t.cleanup();
  });

  it("run: the model's plan starts the run, and its call is recorded against the run", async () => {
    fake = await startFakeOpenAI([planReply({ kind: "plan", workflow: "add-caching-layer", deploymentAsWritten: "production", params: { cacheType: "varnish", ttlSeconds: 900, rolloutSteps: null } })]);
    const res = await cliAsync(t.home, ["run", "put varnish in front of production, 15 minute ttl", "--as", "carol", "--json"], { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "fake-model" });
    expect(res.code, res.stderr).toBe(3);
    const out = JSON.parse(res.stdout.trim().split("\n").at(-1)!) as { run: string; deployment: string; pending: { step: string } };
    expect(out).toMatchObject({ deployment: "prod", pending: { step: "ProvisionCacheInfrastructure" } });
    const db = new Database(join(t.home, "agent.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT run, task, model, prompt_version, total_tokens, outcome FROM honua_model_calls").all();
    db.close();
    expect(rows).toEqual([{ run: out.run, task: "plan", model: "fake-model", prompt_version: "plan@1", total_tokens: expect.any(Number), outcome: "ok" }]);
  });

  it("plan: an invalid model answer falls back to the rules, and says so", async () => {
    fake = await startFakeOpenAI([planReply({ kind: "plan", workflow: "add-caching-layer", deploymentAsWritten: "prod", params: { cacheType: "memcached", ttlSeconds: null, rolloutSteps: null } })]);
    const res = await cliAsync(t.home, ["plan", "add redis caching to prod", "--json"], { OPENAI_BASE_URL: fake.url });
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({ workflow: "add-caching-layer", deployment: "prod", params: { cacheType: "redis" } });
    expect(res.stderr).toMatch(/The model's answer was not used: the model's answer did not validate.*rule-based planner/);
  });

  it("run: a failing model (429) still leaves its call recorded, with latency and outcome, linked to the run", async () => {
    fake = await startFakeOpenAI([{ status: 429, message: "Rate limit reached" }]);
    const res = await cliAsync(t.home, ["run", "add redis caching to prod", "--as", "carol", "--json"], { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "fake-model" });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toMatch(/The model's answer was not used: the model failed/);
    const out = JSON.parse(res.stdout.trim().split("\n").at(-1)!) as { run: string };
    const db = new Database(join(t.home, "agent.sqlite"), { readonly: true });
    const rows = db.prepare("SELECT run, task, model, total_tokens, latency_ms, outcome, detail FROM honua_model_calls").all();
    db.close();
    expect(rows).toEqual([{ run: out.run, task: "plan", model: "fake-model", total_tokens: null, latency_ms: expect.any(Number), outcome: "error", detail: expect.stringMatching(/429|Rate limit/) }]);
  });

  it("plan with no model says the answers are rule-based", async () => {
    const res = await cliAsync(t.home, ["plan", "add redis caching to prod", "--json"], {});
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/Answers are rule-based: no model is configured/);
  });
});

/** The command line in a child process, asynchronously: the fake server lives in this process and must keep answering. */
function cliAsync(home: string, args: string[], extra: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = new URL("../bin/honua-agent.mjs", import.meta.url).pathname;
  return new Promise((resolve) => {
    const env = testEnv(home, extra);
    // Whatever model the machine has configured, the test decides which one (if any) the command sees.
    for (const k of ["OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"]) delete env[k];
    const p = spawn(process.execPath, [bin, ...args], { cwd: home, env: { ...env, ...extra } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
