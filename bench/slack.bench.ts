/**
 * Slack front under bursts of clicks: 200, 20 and 1 concurrent signed "Approve" clicks on as many waiting runs.
 * Measures, in the same run: ack latency of honua-agent and of a bare Bolt app that only acks, the time from a
 * click being sent to the run's next step starting (p50/p95/max per burst), the CPU per decision, and the floor under
 * a decision: bare LangGraph resumed past an interrupt on the official SqliteSaver, with and without a FULL commit. Prints JSON.
 *
 *   node --import tsx bench/slack.bench.ts [clicks]
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { Annotation, Command, END, START, StateGraph, interrupt } from "@langchain/langgraph";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import { App, HTTPReceiver, LogLevel } from "@slack/bolt";
import Database from "better-sqlite3";
import { parseConfig } from "../src/config.js";
import { startServer } from "../src/slack/server.js";
import { JSON_TYPE, SlackFake, actionBody, eventBody, slackPost, type FakeMessage } from "../test/fixtures/slack-fake.js";
import { tempHome, testEnv } from "../test/helpers.js";
import { BurstSender, type Sent } from "./burst.js";
import { Profiler, hrtimeUs } from "./profile.js";

const CLICKS = Number(process.argv[2] ?? 200);
/** How many single clicks (at most CLICKS): each on a run the 200-click burst moved to its next gate. */
const SINGLE = Math.min(CLICKS, Number(process.env.BENCH_SINGLE ?? 10));
/** Where to write a CPU profile of the single clicks; its summary (samples from click to next step started) joins the JSON. */
const PROFILE = process.env.BENCH_CPU_PROFILE;
const SECRET = "bench-signing-secret";
const CHANNEL = "C0BENCH";

const SCHEDSTAT = `/proc/${process.pid}/task/${process.pid}/schedstat`;
/** CPU ms of this process's main thread alone (Linux schedstat, in ns), NaN where that is not available. */
const mainThreadCpuMs = (): number => {
  try {
    return Number(readFileSync(SCHEDSTAT, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return NaN;
  }
};

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Number((s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN).toFixed(2));
};

const sender = new BurstSender(SECRET);
/** Sends every body at once; a click that is not acknowledged with 200 fails the bench. */
async function burst(url: string, bodies: string[]): Promise<Sent[]> {
  const sent = await sender.send(url, bodies.map((body) => ({ body })));
  const refused = sent.find((x) => x.status !== 200);
  if (refused) throw new Error(`burst failed: ack status ${refused.status}`);
  return sent;
}

const clickBody = (card: FakeMessage, user: string, i: number): string => {
  const button = (card.blocks as { type: string; elements?: { action_id?: string; value?: string }[] }[]).flatMap((b) => b.elements ?? []).find((e) => e.action_id === "honua_approve");
  if (!button?.value) throw new Error(`card ${card.ts} has no approve button`);
  return actionBody({ user, actionId: "honua_approve", value: button.value, channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts, actionTs: `1700001000.${String(i).padStart(6, "0")}` });
};

async function bareBolt(bodies: string[]): Promise<{ sentAt: number; ackMs: number }[]> {
  const receiver = new HTTPReceiver({ signingSecret: SECRET, logLevel: LogLevel.ERROR });
  const app = new App({ token: "xoxb-bare", botId: "B1", botUserId: "U1", receiver, logLevel: LogLevel.ERROR });
  app.action(/.*/, async ({ ack }) => {
    await ack();
  });
  const server = createServer((req, res) => {
    try {
      receiver.requestListener(req, res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await burst(url, bodies.slice(0, 10)); // warm-up
    return await burst(url, bodies);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * The floor under a decision, in the same run: bare LangGraph (a 3-channel state, an interrupt-only node, then the
 * node it guards) on the official SqliteSaver in WAL mode, resumed with a Command, timed from the call to the guarded
 * node starting; once alone, and once after committing a decision row with synchronous=FULL (the least a durable
 * decision costs). No Slack, no engine, no store: what the engine path above is compared with.
 */
async function bareResume(home: string, n: number): Promise<Record<string, { cpuMsP50: number; wallMsP50: number; wallMsP95: number }>> {
  const db = new Database(join(home, "bare-checkpoints.sqlite"));
  db.pragma("journal_mode = WAL");
  const decisions = new Database(join(home, "bare-decisions.sqlite"));
  decisions.pragma("journal_mode = WAL");
  decisions.pragma("synchronous = FULL");
  decisions.exec("CREATE TABLE IF NOT EXISTS decisions (thread TEXT PRIMARY KEY, by_user TEXT NOT NULL, at TEXT NOT NULL)");
  const insert = decisions.prepare("INSERT INTO decisions (thread, by_user, at) VALUES (?, ?, ?) ON CONFLICT (thread) DO NOTHING RETURNING thread");
  const State = Annotation.Root({ run: Annotation<string>(), approved: Annotation<boolean>(), done: Annotation<boolean>() });
  let started: (() => void) | undefined;
  const graph = new StateGraph(State)
    .addNode("approve", async () => ({ approved: interrupt({ ask: "approve?" }) === "yes" }))
    .addNode("step", async () => {
      started?.();
      return { done: true };
    })
    .addEdge(START, "approve")
    .addEdge("approve", "step")
    .addEdge("step", END)
    .compile({ checkpointer: new SqliteSaver(db) });
  const out: Record<string, { cpuMsP50: number; wallMsP50: number; wallMsP95: number }> = {};
  try {
    for (const variant of ["resumeOnly", "fullCommitThenResume"] as const) {
      const threads = Array.from({ length: n }, (_, i) => `${variant}-${i}`);
      for (const thread of threads) await graph.invoke({ run: thread }, { configurable: { thread_id: thread }, durability: "sync" });
      const cpu: number[] = [];
      const wall: number[] = [];
      for (const thread of threads) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        let at: { wall: number; cpu: NodeJS.CpuUsage } | undefined;
        started = () => (at = { wall: performance.now() - t0, cpu: process.cpuUsage(cpu0) });
        if (variant === "fullCommitThenResume" && insert.all(thread, "U0ALICE42", new Date(0).toISOString()).length !== 1) throw new Error("bench: bare decision not recorded");
        await graph.invoke(new Command({ resume: "yes" }), { configurable: { thread_id: thread }, durability: "sync" });
        if (!at) throw new Error(`bench: bare thread ${thread} did not reach its step`);
        wall.push(at.wall);
        cpu.push((at.cpu.user + at.cpu.system) / 1000);
      }
      out[variant] = { cpuMsP50: pct(cpu.slice(5), 50), wallMsP50: pct(wall.slice(5), 50), wallMsP95: pct(wall.slice(5), 95) };
    }
  } finally {
    db.close();
    decisions.close();
  }
  return out;
}

async function main() {
  const t = tempHome();
  const fake = await SlackFake.start();
  const RUNS = CLICKS + 21;
  const deployments = Object.fromEntries(Array.from({ length: RUNS }, (_, i) => [`d${i}`, { provider: "sandbox", approvers: ["U0ALICE42"], seed: i }]));
  const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-bench", SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl });
  for (const k of ["SLACK_APP_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL"]) delete env[k];
  const nextStepAt = new Map<string, number>();
  const cpuAt = new Map<string, NodeJS.CpuUsage>();
  const mainAt = new Map<string, number>();
  const senderAt = new Map<string, number>();
  const hrAt = new Map<string, number>();
  /**
   * Whether a step start also reads the CPU counters (the single clicks). Not during the bursts: those reads are
   * system calls and a /proc file read on the main thread, in the path being timed, at every one of 200 step starts.
   */
  let probeCpu = false;
  const server = await startServer({
    env, cwd: t.home, config: parseConfig({ deployments }, "bench"), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, clientRetries: 0, logLevel: LogLevel.ERROR,
    onEvent: (e) => {
      // the first step that starts after a decision on this run
      if (e.type === "decision") nextStepAt.set(e.run, -1);
      else if (e.type === "step-start" && nextStepAt.get(e.run) === -1) {
        nextStepAt.set(e.run, performance.timeOrigin + performance.now());
        hrAt.set(e.run, hrtimeUs());
        if (probeCpu) {
          cpuAt.set(e.run, process.cpuUsage());
          mainAt.set(e.run, mainThreadCpuMs());
          senderAt.set(e.run, sender.cpuMs());
        }
      }
    },
  });
  try {
    // Setup: one request per deployment, through Slack, so each run has its thread, progress and card.
    const setupStart = performance.now();
    const roots: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const ts = `1699990000.${String(i).padStart(6, "0")}`;
      roots.push(ts);
      await slackPost(server.url, eventBody({ type: "app_mention", user: "U0CAROL42", text: `<@UHONUA> add redis caching to d${i}`, ts, channel: CHANNEL, event_ts: ts }), JSON_TYPE, { secret: SECRET });
      if (i % 8 === 7) await server.idle();
    }
    await server.idle();
    const setupMs = performance.now() - setupStart;
    const cards = roots.map((root) => fake.thread(root).find((m) => JSON.stringify(m.blocks).includes("honua_approve")));
    if (cards.some((c) => !c)) throw new Error(`only ${cards.filter(Boolean).length} of ${RUNS} runs reached their first card`);
    const runs = await server.engine.runs();
    const runByThread = new Map<string, string>();
    for (const r of runs) {
      const thread = await server.engine.store.sql.query(`SELECT thread_ts FROM honua_slack_threads WHERE run = ?`, [r.run]);
      if (thread[0]) runByThread.set(String(thread[0].thread_ts), r.run);
    }
    const bodies = cards.map((c, i) => clickBody(c!, "U0ALICE42", i));
    const bare = (await bareBolt(bodies.slice(0, CLICKS).map((b, i) => b.replace("honua_approve", `bare_${i}`)))).map((x) => x.ackMs);

    /**
     * One burst of clicks on runs that were not clicked before: acks, click -> next step started, and the process's
     * CPU (main thread and the sending worker, which is idle once its requests are out) per click, from the first
     * click sent until every click's run is idle again (the rest of each run to its next gate included).
     */
    const clickBurst = async (from: number, n: number) => {
      const picked = roots.slice(from, from + n);
      for (const root of picked) nextStepAt.delete(runByThread.get(root)!);
      const calls = fake.calls.length;
      await sender.ready();
      const cpu0 = process.cpuUsage();
      const sender0 = sender.cpuMs();
      const sent = await burst(server.url, bodies.slice(from, from + n));
      await server.idle();
      const cpu = process.cpuUsage(cpu0);
      const senderMs = sender.cpuMs() - sender0;
      const next = picked.map((root, i) => (nextStepAt.get(runByThread.get(root)!) ?? NaN) - sent[i]!.sentAt).filter((x) => x >= 0);
      const acks = sent.map((x) => x.ackMs);
      return {
        clicks: n,
        ackP50Ms: pct(acks, 50), ackP99Ms: pct(acks, 99), ackMaxMs: pct(acks, 100),
        clickToNextStepStarted: { n: next.length, p50Ms: pct(next, 50), p95Ms: pct(next, 95), maxMs: pct(next, 100) },
        /** The process's CPU without the sending thread's, per click (the whole of each run to its next gate included). */
        cpuMsPerClickWholeBurst: Number(((cpu.user + cpu.system) / 1000 / n - senderMs / n).toFixed(2)),
        senderCpuMsPerClick: Number((senderMs / n).toFixed(2)),
        slackApiCalls: fake.calls.length - calls,
      };
    };
    // Disjoint runs for each burst, the big one first (its runs waited longest), then 20, then 1.
    // With BENCH_CPU_PROFILE, the big burst is profiled too, from its first click sent to its last next step started.
    const burstProfiler = PROFILE ? new Profiler() : undefined;
    await burstProfiler?.start();
    const burstFrom = hrtimeUs();
    const b200 = await clickBurst(0, CLICKS);
    const burstProfile = burstProfiler && PROFILE
      ? await burstProfiler.stop(`${PROFILE}.burst.cpuprofile`, [[burstFrom, Math.max(...roots.slice(0, CLICKS).map((root) => hrAt.get(runByThread.get(root)!) ?? 0))]])
      : undefined;
    const b20 = await clickBurst(CLICKS, 20);
    const b1 = await clickBurst(CLICKS + 20, 1);
    const decided = (await server.engine.runs()).filter((r) => r.status === "waiting").length;

    /**
     * The same click with nothing else going on, on the next card of ten of the runs: click -> next step started,
     * and the process CPU spent from the click being sent until its next step started (the decision's path).
     */
    const single: { ackMs: number; nextStepMs: number; cpuMs: number; processMs: number; mainMs: number }[] = [];
    const profiler = PROFILE ? new Profiler() : undefined;
    const spans: [number, number][] = [];
    await profiler?.start();
    probeCpu = true;
    for (const root of roots.slice(0, SINGLE)) {
      const card = fake.thread(root).filter((m) => JSON.stringify(m.blocks).includes("honua_approve")).at(-1)!;
      const run = runByThread.get(root)!;
      nextStepAt.delete(run);
      cpuAt.delete(run);
      mainAt.delete(run);
      senderAt.delete(run);
      const cpu0 = process.cpuUsage();
      const main0 = mainThreadCpuMs();
      const sender0 = sender.cpuMs();
      const hr0 = hrtimeUs();
      const [one] = await burst(server.url, [clickBody(card, "U0ALICE42", 900_000 + single.length)]);
      await server.idle();
      const cpu = cpuAt.get(run);
      if (hrAt.has(run)) spans.push([hr0, hrAt.get(run)!]);
      const processMs = cpu ? (cpu.user + cpu.system - cpu0.user - cpu0.system) / 1000 : NaN;
      single.push({ ackMs: one!.ackMs, nextStepMs: (nextStepAt.get(run) ?? NaN) - one!.sentAt, processMs, cpuMs: processMs - ((senderAt.get(run) ?? NaN) - sender0), mainMs: (mainAt.get(run) ?? NaN) - main0 });
    }
    probeCpu = false;

    const profile = profiler && PROFILE ? await profiler.stop(PROFILE, spans) : undefined;
    const bareLangGraph = await bareResume(t.home, 45);
    const result = {
      bench: "slack",
      clicks: CLICKS,
      bareBolt: { ackP50Ms: pct(bare, 50), ackP99Ms: pct(bare, 99), ackMaxMs: pct(bare, 100) },
      honuaAgent: { ackP50Ms: b200.ackP50Ms, ackP99Ms: b200.ackP99Ms, ackMaxMs: b200.ackMaxMs },
      ackP99VsBare: Number((b200.ackP99Ms / pct(bare, 99)).toFixed(2)),
      bursts: { [String(CLICKS)]: b200, "20": b20, "1": b1 },
      clickToNextStepStarted: b200.clickToNextStepStarted,
      oneClickAtATime: {
        n: single.length,
        ackP50Ms: pct(single.map((x) => x.ackMs), 50),
        clickToNextStepP50Ms: pct(single.map((x) => x.nextStepMs), 50),
        clickToNextStepP95Ms: pct(single.map((x) => x.nextStepMs), 95),
        /** The process's CPU from the click sent to its next step started, the sending thread's left out: the agent's (and V8's helper threads'). */
        cpuMsToNextStepP50: pct(single.map((x) => x.cpuMs), 50),
        /** The same span with the sending thread counted in (what this field measured before the sender was left out). */
        processCpuMsToNextStepP50: pct(single.map((x) => x.processMs), 50),
        /** The same span on the main thread alone: the agent's own work, without the sending thread and V8's helper threads. */
        mainThreadCpuMsToNextStepP50: pct(single.map((x) => x.mainMs), 50),
      },
      /** The floor: bare LangGraph resumed to the guarded node (first 5 of 45 left out as warm-up). */
      bareLangGraphResume: bareLangGraph,
      targets: {
        ackP99At50Ms: b200.ackP99Ms <= 50,
        ackP99AtMost1_5xBare: b200.ackP99Ms <= 1.5 * pct(bare, 99),
        burstClickToNextStepP95At1s: b200.clickToNextStepStarted.p95Ms <= 1000,
        oneClickP95At50Ms: pct(single.map((x) => x.nextStepMs), 95) <= 50,
        cpuMsPerDecisionAt5: pct(single.map((x) => x.cpuMs), 50) <= 5,
      },
      ...(profile ? { profileOfSingleClicks: { file: PROFILE, ...profile } } : {}),
      ...(burstProfile ? { profileOfBurst: { file: `${PROFILE}.burst.cpuprofile`, ...burstProfile } } : {}),
      setup: { runsStarted: runs.length, setupMs: Math.round(setupMs), runsWaitingAtNextGateAfterClicks: decided, slackApiCalls: fake.calls.length },
      node: process.version,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await sender.close();
    await server.close();
    await fake.close();
    t.cleanup();
  }
}

await main();
