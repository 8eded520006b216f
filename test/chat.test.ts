import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CACHING_PLAN, engineSuite, testEnv } from "./helpers.js";

const BIN = join(new URL("..", import.meta.url).pathname, "bin/honua-agent.mjs");

/** The chat as a person types it: one line per answer, through its own stdin/stdout. */
function chat(home: string, lines: string[], as = "alice") {
  const res = spawnSync(process.execPath, [BIN, "chat", "--as", as], { cwd: home, env: testEnv(home), encoding: "utf8", input: `${lines.join("\n")}\n`, timeout: 120_000 });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

describe("the chat keeps a gate open until it is decided", () => {
  const suite = engineSuite();

  it("a question at a gate is answered and the same gate asked again; approve then acts on it", async () => {
    const r = chat(suite.home, ["add redis caching to prod", "why did it pause?", "approve", "later", "quit"]);
    expect(r.code, r.err).toBe(0);
    const prompts = r.out.match(/\[run-\S+ ProvisionCacheInfrastructure\] approve \/ reject \/ later\?/g) ?? [];
    expect(prompts.length).toBe(2); // asked, answered the question, asked again
    expect(r.out).toMatch(/It is waiting for a provision approval at ProvisionCacheInfrastructure/);
    expect(r.out).toMatch(/Left waiting\. Decide later: type "approve run-\S+" here, or npx honua-agent approve run-\S+ --as alice/);
    const engine = await suite.open();
    const [run] = await engine.runs();
    const tr = await engine.transcript(run!.run);
    expect(tr.decisions.map((d) => [d.step, d.decision, d.by])).toEqual([["ProvisionCacheInfrastructure", "approve", "alice"]]);
    expect((await engine.summary(run!.run)).pending?.step).toBe("EnableCachingGradually");
  });

  it("a new request while one waits names the run that holds the deployment and asks the gate again", () => {
    const r = chat(suite.home, ["add redis caching to prod", "add varnish caching to prod", "later", "quit"]);
    expect(r.out).toMatch(/Run run-\S+ \(add-caching-layer on prod\) is waiting for this decision\. Answer it, or "later"/);
    expect((r.out.match(/\] approve \/ reject \/ later\?/g) ?? []).length).toBe(2);
  });

  it("after a restart: the banner names the waiting run, and `approve RUN` typed in the chat decides it", async () => {
    const engine = await suite.open();
    const s = await engine.start(CACHING_PLAN, "alice", "add redis caching to prod");
    await engine.close();
    const r = chat(suite.home, [`approve ${s.run}`, "later", "quit"]);
    expect(r.out).toContain(`waiting from before: ${s.run} add-caching-layer on prod (waiting, requested by alice)`);
    const again = await suite.open();
    expect((await again.transcript(s.run)).decisions.map((d) => d.step)).toEqual(["ProvisionCacheInfrastructure"]);
    expect((await again.summary(s.run)).pending?.step).toBe("EnableCachingGradually");
  });

  it("a clarifying question takes its answer as the next line", () => {
    const r = chat(suite.home, ["add redis caching", "prod", "later", "quit"]);
    expect(r.out).toMatch(/which deployment|Which deployment|on which/i);
    expect(r.out).toMatch(/Plan: add-caching-layer on prod/);
  });

  it("help lists the commands", () => {
    const r = chat(suite.home, ["help", "quit"]);
    expect(r.out).toMatch(/Commands: runs · status \[RUN\] · approve \[RUN\]/);
  });
});

describe("Ctrl-C in the chat", () => {
  const suite = engineSuite();
  /** The chat in a child whose stdin stays open, so lines and signals can follow what it prints. */
  const live = (home: string) => {
    const child = spawn(process.execPath, [BIN, "chat", "--as", "alice"], { cwd: home, env: testEnv(home, { HONUA_SANDBOX_PACE_MS: "60" }), stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const until = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 1200 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
      if (!what()) throw new Error(`never saw ${label}\n--- stdout\n${out}\n--- stderr\n${err}`);
    };
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    return { child, until, exited, out: () => out, err: () => err, type: (line: string) => child.stdin.write(`${line}\n`) };
  };

  it("once during a watch window: the run stops there, its pause gate is asked, approve continues it to the end", async () => {
    const c = live(suite.home);
    c.type("add redis caching to prod");
    for (let i = 0; i < 4; i++) c.type("approve"); // provision, then three traffic stages
    await c.until(() => c.err().includes("▶ MonitorCachePerformance"), "the watch window start");
    c.child.kill("SIGINT");
    await c.until(() => /PAUSED before MonitorCachePerformance/.test(c.out()), "the pause gate");
    expect(c.out()).toMatch(/Stopping run-\S+ at the next safe point: a step in flight finishes and is recorded, a watch window is left and its start kept\. Ctrl-C again exits at once\./);
    c.type("approve");
    await c.until(() => /status: done|\bdone\b.*MonitorCachePerformance|GeneratePerformanceReport/.test(c.out()) && /honua> $/.test(c.out()), "the end of the run");
    c.type("quit");
    expect(await c.exited).toBe(0);
    const engine = await suite.open();
    const [run] = await engine.runs();
    expect(run!.status).toBe("done");
    const tr = await engine.transcript(run!.run);
    expect(tr.steps.filter((s) => s.name === "MonitorCachePerformance")).toHaveLength(1);
    expect(tr.decisions.map((d) => d.kind)).toEqual(["provision", "traffic", "traffic", "traffic", "paused"]);
  }, 120_000);

  it("twice: exits at once with 130, saying how to continue; the run resumes as after a crash", async () => {
    const c = live(suite.home);
    c.type("add redis caching to prod");
    for (let i = 0; i < 4; i++) c.type("approve");
    await c.until(() => c.err().includes("▶ MonitorCachePerformance"), "the watch window start");
    c.child.kill("SIGINT");
    await c.until(() => c.out().includes("Stopping run-"), "the first Ctrl-C");
    c.child.kill("SIGINT");
    expect(await c.exited).toBe(130);
    expect(c.out()).toMatch(/Exiting now\. Run (run-\S+) continues where it stopped, as after a crash: type "status \1" in a new chat, or npx honua-agent resume \1/);
    const engine = await suite.open();
    const [run] = await engine.runs();
    let s = await engine.resume(run!.run);
    while (s.pending) s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    expect(s.status, s.outcome ?? "").toBe("done");
  }, 120_000);
});
