/**
 * The Slack front as replicas: the burst of `bench:slack` (200, 20 and 1 concurrent signed "Approve" clicks on as many
 * runs waiting at their first gate) sent through a real nginx round-robin upstream (HTTP mode) to `honua-agent serve`
 * child processes that share one PostgreSQL store, once over ONE replica and once over TWO, each topology on a fresh
 * database, so the JSON shows them side by side. Prints one JSON object to stdout; progress goes to stderr.
 *
 *   node --import tsx bench/slack-replicas.bench.ts [clicks]        (npm run bench:slack:replicas)
 *
 * What "click -> next step started" is here. The replicas are other processes, so the engine's `step-start` event
 * (what bench:slack times through onEvent) cannot be seen. What is timed instead is the commit of the run's first
 * LangGraph checkpoint after the click: a deferred (commit-time) trigger on `checkpoints`, installed by this bench on
 * its own database, stamps each checkpoint row with PostgreSQL's clock_timestamp(). A run clicked at its gate writes no
 * checkpoint until its approval node has applied the decision; that node's checkpoint is written (durability "sync")
 * just before the gated step's node runs, which reads the decision row once more and then emits `step-start`. So the
 * stamp comes 1 SELECT and some JavaScript before `step-start`: the `calibration` section (an in-process server on
 * PostgreSQL, where both can be seen) measures that gap in every run of this bench (p50 2-6 ms, max 9-28 ms in the
 * runs so far, on the shared 2-core machine).
 * The click's start is the sending worker's wall clock (performance.timeOrigin + now()) just before its request; both clocks are this host's wall
 * clock. The SlackFake's progress edits were not used: a step start only schedules an edit of the progress message
 * (1.2 s later, RATE.progressEditMs), and the edit that comes first is that one or the one made when the run has
 * reached its next gate, each queued behind the replica's reads: a second or more after the step started
 * (`calibration.progressEditAfterStepStart` shows by how much).
 *
 * Also: acks (measured by the sending worker, through nginx), the clicks each replica got (nginx's access log, each
 * click tagged with an `x-bench-click` header) and the decisions each recorded (its own /metrics), whether every
 * clicked run got exactly one decision (honua_decisions) and its cache provisioned once (the sandbox world), and the
 * replicas' CPU per click (from /proc). Everything is cleaned up, on failure too: children killed, databases
 * dropped, temp dirs deleted (BENCH_KEEP=1 keeps the temp dirs).
 *
 * Knobs: BENCH_TOPOLOGIES ("1,2": replica counts, run in that order), BENCH_SETUP_WINDOW (8: mentions in flight per
 * replica during setup), BENCH_CALIBRATE_RUNS (40; 0 skips the calibration), HONUA_BENCH_POSTGRES_URL (the admin URL,
 * default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { LogLevel } from "@slack/bolt";
import Database from "better-sqlite3";
import pg from "pg";
import { parseConfig } from "../src/config.js";
import { startServer } from "../src/slack/server.js";
import { nginxScratch, requireNginx } from "../test/fixtures/nginx-server.js";
import { JSON_TYPE, SlackFake, actionBody, eventBody, slackPost, slackTestEnv, type FakeMessage, type SlackCall } from "../test/fixtures/slack-fake.js";
import { freePort, tempHome, testEnv } from "../test/helpers.js";
import { BurstSender, type Sent } from "./burst.js";

const CLICKS = Number(process.argv[2] ?? 200);
const RUNS = CLICKS + 21;
const SECRET = "bench-replicas-signing-secret";
const CHANNEL = "C0BENCH";
const ROOT = new URL("..", import.meta.url).pathname;
const ADMIN_URL = process.env.HONUA_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const TOPOLOGIES = (process.env.BENCH_TOPOLOGIES ?? "1,2").split(",").map((s) => Number(s.trim()));
const SETUP_WINDOW = Number(process.env.BENCH_SETUP_WINDOW ?? 8);
const CALIBRATE_RUNS = Number(process.env.BENCH_CALIBRATE_RUNS ?? 40);
const KEEP = process.env.BENCH_KEEP === "1";
const TERMINAL = ["done", "failed", "rolled-back", "rejected", "cancelled"];

const log = (msg: string): void => void process.stderr.write(`[slack-replicas] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 2): number => Number(x.toFixed(digits));
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN);
};
const dist = (xs: number[]) => ({ n: xs.length, p50Ms: pct(xs, 50), p95Ms: pct(xs, 95), maxMs: pct(xs, 100) });
const load = (): number[] => loadavg().map((x) => round(x));

/** Polls `fn` until it returns a value (not undefined/false), or fails naming `what` after `ms`. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------------------- cleanup

/** What to undo, newest first; run on the way out of main and on SIGINT/SIGTERM. */
const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
const onExit = (what: string, fn: () => Promise<void> | void): void => void cleanups.push({ what, fn });
let cleaning: Promise<void> | undefined;
/** Undoes everything registered so far; a call while a clean-up is under way (a signal, then the error it causes) waits for it. */
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      try {
        await c.fn();
      } catch (e) {
        log(`cleanup (${c.what}) failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  })().finally(() => (cleaning = undefined));
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A fresh database, dropped (WITH FORCE: replicas killed late may still hold connections) on the way out. */
async function freshDatabase(prefix: string): Promise<string> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  onExit(`drop database ${name}`, () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined));
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

function freshHome(): string {
  const t = tempHome();
  onExit(`remove ${t.home}`, () => (KEEP ? log(`kept ${t.home}`) : t.cleanup()));
  return t.home;
}

/**
 * The timing probe (see the header): every checkpoint row committed gets a stamp of the database's wall clock at its
 * commit (a deferred constraint trigger fires at COMMIT), in a table of its own. One small INSERT per checkpoint.
 */
async function installProbe(db: pg.Client): Promise<void> {
  await db.query(`CREATE TABLE bench_checkpoint_commits (thread_id text NOT NULL, checkpoint_id text NOT NULL, at timestamptz NOT NULL)`);
  await db.query(`CREATE FUNCTION bench_stamp_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO bench_checkpoint_commits VALUES (NEW.thread_id, NEW.checkpoint_id, clock_timestamp()); RETURN NULL; END $$`);
  await db.query(`CREATE CONSTRAINT TRIGGER bench_stamp_checkpoint AFTER INSERT ON checkpoints DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_stamp_checkpoint()`);
}

/** Per run, the epoch ms of each checkpoint commit (in order). */
async function checkpointCommits(db: pg.Client, runs: string[]): Promise<Map<string, number[]>> {
  const rows = (await db.query<{ thread_id: string; ms: number }>(`SELECT thread_id, (EXTRACT(EPOCH FROM at) * 1000)::float8 AS ms FROM bench_checkpoint_commits WHERE thread_id = ANY($1) ORDER BY at`, [runs])).rows;
  const out = new Map<string, number[]>();
  for (const r of rows) out.set(r.thread_id, [...(out.get(r.thread_id) ?? []), r.ms]);
  return out;
}

// ------------------------------------------------------------------------------------------- the clicks

const sender = new BurstSender(SECRET);
/** Each click carries `x-bench-click: <id>`, which nginx logs with the upstream it chose. */
const burst = (url: string, clicks: { id: number; body: string }[]): Promise<Sent[]> => sender.send(url, clicks);

const isCard = (m: FakeMessage): boolean => JSON.stringify(m.blocks).includes("honua_approve");

/** Per thread, the messages that show an Approve button now (one pass over everything the fake holds). */
function openCards(fake: SlackFake): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of fake.messages.values()) if (m.thread_ts && isCard(m)) out.set(m.thread_ts, [...(out.get(m.thread_ts) ?? []), m.ts]);
  return out;
}

const clickBody = (card: FakeMessage, i: number): string => {
  const button = (card.blocks as { elements?: { action_id?: string; value?: string }[] }[]).flatMap((b) => b.elements ?? []).find((e) => e.action_id === "honua_approve");
  if (!button?.value) throw new Error(`card ${card.ts} has no approve button`);
  return actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: button.value, channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts, actionTs: `1700001000.${String(i).padStart(6, "0")}` });
};

const mention = (i: number, ts: string): string =>
  eventBody({ type: "app_mention", user: "U0CAROL42", text: `<@UHONUA> add redis caching to d${i}`, ts, channel: CHANNEL, event_ts: ts });

const deployments = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${i}`, { provider: "sandbox", approvers: ["U0ALICE42"], seed: i }]));

// ------------------------------------------------------------------------------------------- replicas and nginx

interface Replica {
  name: string;
  port: number;
  child: ChildProcess;
  log: () => string;
}

async function startReplica(o: { name: string; port: number; home: string; config: string; dbUrl: string; apiUrl: string }): Promise<Replica> {
  const env = slackTestEnv(o.home, o.apiUrl, SECRET, {
    HONUA_AGENT_FROM_SOURCE: "1",
    HONUA_AGENT_DATABASE_URL: o.dbUrl,
    HONUA_AGENT_CONFIG: o.config,
    HONUA_AGENT_REPLICA: o.name,
    // As bench:slack (expiryIntervalMs: 0): no expiry pass over the 221 waiting gates in the middle of a burst.
    HONUA_SLACK_EXPIRY_INTERVAL_MS: "0",
    SLACK_BOT_USER_ID: "UHONUA",
    SLACK_BOT_ID: "B0HONUA",
    PORT: String(o.port),
    HOST: "127.0.0.1",
  });
  const child = spawn(process.execPath, [join(ROOT, "bin/honua-agent.mjs"), "serve"], { cwd: o.home, env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  onExit(`stop ${o.name}`, () => stopChild(child, "SIGTERM"));
  const r: Replica = { name: o.name, port: o.port, child, log: () => err };
  await until(`${o.name} /healthz`, async () => {
    if (child.exitCode !== null) throw new Error(`${o.name} exited ${child.exitCode}: ${err}`);
    return fetch(`http://127.0.0.1:${o.port}/healthz`).then((res) => res.ok, () => false);
  }, 90_000, 100);
  return r;
}

/** Stops a child: `signal`, then SIGKILL after 5 s. */
async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(t);
}

/** nginx as a child process: one upstream, round-robin over the replicas, no keepalive (as test/replicas.int.test.ts). */
async function startNginx(dir: string, ports: number[]): Promise<{ url: string; accessLog: string }> {
  const scratch = nginxScratch(dir);
  const front = await freePort();
  const accessLog = join(dir, "logs/access.log");
  const errorLog = join(dir, "logs/error.log");
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, `${process.getuid?.() === 0 ? "user root;\n" : ""}daemon off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${errorLog} warn;
events { worker_connections 2048; }
http {
  log_format bench '$msec $request_method $request_uri $status $upstream_addr click=$http_x_bench_click rt=$request_time urt=$upstream_response_time';
  access_log ${accessLog} bench;
${scratch}
  upstream honua { ${ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join(" ")} }
  server {
    listen 127.0.0.1:${front} backlog=1024;
    location / { proxy_pass http://honua; proxy_next_upstream error; }
  }
}
`);
  const bin = requireNginx();
  const check = spawnSync(bin, ["-e", errorLog, "-p", dir, "-c", conf, "-t"], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
  const child = spawn(bin, ["-e", errorLog, "-p", dir, "-c", conf], { stdio: "ignore" });
  onExit("stop nginx", () => stopChild(child, "SIGQUIT"));
  const url = `http://127.0.0.1:${front}`;
  await until("nginx", () => fetch(`${url}/healthz`).then((r) => r.ok, () => false), 10_000);
  return { url, accessLog };
}

/**
 * nginx's access log, per tagged click: the upstream port it went to (the last one tried, were there two), and how
 * long that replica took to answer it (the ack as nginx saw it, ms).
 */
function clickUpstreams(accessLog: string): Map<number, { port: number; status: number; upstreamMs: number }> {
  const out = new Map<number, { port: number; status: number; upstreamMs: number }>();
  for (const line of readFileSync(accessLog, "utf8").split("\n")) {
    const m = /^\S+ POST \/slack\/events (\d+) (.+?) click=(\d+) rt=\S+ urt=(.+)$/.exec(line);
    if (!m) continue;
    const last = (v: string) => v.split(",").at(-1)!.trim();
    const port = Number(/:(\d+)$/.exec(last(m[2]!))?.[1] ?? NaN);
    out.set(Number(m[3]), { port, status: Number(m[1]), upstreamMs: Number(last(m[4]!)) * 1000 });
  }
  return out;
}

/** The decisions a replica recorded (won and applied there), from its own /metrics. */
async function decisionsMetric(r: Replica): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("honua_agent_decision_latency_seconds_count")) n += Number(line.split(" ").at(-1));
  }
  return n;
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
/** User + system CPU ms of a process so far (/proc, 10 ms resolution). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

// ------------------------------------------------------------------------------------------- one topology

async function topology(n: number) {
  const t0 = performance.now();
  const loadBefore = load();
  const home = freshHome();
  const dbUrl = await freshDatabase(`honua_bench_r${n}`);
  const config = join(home, "honua-agent.yaml");
  writeFileSync(config, JSON.stringify({ deployments: deployments(RUNS) }));
  const fake = await SlackFake.start();
  onExit("close the SlackFake", async () => {
    fake.takeViolations();
    await fake.close();
  });
  const names = Array.from({ length: n }, (_, i) => `replica-${String.fromCharCode(97 + i)}`);
  const ports = await Promise.all(names.map(() => freePort()));
  log(`${n} replica(s): starting`);
  const replicas = await Promise.all(names.map((name, i) => startReplica({ name, port: ports[i]!, home, config, dbUrl, apiUrl: fake.apiUrl })));
  const startMs = performance.now() - t0;
  const nginx = await startNginx(join(home, "nginx"), ports);
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  onExit("close the bench's database client", () => db.end());
  await installProbe(db);
  const byPort = new Map(replicas.map((r) => [r.port, r.name]));
  /** Fails the bench with what the replicas logged and where the store stands (runs not waiting, sessions in PostgreSQL). */
  const fail = async (e: unknown): Promise<never> => {
    const state = await Promise.all([
      db.query(`SELECT run, deployment, status, owner, claimed_at, updated_at FROM honua_runs WHERE status <> 'waiting' OR owner IS NOT NULL ORDER BY started_at LIMIT 30`),
      db.query(`SELECT pid, state, wait_event_type, wait_event, now() - state_change AS for, left(query, 120) AS query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`),
    ]).then(([runs, sessions]) => `--- runs not waiting or claimed:\n${JSON.stringify(runs.rows)}\n--- sessions not idle:\n${JSON.stringify(sessions.rows)}`, (q: unknown) => `--- the store could not be read: ${String(q)}`);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${replicas.map((r) => `--- ${r.name} stderr:\n${r.log().slice(-4000)}`).join("\n")}\n${state}`);
  };

  // Setup: one request per deployment, through nginx, so each run has its thread, progress and card.
  log(`${n} replica(s): up in ${Math.round(startMs)} ms; starting ${RUNS} runs through Slack`);
  const setupStart = performance.now();
  const roots = Array.from({ length: RUNS }, (_, i) => `1699990000.${String(i).padStart(6, "0")}`);
  const window = SETUP_WINDOW * n;
  try {
    for (let from = 0; from < RUNS; from += window) {
      const batch = roots.slice(from, from + window);
      for (const [k, ts] of batch.entries()) {
        const res = await slackPost(nginx.url, mention(from + k, ts), JSON_TYPE, { secret: SECRET });
        if (res.status !== 200) throw new Error(`mention ${from + k}: HTTP ${res.status}`);
      }
      await until(`the approval cards of runs ${from}..${from + batch.length - 1}`, () => {
        const open = openCards(fake);
        return batch.every((root) => open.has(root));
      }, 120_000);
      if ((from / window) % 5 === 4) log(`  ${from + batch.length} runs at their first gate`);
    }
    await until("every run waiting at its gate, unclaimed", async () => {
      const rows = (await db.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM honua_runs WHERE status = 'waiting' AND owner IS NULL`)).rows;
      return rows[0]?.n === RUNS;
    }, 60_000, 100);
  } catch (e) {
    await fail(e);
  }
  const setupMs = performance.now() - setupStart;
  const cards = roots.map((root) => fake.thread(root).find(isCard)!);
  const threads = (await db.query<{ run: string; thread_ts: string; deployment: string }>(`SELECT t.run, t.thread_ts, r.deployment FROM honua_slack_threads t JOIN honua_runs r ON r.run = t.run`)).rows;
  const runOf = new Map(threads.map((t) => [t.thread_ts, t.run]));
  const deploymentOf = new Map(threads.map((t) => [t.run, t.deployment]));
  const unbound = roots.find((root) => !runOf.has(root));
  if (unbound) await fail(`no run for thread ${unbound}`);
  const runs = roots.map((root) => runOf.get(root)!);
  const startedBy = clickUpstreamsOfSetup(nginx.accessLog, byPort);
  log(`${n} replica(s): setup ${Math.round(setupMs)} ms`);

  /** One burst on runs not clicked before; done when each clicked run is at its next gate (or ended). */
  const clickBurst = async (from: number, count: number) => {
    const picked = runs.slice(from, from + count);
    const pickedRoots = roots.slice(from, from + count);
    const calls = fake.calls.length;
    const decided0 = await Promise.all(replicas.map(decisionsMetric));
    const cpu0 = replicas.map((r) => cpuMs(r.child.pid));
    const burstStart = performance.now();
    const sent = await burst(nginx.url, pickedRoots.map((root, k) => ({ id: from + k, body: clickBody(cards[from + k]!, from + k) })));
    try {
      await until(`the ${count} clicked runs at their next gate`, async () => {
        const ended = new Set((await db.query<{ run: string }>(`SELECT run FROM honua_runs WHERE run = ANY($1) AND status = ANY($2)`, [picked, TERMINAL])).rows.map((r) => r.run));
        const open = openCards(fake);
        return pickedRoots.every((root, k) => ended.has(picked[k]!) || (open.get(root) ?? []).some((ts) => ts !== cards[from + k]!.ts));
      }, 240_000, 100);
    } catch (e) {
      await fail(e);
    }
    const settleMs = performance.now() - burstStart;
    const cpu = replicas.map((r, i) => cpuMs(r.child.pid) - cpu0[i]!);
    const decided = (await Promise.all(replicas.map(decisionsMetric))).map((x, i) => x - decided0[i]!);
    const commits = await checkpointCommits(db, picked);
    const next = picked.map((run, k) => {
      const at = (commits.get(run) ?? []).find((ms) => ms >= sent[k]!.sentAt);
      return at === undefined ? NaN : at - sent[k]!.sentAt;
    });
    const upstreams = clickUpstreams(nginx.accessLog);
    const perReplica = Object.fromEntries(replicas.map((r, i) => {
      const mine = picked.map((_, k) => k).filter((k) => upstreams.get(from + k)?.port === r.port);
      const lat = mine.map((k) => next[k]!).filter((x) => Number.isFinite(x));
      return [r.name, { clicks: mine.length, decisionsRecorded: decided[i]!, clickToNextStepP50Ms: pct(lat, 50), clickToNextStepP95Ms: pct(lat, 95), cpuMs: round(cpu[i]!, 0) }];
    }));
    const acks = sent.map((s) => s.ackMs);
    const upstreamAcks = picked.map((_, k) => upstreams.get(from + k)?.upstreamMs ?? NaN).filter((x) => Number.isFinite(x));
    const found = next.filter((x) => Number.isFinite(x));
    return {
      clicks: count,
      ackP50Ms: pct(acks, 50), ackP99Ms: pct(acks, 99), ackMaxMs: pct(acks, 100),
      // The same acks as nginx saw them: from its request to the replica until the replica's answer.
      replicaAckAtNginxP50Ms: pct(upstreamAcks, 50), replicaAckAtNginxP99Ms: pct(upstreamAcks, 99),
      non200Acks: sent.filter((s) => s.status !== 200).length,
      clickToNextStepStarted: dist(found),
      perReplica,
      clicksNotInNginxLog: picked.filter((_, k) => !upstreams.has(from + k)).length,
      replicaCpuMsPerClick: round(cpu.reduce((a, b) => a + b, 0) / count),
      untilAllAtNextGateMs: Math.round(settleMs),
      slackApiCalls: fake.calls.length - calls,
    };
  };
  // Disjoint runs for each burst, the big one first (its runs waited longest), then 20, then 1; a pause between them
  // lets the progress edits each run's next step scheduled (1.2 s) go out before the next burst.
  log(`${n} replica(s): burst of ${CLICKS}`);
  const big = await clickBurst(0, CLICKS);
  log(`${n} replica(s): ${CLICKS} clicks: p50 ${big.clickToNextStepStarted.p50Ms} ms, p95 ${big.clickToNextStepStarted.p95Ms} ms`);
  await sleep(1500);
  const b20 = await clickBurst(CLICKS, 20);
  await sleep(1500);
  const b1 = await clickBurst(CLICKS + 20, 1);

  // Each clicked run got exactly one decision (and its cache, the step the decision let run, was provisioned once).
  const clicked = runs.slice(0, CLICKS + 21);
  const perRun = new Map((await db.query<{ run: string; n: number }>(`SELECT run, COUNT(*)::int AS n FROM honua_decisions WHERE run = ANY($1) GROUP BY run`, [clicked])).rows.map((r) => [r.run, r.n]));
  const world = new Database(join(home, "sandbox.sqlite"), { readonly: true });
  let resources: Map<string, number>;
  try {
    const rows = world.prepare(`SELECT deployment, COUNT(*) AS n FROM sandbox_resources WHERE deleted_at IS NULL GROUP BY deployment`).all() as { deployment: string; n: number }[];
    resources = new Map(rows.map((r) => [r.deployment, r.n]));
  } finally {
    world.close();
  }
  const once = {
    clickedRuns: clicked.length,
    exactlyOneDecision: clicked.filter((r) => perRun.get(r) === 1).length,
    noDecision: clicked.filter((r) => !perRun.has(r)).length,
    moreThanOne: clicked.filter((r) => (perRun.get(r) ?? 0) > 1).length,
    cacheProvisionedOnce: clicked.filter((r) => resources.get(deploymentOf.get(r)!) === 1).length,
  };
  const violations = fake.takeViolations().length;
  const result = {
    replicas: n,
    names,
    replicasUpMs: Math.round(startMs),
    setup: { runs: RUNS, setupMs: Math.round(setupMs), runsStartedPerReplica: startedBy, slackApiCalls: fake.calls.length },
    bursts: { [String(CLICKS)]: big, "20": b20, "1": b1 },
    clickToNextStepStarted: big.clickToNextStepStarted,
    processedOnce: once,
    slackLimitViolations: violations,
    loadavgBefore: loadBefore,
    loadavgAfter: load(),
    totalMs: Math.round(performance.now() - t0),
  };
  log(`${n} replica(s): done in ${result.totalMs} ms; stopping`);
  for (const r of replicas) {
    const said = r.log().split("\n").filter((l) => l.trim() && !l.includes("Slack events on")).join("\n");
    if (said) log(`${r.name} stderr:\n${said.slice(-2000)}`);
  }
  await cleanUp(); // this topology's children, database and files, before the next one starts
  return result;
}

/** The replica each setup mention went to (nginx's log, the POSTs before the first tagged click). */
function clickUpstreamsOfSetup(accessLog: string, byPort: Map<number, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(accessLog, "utf8").split("\n")) {
    const m = /^\S+ POST \/slack\/events \d+ (.+?) click=- /.exec(line);
    if (!m) continue;
    const name = byPort.get(Number(/:(\d+)$/.exec(m[1]!.trim())?.[1] ?? NaN)) ?? "?";
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

// ------------------------------------------------------------------------------------------- calibration

/**
 * How early the probe is. An in-process server on a fresh PostgreSQL database (same store as the replicas, same
 * probe), where the engine's events can be seen: for each click of one burst, the `step-start` event's time minus
 * the probe's stamp of the first checkpoint committed after the click. Also what the SlackFake would have given: the
 * first edit of the run's progress message after that step started, minus the step start.
 */
async function calibrate(runsN: number) {
  const t0 = performance.now();
  const home = freshHome();
  const dbUrl = await freshDatabase("honua_bench_calib");
  const fake = await SlackFake.start();
  onExit("close the calibration's SlackFake", async () => {
    fake.takeViolations();
    await fake.close();
  });
  // The fake records calls in order, without times: stamp each as it is recorded.
  const arrivals: number[] = [];
  const record = fake.calls.push.bind(fake.calls);
  fake.calls.push = (...c: SlackCall[]): number => {
    for (let i = 0; i < c.length; i++) arrivals.push(Date.now());
    return record(...c);
  };
  const env = testEnv(home, { SLACK_BOT_TOKEN: "xoxb-bench", SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl, HONUA_AGENT_DATABASE_URL: dbUrl });
  for (const k of ["SLACK_APP_TOKEN", "OPENAI_API_KEY", "OPENAI_BASE_URL"]) delete env[k];
  const decidedAt = new Map<string, number>();
  const stepAt = new Map<string, number>();
  const server = await startServer({
    env, cwd: home, config: parseConfig({ deployments: deployments(runsN) }, "bench"), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, clientRetries: 0, logLevel: LogLevel.ERROR,
    onEvent: (e) => {
      if (e.type === "decision") decidedAt.set(e.run, Date.now());
      else if (e.type === "step-start" && decidedAt.has(e.run) && !stepAt.has(e.run)) stepAt.set(e.run, Date.now());
    },
  });
  onExit("close the calibration server", () => server.close());
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  onExit("close the calibration's database client", () => db.end());
  await installProbe(db);
  const roots: string[] = [];
  for (let i = 0; i < runsN; i++) {
    const ts = `1699990000.${String(i).padStart(6, "0")}`;
    roots.push(ts);
    await slackPost(server.url, mention(i, ts), JSON_TYPE, { secret: SECRET });
    if (i % 8 === 7) await server.idle();
  }
  await server.idle();
  const cards = roots.map((root) => fake.thread(root).find(isCard));
  if (cards.some((c) => !c)) throw new Error(`calibration: only ${cards.filter(Boolean).length} of ${runsN} runs reached their card`);
  const sent = await burst(server.url, cards.map((c, i) => ({ id: i, body: clickBody(c!, i) })));
  await server.idle();
  await sleep(1500); // the progress edits scheduled at the step starts (1.2 s)
  await server.idle();
  const threads = (await db.query<{ run: string; thread_ts: string; progress_ts: string | null }>(`SELECT run, thread_ts, progress_ts FROM honua_slack_threads`)).rows;
  const byRoot = new Map(threads.map((t) => [t.thread_ts, t]));
  const runs = roots.map((r) => byRoot.get(r)?.run ?? "");
  const commits = await checkpointCommits(db, runs);
  const early: number[] = [];
  const editLag: number[] = [];
  const probe: number[] = [];
  const event: number[] = [];
  roots.forEach((root, k) => {
    const t = byRoot.get(root);
    const step = t ? stepAt.get(t.run) : undefined;
    const stamp = t ? (commits.get(t.run) ?? []).find((ms) => ms >= sent[k]!.sentAt) : undefined;
    if (!t || step === undefined || stamp === undefined) return;
    early.push(step - stamp);
    probe.push(stamp - sent[k]!.sentAt);
    event.push(step - sent[k]!.sentAt);
    const edit = fake.calls.findIndex((c, i) => c.method === "chat.update" && c.args.ts === t.progress_ts && arrivals[i]! >= step);
    if (edit >= 0) editLag.push(arrivals[edit]! - step);
  });
  const result = {
    runs: runsN,
    clicks: cards.length,
    stepStartMinusProbe: { ...dist(early), minMs: early.length ? round(Math.min(...early)) : null },
    clickToNextStepStarted: { byEvent: dist(event), byProbe: dist(probe) },
    progressEditAfterStepStart: dist(editLag),
    ms: Math.round(performance.now() - t0),
  };
  await cleanUp();
  return result;
}

// ------------------------------------------------------------------------------------------- main

async function main() {
  const t0 = performance.now();
  const loadBefore = load();
  const out: Record<string, Awaited<ReturnType<typeof topology>>> = {};
  try {
    for (const n of TOPOLOGIES) out[String(n)] = await topology(n);
    log(CALIBRATE_RUNS > 0 ? `calibration: ${CALIBRATE_RUNS} runs in process` : "calibration skipped");
    const calibration = CALIBRATE_RUNS > 0 ? await calibrate(CALIBRATE_RUNS) : null;
    const one = out["1"];
    const two = out["2"];
    const p95 = (t: typeof one) => t?.clickToNextStepStarted.p95Ms ?? NaN;
    const result = {
      bench: "slack-replicas",
      clicks: CLICKS,
      measured: "click sent (the worker's wall clock, performance.timeOrigin + now()) -> commit of the run's first checkpoint after it (PostgreSQL clock_timestamp(), deferred trigger), which precedes the gated step's step-start event by calibration.stepStartMinusProbe",
      sideBySide: {
        clickToNextStepP50Ms: { oneReplica: one?.clickToNextStepStarted.p50Ms ?? null, twoReplicas: two?.clickToNextStepStarted.p50Ms ?? null },
        clickToNextStepP95Ms: { oneReplica: one ? p95(one) : null, twoReplicas: two ? p95(two) : null },
        clickToNextStepMaxMs: { oneReplica: one?.clickToNextStepStarted.maxMs ?? null, twoReplicas: two?.clickToNextStepStarted.maxMs ?? null },
        ackP50Ms: { oneReplica: one?.bursts[String(CLICKS)]?.ackP50Ms ?? null, twoReplicas: two?.bursts[String(CLICKS)]?.ackP50Ms ?? null },
        ackP99Ms: { oneReplica: one?.bursts[String(CLICKS)]?.ackP99Ms ?? null, twoReplicas: two?.bursts[String(CLICKS)]?.ackP99Ms ?? null },
        p95TwoOverOne: one && two ? round(p95(two) / p95(one)) : null,
      },
      targets: {
        burstClickToNextStepP95At1sOn2Replicas: two ? p95(two) <= 1000 : null,
        everyClickProcessedOnce: Object.values(out).every((t) => t.processedOnce.exactlyOneDecision === t.processedOnce.clickedRuns),
      },
      topologies: out,
      calibration,
      machine: { cores: cpus().length, loadavgBefore: loadBefore, loadavgAfter: load(), node: process.version },
      totalMs: Math.round(performance.now() - t0),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await sender.close();
    await cleanUp();
  }
}

await main();
