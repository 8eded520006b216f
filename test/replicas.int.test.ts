import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, eventBody, slackPost, slackTestEnv, type FakeMessage } from "./fixtures/slack-fake.js";
import { nginxScratch, requireNginx } from "./fixtures/nginx-server.js";
import { freePort, postgresTestDatabase } from "./helpers.js";

/**
 * `serve` as two replicas on one PostgreSQL store behind real nginx (round-robin upstream, HTTP mode, signed
 * requests): clicks land on either replica and count once, a replica killed with SIGKILL in the middle of a paced
 * watch window has its run taken over by the other within the lease, with no side effect twice and the same progress
 * message edited on, and an expiry notice goes out once with both replicas ticking.
 */
const SECRET = "replicas-signing-secret-0123456789";
const CHANNEL = "C0OPS";
const ROOT = new URL("..", import.meta.url).pathname;
const CONFIG = { deployments: { prod: { provider: "sandbox", approvers: ["U0ALICE42"], seed: 16, monitoring: { windowMinutes: 15, stageMinutes: 5 } } } };

const pgdb = postgresTestDatabase("honua_replicas");

/** Polls `fn` until it returns a value (not undefined/false), or fails naming `what` after `ms`. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Replica {
  name: string;
  port: number;
  child: ChildProcess;
  log: () => string;
}

describe("serve as replicas on one PostgreSQL behind nginx", () => {
  let fake: SlackFake;
  let db: pg.Client;
  let nginx: ChildProcess | undefined;
  let proxy = "";
  let accessLog = "";
  const replicas: Replica[] = [];

  const startReplica = async (name: string, port: number): Promise<Replica> => {
    const env = slackTestEnv(pgdb.home, fake.apiUrl, SECRET, {
      HONUA_AGENT_FROM_SOURCE: "1",
      HONUA_AGENT_DATABASE_URL: pgdb.url,
      HONUA_AGENT_CONFIG: join(pgdb.home, "honua-agent.yaml"),
      HONUA_AGENT_REPLICA: name,
      HONUA_AGENT_HEARTBEAT_MS: "500",
      HONUA_AGENT_LEASE_MS: "2000",
      HONUA_SLACK_EXPIRY_INTERVAL_MS: "300",
      HONUA_SANDBOX_PACE_MS: "300",
      SLACK_BOT_USER_ID: "UHONUA",
      SLACK_BOT_ID: "B0HONUA",
      PORT: String(port),
      HOST: "127.0.0.1",
    });
    const child = spawn(process.execPath, [join(ROOT, "bin/honua-agent.mjs"), "serve"], { cwd: pgdb.home, env, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    const r: Replica = { name, port, child, log: () => err };
    await until(`${name} /healthz (${err})`, async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${err}`);
      return fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.ok, () => false);
    }, 45_000);
    return r;
  };

  const query = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows as Record<string, unknown>[];
  const post = (body: string, type: string, retryNum?: number) => slackPost(proxy, body, type, { secret: SECRET, ...(retryNum !== undefined ? { retryNum } : {}) });
  const openCard = (root: string, not: string[] = []): FakeMessage | undefined =>
    fake.thread(root).find((m) => !not.includes(m.ts) && JSON.stringify(m.blocks).includes("honua_approve"));
  let clicks = 0;
  const clickBody = (card: FakeMessage) =>
    actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts, actionTs: `1700002000.${String(++clicks).padStart(6, "0")}` });

  beforeAll(async () => {
    writeFileSync(join(pgdb.home, "honua-agent.yaml"), JSON.stringify(CONFIG));
    fake = await SlackFake.start();
    db = new pg.Client({ connectionString: pgdb.url });
    await db.connect();
    const [a, b, front] = [await freePort(), await freePort(), await freePort()];
    replicas.push(...(await Promise.all([startReplica("replica-a", a), startReplica("replica-b", b)])));
    // nginx: one upstream, round-robin over the two replicas, no keepalive (each request picks the next one).
    const dir = join(pgdb.home, "nginx");
    const scratch = nginxScratch(dir);
    accessLog = join(dir, "logs/access.log");
    const conf = join(dir, "nginx.conf");
    writeFileSync(conf, `${process.getuid?.() === 0 ? "user root;\n" : ""}daemon off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "logs/error.log")} warn;
events { worker_connections 256; }
http {
  log_format up '$request_uri $upstream_addr $status';
  access_log ${accessLog} up;
${scratch}
  upstream honua { server 127.0.0.1:${a} max_fails=1 fail_timeout=2s; server 127.0.0.1:${b} max_fails=1 fail_timeout=2s; }
  server {
    listen 127.0.0.1:${front};
    location / { proxy_pass http://honua; proxy_next_upstream error; }
  }
}
`);
    const bin = requireNginx();
    const check = spawnSync(bin, ["-p", dir, "-c", conf, "-t"], { encoding: "utf8" });
    if (check.status !== 0) throw new Error(`nginx -t failed: ${check.stderr}`);
    nginx = spawn(bin, ["-p", dir, "-c", conf], { stdio: "ignore" });
    proxy = `http://127.0.0.1:${front}`;
    await until("nginx", () => fetch(`${proxy}/healthz`).then((r) => r.ok, () => false), 10_000);
  }, 120_000);

  afterAll(async () => {
    nginx?.kill("SIGTERM");
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await db?.end();
    await fake?.close();
  });

  it("processes each click once on either replica, takes over a killed replica's run within the lease, and sends an expiry notice once", async () => {
    // A request through the load balancer: the run waits at its first gate, with its card.
    const root = "1699999999.000001";
    expect((await post(eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add redis caching to prod", ts: root, channel: CHANNEL, event_ts: root }), JSON_TYPE)).status).toBe(200);
    const first = await until("the first approval card", () => openCard(root));
    const [row] = await query(`SELECT run FROM honua_runs`);
    const run = String(row!.run);

    // A double click, landing on both replicas (round-robin), and Slack's retry of the first delivery: one decision.
    const body = clickBody(first);
    const answers = await Promise.all([post(body, FORM), post(clickBody(first), FORM), post(body, FORM, 1)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    const decided = await until("the first decision applied", async () => {
      const rows = await query(`SELECT step FROM honua_decisions WHERE run = $1`, [run]);
      return rows.length > 0 && openCard(root, [first.ts]) ? rows : undefined;
    });
    expect(decided).toHaveLength(1);
    const events = readFileSync(accessLog, "utf8").split("\n").filter((l) => l.startsWith("/slack/events"));
    const hit = new Set(events.map((l) => l.split(" ")[1]));
    expect(hit.size).toBe(2); // both replicas answered Slack requests

    // Approve gates until the run is in a paced watch window of its traffic stages (a stage's share is journaled).
    const seen = [first.ts];
    let watching: Record<string, unknown>[] = [];
    for (let i = 0; i < 6 && watching.length === 0; i++) {
      const card = await until(`approval card ${i + 2}`, () => openCard(root, seen));
      seen.push(card.ts);
      expect((await post(clickBody(card), FORM)).status).toBe(200);
      watching = await until(`the run going on after card ${i + 2}`, async () => {
        const j = await query(`SELECT key FROM honua_journal WHERE run = $1 AND step = 'EnableCachingGradually'`, [run]);
        if (j.length > 0) return j;
        return openCard(root, seen) ? [] : undefined;
      });
    }
    expect(watching.length).toBeGreaterThan(0);
    const [claim] = await query(`SELECT owner FROM honua_runs WHERE run = $1`, [run]);
    const owner = String(claim!.owner ?? "");
    const victim = replicas.find((r) => owner.startsWith(`${r.name}:`));
    expect(victim, `the run is driven (owner ${owner})`).toBeDefined();
    const survivor = replicas.find((r) => r !== victim)!;
    const [thread] = await query(`SELECT progress_ts FROM honua_slack_threads WHERE run = $1`, [run]);
    const progressTs = String(thread!.progress_ts);
    const journalBefore = await query(`SELECT key, done FROM honua_journal WHERE run = $1 ORDER BY key`, [run]);

    // Killed in the middle of the window: the other replica claims the run once the lease lapses and drives it on.
    victim!.child.kill("SIGKILL");
    await until("the killed replica to exit", () => victim!.child.signalCode === "SIGKILL");
    const editsAtKill = fake.messages.get(progressTs)!.versions.length;
    await until(`${survivor.name} to take the run over`, async () => {
      const [r] = await query(`SELECT owner FROM honua_runs WHERE run = $1`, [run]);
      return String(r?.owner ?? "").startsWith(`${survivor.name}:`);
    }, 20_000);
    const next = await until("the taken-over run at its next gate or end", async () => {
      const [r] = await query(`SELECT status FROM honua_runs WHERE run = $1`, [run]);
      const card = openCard(root, seen);
      return r && ["done", "failed", "rolled-back"].includes(String(r.status)) ? "ended" : card && String(r?.status) === "waiting" ? card : undefined;
    }, 40_000);

    // No side effect twice: every journal entry from before the kill is still the one entry for its key, now done;
    // the cache cluster was provisioned once; the share of that stage was applied under its one key.
    const journal = await query(`SELECT key, done FROM honua_journal WHERE run = $1 ORDER BY key`, [run]);
    expect(new Set(journal.map((j) => j.key)).size).toBe(journal.length);
    for (const j of journalBefore) expect(journal.find((x) => x.key === j.key)?.done).toBe(1);
    const world = new Database(join(pgdb.home, "sandbox.sqlite"), { readonly: true });
    try {
      const kinds = world.prepare(`SELECT kind, COUNT(*) AS n FROM sandbox_resources WHERE deployment = 'prod' GROUP BY kind`).all() as { kind: string; n: number }[];
      expect(kinds.length).toBeGreaterThan(0);
      for (const k of kinds) expect(k, `${k.kind} created once`).toMatchObject({ n: 1 });
    } finally {
      world.close();
    }
    // The progress message went on being edited (same ts), from the survivor; no second progress message.
    expect(fake.messages.get(progressTs)!.versions.length).toBeGreaterThan(editsAtKill);
    const [after] = await query(`SELECT progress_ts FROM honua_slack_threads WHERE run = $1`, [run]);
    expect(String(after!.progress_ts)).toBe(progressTs);
    expect(survivor.log()).not.toMatch(/takeover:|unexpected error/);

    // Its next traffic stage waits for approval: the run went on past the window it was killed in.
    expect(next).not.toBe("ended");
    // The killed replica comes back; with both ticking, the expired gate's notice goes out once.
    const back = await startReplica(victim!.name, victim!.port);
    replicas.push(back);
    await query(`UPDATE honua_gates SET expires_at = '2000-01-01T00:00:00.000Z' WHERE run = $1 AND closed_at IS NULL`, [run]);
    const notices = () => fake.calls.filter((c) => c.method === "chat.postMessage" && String(c.args.text ?? "").includes("expired; the run stays paused"));
    await until("the expiry notice", () => notices().length > 0);
    // Both replicas tick every 300 ms: several more passes of each before counting.
    await new Promise((r) => setTimeout(r, 1500));
    expect(notices()).toHaveLength(1);
    const [gate] = await query(`SELECT COUNT(*)::int AS n FROM honua_gates WHERE run = $1 AND expired_at IS NOT NULL`, [run]);
    expect(gate!.n).toBe(1);
  }, 150_000);
});
