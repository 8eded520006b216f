import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { leaseSettings } from "../src/engine.js";
import { graphSteps } from "../src/graph/builder.js";
import { startServer, type SlackServer } from "../src/slack/server.js";
import { Tasks } from "../src/slack/tasks.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, eventBody, slackPost, slackTestEnv, type FakeMessage } from "./fixtures/slack-fake.js";
import { tempHome } from "./helpers.js";

const SECRET = "phases-signing-secret-0123456789ab";
const CHANNEL = "C0OPS";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A promise and its resolver. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("decisions scheduled by phase (Tasks)", () => {
  it("a job hands the queue on once its step started, and at most poolSize jobs go on past it at once", async () => {
    const errors: string[] = [];
    const tasks = new Tasks((e, label) => errors.push(`${label}: ${String(e)}`), { poolSize: 2 });
    const hold = deferred();
    const order: string[] = [];
    let inPool = 0;
    let most = 0;
    // Long leases: only the yield point can hand the queue or a pool place on, never a timer.
    const jobs = [0, 1, 2, 3, 4].map((i) =>
      tasks.cpu(async () => {
        order.push(`start ${i}`);
        await tasks.stepStarted();
        inPool++;
        most = Math.max(most, inPool);
        order.push(`on ${i}`);
        await hold.promise;
        inPool--;
        await tasks.stepStarted(); // a later step start: the job gives its place up and asks again
        inPool++;
        most = Math.max(most, inPool);
        await new Promise((r) => setImmediate(r));
        inPool--;
        return i;
      }, "drive", 600_000),
    );
    // Every job started (each had the queue in turn) although none has finished.
    for (let i = 0; i < 50 && order.filter((o) => o.startsWith("start")).length < 5; i++) await new Promise((r) => setImmediate(r));
    expect(order.filter((o) => o.startsWith("start"))).toEqual(["start 0", "start 1", "start 2", "start 3", "start 4"]);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(order.filter((o) => o.startsWith("on"))).toHaveLength(2);
    expect(most).toBe(2);
    hold.resolve();
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
    await tasks.idle();
    expect(errors).toEqual([]);
  });

  it("a place in the pool handed on waits a turn of the event loop before its run goes on", async () => {
    const tasks = new Tasks(() => undefined, { poolSize: 1 });
    const hold = deferred();
    const order: string[] = [];
    const jobs = [0, 1].map((i) =>
      tasks.cpu(async () => {
        await tasks.stepStarted();
        order.push(`on ${i}`);
        if (i === 0) {
          await hold.promise;
          // Leaving the pool here hands the place to job 1; a request read in this turn must come first.
          setImmediate(() => order.push("next turn"));
        }
      }, "drive", 600_000),
    );
    for (let i = 0; i < 50 && !order.includes("on 0"); i++) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r)); // job 1 is now waiting for the place
    expect(order).toEqual(["on 0"]);
    hold.resolve();
    await Promise.all(jobs);
    expect(order).toEqual(["on 0", "next turn", "on 1"]);
  });

  it("a click acked but not yet in the queue holds the runs going on; work that never drives a run stops counting when it ends", async () => {
    const tasks = new Tasks(() => undefined, { poolSize: 2 });
    const order: string[] = [];
    const turns = async (n: number) => {
      for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
    };
    // A run that went past its step start and goes on in the pool.
    const running = tasks.cpu(async () => {
      await tasks.stepStarted();
      order.push("run goes on");
    }, "drive", 600_000);
    // Acked at once, before the run goes on: a click whose listener reads for a while before it asks the engine to decide.
    const listenerRead = deferred();
    tasks.spawn("click", async () => {
      await listenerRead.promise;
      await tasks.cpu(async () => {
        order.push("click decides");
        await tasks.stepStarted();
      }, "drive", 600_000);
    });
    // A Slack edit that can wait, asked for while the click is ahead.
    const edit = tasks.quiet().then(() => order.push("card edited"));
    await turns(30);
    expect(order).toEqual([]);
    listenerRead.resolve();
    await Promise.all([running, edit]);
    await tasks.idle();
    expect(order.indexOf("click decides")).toBe(0);
    expect(order).toContain("run goes on");
    expect(order).toContain("card edited");
    // Work after an ack that only answers (no engine call that drives a run) holds nothing once it is done.
    const answered = deferred();
    tasks.spawn("status", () => answered.promise);
    let quiet = false;
    void tasks.quiet().then(() => (quiet = true));
    await turns(10);
    expect(quiet).toBe(false);
    answered.resolve();
    await tasks.idle();
    await turns(2);
    expect(quiet).toBe(true);
  });

  it("work after an ack counts as ahead for a bounded time only (a request waiting on the model holds no run)", async () => {
    const tasks = new Tasks(() => undefined, { poolSize: 1 });
    const model = deferred();
    tasks.spawn("request", () => model.promise); // e.g. asking the model for a plan before it starts a run
    let wentOn = false;
    const running = tasks.cpu(async () => {
      await tasks.stepStarted();
      wentOn = true;
    }, "drive", 600_000);
    await running;
    expect(wentOn).toBe(true);
    model.resolve();
    await tasks.idle();
  });

  it("outside a job the yield point returns at once, and a bad pool size is refused", async () => {
    const tasks = new Tasks(() => undefined);
    await expect(tasks.stepStarted()).resolves.toBeUndefined();
    expect(tasks.poolSize).toBe(3);
    expect(() => new Tasks(() => undefined, { poolSize: 0 })).toThrow(/pool size is a whole number 1\.\.64: 0/);
    expect(() => new Tasks(() => undefined, { poolSize: 2.5 })).toThrow(/pool size/);
  });

  it("lease settings: defaults, overrides, and clear refusals", () => {
    expect(leaseSettings({})).toMatchObject({ heartbeatMs: 30_000, leaseMs: 120_000 });
    expect(leaseSettings({ HONUA_AGENT_HEARTBEAT_MS: "500" })).toMatchObject({ heartbeatMs: 500, leaseMs: 2000 });
    expect(leaseSettings({ HONUA_AGENT_HEARTBEAT_MS: "500", HONUA_AGENT_LEASE_MS: "1500", HONUA_AGENT_REPLICA: "replica-a" })).toEqual({ heartbeatMs: 500, leaseMs: 1500, host: "replica-a" });
    expect(() => leaseSettings({ HONUA_AGENT_HEARTBEAT_MS: "1000", HONUA_AGENT_LEASE_MS: "1500" })).toThrow(/at least twice HONUA_AGENT_HEARTBEAT_MS/);
    expect(() => leaseSettings({ HONUA_AGENT_LEASE_MS: "soon" })).toThrow(/HONUA_AGENT_LEASE_MS/);
    expect(() => leaseSettings({ HONUA_AGENT_HEARTBEAT_MS: "5" })).toThrow(/HONUA_AGENT_HEARTBEAT_MS/);
    expect(() => leaseSettings({ HONUA_AGENT_REPLICA: "a:b" })).toThrow(/HONUA_AGENT_REPLICA/);
  });
});

describe("decisions scheduled by phase (Slack front)", () => {
  const RUNS = 4;
  const config = parseConfig({ deployments: Object.fromEntries(Array.from({ length: RUNS }, (_, i) => [`d${i}`, { provider: "sandbox", approvers: ["U0ALICE42"], seed: 20 + i }])) }, "test");

  async function front(extra: Record<string, string> = {}): Promise<{ server: SlackServer; fake: SlackFake }> {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    const server = await startServer({ env: slackTestEnv(t.home, fake.apiUrl, SECRET, extra), cwd: t.home, config, port: 0, host: "127.0.0.1", expiryIntervalMs: 0, takeoverIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, drivePool: 2 });
    open.push(server);
    return { server, fake };
  }

  it("refuses a malformed pool size before anything starts", async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    await expect(startServer({ env: slackTestEnv(t.home, "http://127.0.0.1:9/api/", SECRET, { HONUA_SLACK_DRIVE_POOL: "many" }), cwd: t.home, config, port: 0, host: "127.0.0.1" })).rejects.toThrow(/HONUA_SLACK_DRIVE_POOL/);
    await expect(startServer({ env: slackTestEnv(t.home, "http://127.0.0.1:9/api/", SECRET, { HONUA_AGENT_LEASE_MS: "10" }), cwd: t.home, config, port: 0, host: "127.0.0.1" })).rejects.toThrow(/HONUA_AGENT_LEASE_MS/);
  });

  it("under bursts of double clicks on several runs, each run's gates are decided once each and applied in gate order", async () => {
    const { server, fake } = await front();
    const roots = Array.from({ length: RUNS }, (_, i) => `1699999000.00000${i}`);
    await Promise.all(roots.map((ts, i) => slackPost(server.url, eventBody({ type: "app_mention", user: "U0CAROL42", text: `<@UHONUA> add redis caching to d${i}`, ts, channel: CHANNEL, event_ts: ts }), JSON_TYPE, { secret: SECRET })));
    await server.idle();
    const clicked = new Set<string>();
    let seq = 0;
    const click = (card: FakeMessage) =>
      slackPost(server.url, actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts, actionTs: `1700003000.${String(++seq).padStart(6, "0")}` }), FORM, { secret: SECRET });
    // Rounds: every open card of every run clicked twice at once (all runs together), then wait for all of it.
    for (let round = 0; round < 3; round++) {
      const cards = roots.flatMap((root) => fake.thread(root).filter((m) => !clicked.has(m.ts) && JSON.stringify(m.blocks).includes("honua_approve")));
      if (cards.length === 0) break;
      for (const c of cards) clicked.add(c.ts);
      const answers = await Promise.all(cards.flatMap((c) => [click(c), click(c)]));
      expect(answers.every((r) => r.status === 200)).toBe(true);
      await server.idle();
    }
    const runs = await server.engine.runs();
    expect(runs).toHaveLength(RUNS);
    for (const r of runs) {
      const tr = await server.engine.transcript(r.run);
      const steps = graphSteps(server.engine.workflow(tr.workflow));
      const at = (name: string) => steps.findIndex((s) => s.name === name);
      // Once each: no gate has two decisions.
      const gates = tr.decisions.map((d) => `${d.step}#${d.stage ?? 0}`);
      expect(new Set(gates).size).toBe(gates.length);
      expect(tr.decisions.length).toBeGreaterThanOrEqual(2);
      // In gate order: each decision is for a later gate than the one before (step, then stage).
      for (let i = 1; i < tr.decisions.length; i++) {
        const [a, b] = [tr.decisions[i - 1]!, tr.decisions[i]!];
        const later = at(b.step) > at(a.step) || (at(b.step) === at(a.step) && (b.stage ?? 0) > (a.stage ?? 0));
        expect(later, `${a.step}#${a.stage} then ${b.step}#${b.stage}`).toBe(true);
      }
      // Every gated step that ran had its decision, and ran in the order of the decisions.
      const gatedRan = tr.steps.filter((s) => steps[at(s.name)]?.gated).map((s) => `${s.name}#${s.stage ?? 0}`);
      const approved = tr.decisions.filter((d) => d.decision === "approve").map((d) => `${d.step}#${d.stage ?? 0}`);
      expect(gatedRan).toEqual(approved.slice(0, gatedRan.length));
      expect(["waiting", "done"]).toContain(tr.status);
    }
  }, 90_000);
});
