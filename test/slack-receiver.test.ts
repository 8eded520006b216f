import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { App, ReceiverEvent } from "@slack/bolt";
import { parseConfig } from "../src/config.js";
import { EarlyAckReceiver } from "../src/slack/receiver.js";
import { startServer } from "../src/slack/server.js";
import { Tasks } from "../src/slack/tasks.js";
import { tempHome } from "./helpers.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, slackTestEnv, commandBody, eventBody, slackPost, type FakeMessage } from "./fixtures/slack-fake.js";

const SECRET = "receiver-test-signing-secret";
const CHANNEL = "C0OPS";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** The receiver in front of a stand-in for Bolt's App that records what it is handed, and may hold it. */
async function receiverWith(processEvent: (e: ReceiverEvent) => Promise<void>): Promise<{ url: string; tracked: Promise<void>[] }> {
  const tracked: Promise<void>[] = [];
  const receiver = new EarlyAckReceiver({ signingSecret: SECRET, track: (p) => void tracked.push(p) });
  const silent = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel() {}, setName() {} };
  receiver.init({ logger: silent, processEvent } as unknown as App);
  const server: Server = createServer((req, res) => receiver.requestListener(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  open.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tracked };
}

const click = (actionTs = "1700000000.000001") =>
  actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: "{}", channel: CHANNEL, messageTs: "1.1", actionTs });

describe("Slack receiver: clicks and events acknowledged once verified, before Bolt processes them", () => {
  it("a signed click is answered 200 while its processing is still held, and is then processed exactly once", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const seen: ReceiverEvent[] = [];
    const r = await receiverWith(async (e) => {
      seen.push(e);
      await e.ack(); // the listener still acks: it must not fail, nor answer twice
      await held;
    });
    const res = await slackPost(r.url, click(), FORM, { secret: SECRET });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
    // Handed to Bolt on a later turn of the event loop; the hand-over is tracked (shutdown waits for it).
    await Promise.all(r.tracked);
    expect(seen).toHaveLength(1);
    expect((seen[0]!.body as { type: string }).type).toBe("block_actions");
    release();
  });

  it("events too, with Slack's retry headers passed on for the dedupe", async () => {
    const seen: ReceiverEvent[] = [];
    const r = await receiverWith(async (e) => void seen.push(e));
    const res = await slackPost(r.url, eventBody({ type: "app_mention", user: "U1", text: "hi", ts: "1.1", channel: CHANNEL }, "EvRECV1"), JSON_TYPE, { secret: SECRET, retryNum: 2 });
    expect(res.status).toBe(200);
    await Promise.all(r.tracked);
    expect(seen.map((e) => [e.retryNum, e.retryReason])).toEqual([[2, "http_timeout"]]);
  });

  it("a bad signature, a stale timestamp or a malformed body is refused before anything is acknowledged or processed", async () => {
    const seen: ReceiverEvent[] = [];
    const r = await receiverWith(async (e) => void seen.push(e));
    // Bolt verifies the timestamp against its own wall clock (not injectable): a stale one is built from the same clock.
    const now = Math.floor(Date.now() / 1000);
    expect((await slackPost(r.url, click(), FORM, { secret: SECRET, signature: "v0=deadbeef" })).status).toBe(401);
    expect((await slackPost(r.url, click(), FORM, { secret: "another-secret" })).status).toBe(401);
    expect((await slackPost(r.url, click(), FORM, { secret: SECRET, timestamp: now - 6 * 60 })).status).toBe(401);
    expect((await slackPost(r.url, "{not json", JSON_TYPE, { secret: SECRET })).status).toBe(400);
    expect((await slackPost(r.url, JSON.stringify({ type: "event_callback", pad: "x".repeat(5 * 1024 * 1024) }), JSON_TYPE, { secret: SECRET })).status).toBe(413);
    await Promise.all(r.tracked);
    expect(seen).toEqual([]);
  });

  it("a slash command is answered by its listener's ack, body included; url_verification gets its challenge", async () => {
    const r = await receiverWith(async (e) => {
      await e.ack({ response_type: "ephemeral", text: "help text" });
    });
    const res = await slackPost(r.url, commandBody({ user: "U1", channel: CHANNEL, text: "help", responseUrl: "http://127.0.0.1:9/x" }), FORM, { secret: SECRET });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ response_type: "ephemeral", text: "help text" });
    const v = await slackPost(r.url, JSON.stringify({ type: "url_verification", challenge: "c-123" }), JSON_TYPE, { secret: SECRET });
    expect(await v.json()).toEqual({ challenge: "c-123" });
  });

  it("a command whose processing fails before its ack gets 500 (as with Bolt's own receiver), not a hang", async () => {
    const r = await receiverWith(async () => {
      throw new Error("listener broke");
    });
    const res = await slackPost(r.url, commandBody({ user: "U1", channel: CHANNEL, text: "add", responseUrl: "http://127.0.0.1:9/x" }), FORM, { secret: SECRET });
    expect(res.status).toBe(500);
  });
});

describe("Slack front with acks before processing: still exactly once", () => {
  async function front() {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    const env = slackTestEnv(t.home, fake.apiUrl, SECRET);
    const config = parseConfig({ deployments: { prod: { provider: "sandbox", approvers: ["U0ALICE42", "U0BOB4242"], seed: 16 } } }, "test");
    const server = await startServer({ env, cwd: t.home, config, port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0 });
    open.push(server);
    const root = "1699999999.000001";
    const res = await slackPost(server.url, eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to prod", ts: root, channel: CHANNEL, event_ts: root }), JSON_TYPE, { secret: SECRET });
    expect(res.status).toBe(200);
    await server.idle();
    const card = fake.thread(root).find((m) => JSON.stringify(m.blocks).includes("honua_approve")) as FakeMessage;
    expect(card).toBeDefined();
    const value = (card.blocks as { elements?: { action_id?: string; value?: string }[] }[]).flatMap((b) => b.elements ?? []).find((e) => e.action_id === "honua_approve")!.value!;
    const approve = (user: string, actionTs: string) => actionBody({ user, actionId: "honua_approve", value, channel: CHANNEL, messageTs: card.ts, threadTs: root, actionTs });
    return { server, fake, root, approve };
  }

  it("the same click replayed, a double click and a second approver, all at once and all acked 200: one decision, one resume", async () => {
    const { server, fake, root, approve } = await front();
    const run = (await server.engine.runs())[0]!.run;
    const replayed = approve("U0ALICE42", "1700000100.000001");
    const bodies = [replayed, replayed, replayed, approve("U0ALICE42", "1700000100.000002"), approve("U0BOB4242", "1700000100.000003")];
    const answers = await Promise.all(bodies.map((b) => slackPost(server.url, b, FORM, { secret: SECRET })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    await server.idle();
    expect(await server.engine.store.listDecisions(run)).toHaveLength(1);
    // One resume: the card was closed once, and the thread has exactly one new card (for the next gate).
    const cards = fake.thread(root).filter((m) => m.versions.some((v) => JSON.stringify(v.blocks).includes("honua_approve")));
    expect(cards).toHaveLength(2);
    // The losers were told privately who decided; nobody was told twice for the replays.
    expect(fake.called("chat.postEphemeral")).toHaveLength(2);
  });

  it("a forged click on a real card is refused with 401 and decides nothing", async () => {
    const { server, approve } = await front();
    const run = (await server.engine.runs())[0]!.run;
    const res = await slackPost(server.url, approve("U0ALICE42", "1700000200.000001"), FORM, { secret: "not-the-secret" });
    expect(res.status).toBe(401);
    await server.idle();
    expect(await server.engine.store.listDecisions(run)).toEqual([]);
    expect((await server.engine.runs())[0]!.status).toBe("waiting");
  });
});

describe("work after an ack yields to requests still arriving", () => {
  it("a job waits while new connections keep arriving, then starts once they stop", async () => {
    const tasks = new Tasks((e) => {
      throw e;
    });
    const order: string[] = [];
    let turns = 3;
    // A connection arriving on each of the next three turns of the event loop (as a burst is accepted).
    const arrive = () => {
      tasks.arrivals += 1;
      order.push("arrival");
      if (--turns > 0) setImmediate(arrive);
    };
    arrive();
    tasks.spawn("job", async () => void order.push("job"));
    await tasks.idle();
    expect(order).toEqual(["arrival", "arrival", "arrival", "job"]);
  });
});
