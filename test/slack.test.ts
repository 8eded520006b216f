import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { Engine } from "../src/engine.js";
import { startServer, type ServeOptions, type SlackServer } from "../src/slack/server.js";
import { slackSettings } from "../src/slack/settings.js";
import { spawn } from "node:child_process";
import { cli, tempHome, testEnv } from "./helpers.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, slackTestEnv, blocksText, commandBody, eventBody, slackPost, type FakeMessage } from "./fixtures/slack-fake.js";

const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const CHANNEL = "C0OPS";
/** Approvers of prod: alice directly by Slack id, bob through the Slack user group @oncall (S0ONCALL). */
const CONFIG = {
  deployments: {
    prod: { provider: "sandbox", aliases: ["production"], approvers: ["U0ALICE42", "@oncall"], seed: 16 },
    staging: { provider: "sandbox", aliases: ["stage"], approvers: ["U0ALICE42"], seed: 17, monitoring: { windowMinutes: 15, stageMinutes: 5 } },
  },
};

interface Harness {
  home: string;
  fake: SlackFake;
  server: SlackServer;
  clock: { t: number };
  post(body: string, type: string, o?: { timestamp?: number; signature?: string; retryNum?: number }): Promise<Response>;
  mention(text: string, user?: string): Promise<string>;
  /** A plain message in a thread (channel message event). */
  say(threadTs: string, text: string, user: string): Promise<Response>;
  click(card: FakeMessage, user: string, action?: "approve" | "reject" | "request_again", actionTs?: string): Promise<Response>;
  cards(thread: string): FakeMessage[];
}

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function harness(extraEnv: Record<string, string> = {}, serve: Partial<ServeOptions> = {}): Promise<Harness> {
  const t = tempHome();
  open.push({ close: async () => t.cleanup() });
  const fake = await SlackFake.start();
  open.push(fake);
  fake.groups = { S0ONCALL: { handle: "oncall", users: ["U0BOB4242"] } };
  const env = slackTestEnv(t.home, fake.apiUrl, SECRET, extraEnv);
  const clock = { t: Date.parse("2026-11-26T14:00:00Z") };
  const server = await startServer({
    env, cwd: t.home, config: parseConfig(CONFIG, "test"), now: () => new Date(clock.t),
    port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, ...serve,
  });
  open.push(server);
  let seq = 0;
  const h: Harness = {
    home: t.home, fake, server, clock,
    async post(body, type, o = {}) {
      const res = await slackPost(server.url, body, type, { secret: SECRET, ...o });
      await server.idle();
      return res;
    },
    async mention(text, user = "U0CAROL42") {
      const ts = `1699999999.${String(++seq).padStart(6, "0")}`;
      const res = await h.post(eventBody({ type: "app_mention", user, text: `<@UHONUA> ${text}`, ts, channel: CHANNEL, event_ts: ts }), JSON_TYPE);
      expect(res.status).toBe(200);
      return ts;
    },
    say(threadTs, text, user) {
      const ts = `1699999999.${String(++seq).padStart(6, "0")}`;
      return h.post(eventBody({ type: "message", channel_type: "channel", user, text, ts, thread_ts: threadTs, channel: CHANNEL }), JSON_TYPE);
    },
    click(card, user, action = "approve", actionTs) {
      const id = `honua_${action}`;
      const value = buttonValue(card, id);
      return h.post(actionBody({ user, actionId: id, value, channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts, actionTs }), FORM);
    },
    cards(thread) {
      return fake.thread(thread).filter((m) => m.versions.some((v) => JSON.stringify(v.blocks).includes("honua_approve")));
    },
  };
  return h;
}


const hasButtons = (m: FakeMessage): boolean => JSON.stringify(m.blocks).includes('"type":"actions"');

describe("Slack front, driven as Slack drives it (real Bolt app, signed requests, fake Web API)", () => {
  it("a mention gets the plan, a progress message and the first approval card in its thread", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const thread = h.fake.thread(root);
    expect(thread.length).toBeGreaterThanOrEqual(3);
    const [plan, progress] = thread;
    expect(blocksText(plan!)).toMatch(/add-caching-layer/);
    expect(blocksText(plan!)).toMatch(/ProvisionCacheInfrastructure/);
    expect(blocksText(plan!)).toMatch(/Cost estimate:\* -?\$\d/); // edited in once the cost step ran
    expect(progress!.text).toMatch(/waiting, 3\/10 steps done/);
    expect(JSON.stringify(progress!.blocks)).toContain(":raised_hand: ProvisionCacheInfrastructure");
    const cards = h.cards(root);
    expect(cards).toHaveLength(1);
    const card = blocksText(cards[0]!);
    expect(card).toMatch(/Approval needed: Provision/);
    expect(card).toMatch(/What will happen/);
    expect(card).toMatch(/Metrics now/);
    expect(card).toContain("<@U0ALICE42>");
    expect(card).toContain("<!subteam^S0ONCALL|@oncall>");
    expect(card).toMatch(/expires\* <!date\^\d+/);
    expect(card).toContain('"style":"primary"');
    expect(card).toContain('"style":"danger"');
    expect((await h.server.engine.runs())[0]).toMatchObject({ requestedBy: "U0CAROL42", status: "waiting" });
  });

  it("two requests at once: each run talks in its own thread", async () => {
    const h = await harness();
    const [a, b] = await Promise.all([h.mention("add Redis caching to prod"), h.mention("add Redis caching to staging")]);
    await h.server.idle();
    for (const [root, deployment] of [[a, "prod"], [b, "staging"]] as const) {
      const cards = h.cards(root);
      expect(cards).toHaveLength(1);
      expect(cards[0]!.text).toContain(`Approval needed on ${deployment}:`);
      expect(h.fake.thread(root)[1]!.text).toContain(`on ${deployment}): waiting`);
    }
  });

  it("an approver's click edits the card in place, the run continues and the next card appears", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const res = await h.click(card!, "U0ALICE42");
    expect(res.status).toBe(200);
    const updated = h.fake.messages.get(card!.ts)!;
    expect(updated.text).toMatch(/approved by U0ALICE42 at 14:00 UTC/);
    expect(blocksText(updated)).toMatch(/Approved by <@U0ALICE42> at <!date/);
    expect(hasButtons(updated)).toBe(false);
    const cards = h.cards(root);
    expect(cards).toHaveLength(2);
    expect(blocksText(cards[1]!)).toMatch(/Traffic switch · EnableCachingGradually · stage 1 of 3 \(10%\)/);
    expect(blocksText(cards[1]!)).toMatch(/Traffic share:\* 0% → \*10%/);
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(1);
    const progress = h.fake.thread(root)[1]!;
    expect(JSON.stringify(progress.blocks)).toContain(":white_check_mark: ProvisionCacheInfrastructure");
  });

  it("a member of an approver Slack user group may approve (usergroups.users.list, passed as Actor.groups)", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    await h.click(h.cards(root)[0]!, "U0BOB4242");
    expect(h.fake.called("usergroups.users.list").map((c) => c.args.usergroup)).toContain("S0ONCALL");
    const [d] = await h.server.engine.store.listDecisions((await h.server.engine.runs())[0]!.run);
    expect(d).toMatchObject({ by: "U0BOB4242", decision: "approve", groups: ["@oncall"] });
  });

  it("a non-approver gets an ephemeral message saying who may approve; nothing is decided", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    await h.click(card!, "U0MALLORY4");
    const [msg] = h.fake.ephemerals("U0MALLORY4");
    expect(msg).toMatch(/You can't approve this/);
    expect(msg).toMatch(/Who may approve:\* <@U0ALICE42>, <!subteam\^S0ONCALL\|@oncall>/);
    const run = (await h.server.engine.runs())[0]!.run;
    expect(await h.server.engine.store.listDecisions(run)).toEqual([]);
    expect(hasButtons(h.fake.messages.get(card!.ts)!)).toBe(true);
  });

  it("a click on a card that was already decided answers 'already approved by' and changes nothing", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    await h.click(card!, "U0ALICE42");
    const updatesBefore = h.fake.called("chat.update").length;
    await h.click({ ...card!, blocks: card!.versions[0]!.blocks }, "U0BOB4242"); // the card as a client that did not refresh still shows it
    expect(h.fake.ephemerals("U0BOB4242").join("\n")).toMatch(/already decided: approve by <@U0ALICE42>/);
    expect(h.fake.called("chat.update").length).toBe(updatesBefore);
    expect(h.cards(root)).toHaveLength(2);
  });

  it("two clicks at once resume the run once and post the next card once", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    await Promise.all([h.click(card!, "U0ALICE42"), h.click(card!, "U0BOB4242")]);
    await h.server.idle();
    const run = (await h.server.engine.runs())[0]!.run;
    expect(await h.server.engine.store.listDecisions(run)).toHaveLength(1);
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(1);
    expect(h.cards(root)).toHaveLength(2);
    expect(h.fake.messages.get(card!.ts)!.versions.filter((v) => /approved by/i.test(v.text))).toHaveLength(1);
    expect([...h.fake.ephemerals("U0ALICE42"), ...h.fake.ephemerals("U0BOB4242")].join("\n")).toMatch(/already (approved|decided)/);
  });

  it("forged signature, stale timestamp and future timestamp are refused with 401 and start nothing", async () => {
    const h = await harness();
    const body = eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to prod", ts: "1.1", channel: CHANNEL, event_ts: "1.1" });
    const now = Math.floor(Date.now() / 1000);
    expect((await h.post(body, JSON_TYPE, { signature: "v0=deadbeef" })).status).toBe(401);
    expect((await h.post(body, JSON_TYPE, { timestamp: now - 6 * 60 })).status).toBe(401);
    expect((await h.post(body, JSON_TYPE, { timestamp: now + 6 * 60 })).status).toBe(401);
    expect(await h.server.engine.runs()).toEqual([]);
    expect(h.fake.calls.map((c) => c.method)).toEqual(["auth.test"]); // the startup check only
    const metrics = await (await fetch(`${h.server.url}/metrics`)).text();
    expect(metrics).toMatch(/honua_agent_slack_rejected_requests_total\{reason="future-timestamp"\} 1/);
  });

  it("a replayed click (the same signed request again) does nothing", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const body = actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card!, "honua_approve"), channel: CHANNEL, messageTs: card!.ts, threadTs: root, actionTs: "1700000100.000001" });
    expect((await h.post(body, FORM)).status).toBe(200);
    const calls = h.fake.calls.length;
    expect((await h.post(body, FORM)).status).toBe(200);
    expect(h.fake.calls.length).toBe(calls);
    expect(await h.server.engine.store.listDecisions((await h.server.engine.runs())[0]!.run)).toHaveLength(1);
  });

  it("a Slack retry of an event (x-slack-retry-num, same event_id) starts nothing twice, also after a restart of the dedupe", async () => {
    const h = await harness();
    const body = eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to staging", ts: "1699999990.000001", channel: CHANNEL, event_ts: "1699999990.000001" }, "EvRETRY1");
    await h.post(body, JSON_TYPE);
    const calls = h.fake.calls.length;
    expect((await h.post(body, JSON_TYPE, { retryNum: 1 })).status).toBe(200);
    expect((await h.post(body, JSON_TYPE, { retryNum: 2 })).status).toBe(200);
    expect(await h.server.engine.runs()).toHaveLength(1);
    expect(h.fake.calls.length).toBe(calls);
    // persisted: the seen id is in the SQL store, not only in memory
    expect(await h.server.engine.store.sql.query(`SELECT id FROM honua_slack_seen WHERE id = ?`, ["event:EvRETRY1"])).toHaveLength(1);
  });

  it("expiry: a warning at 80% of the TTL mentions the approvers; on expiry the card says so, nothing proceeds, and 'Request again' reopens it", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const run = (await h.server.engine.runs())[0]!.run;
    h.clock.t += 20 * 3600_000; // provision TTL is 24 h by default: 83% gone
    await h.server.tick();
    await h.server.tick(); // a second pass sends nothing new
    const warnings = h.fake.thread(root).filter((m) => /expires in/.test(m.text));
    expect(warnings).toHaveLength(1);
    expect(blocksText(warnings[0]!)).toContain("<@U0ALICE42> <!subteam^S0ONCALL|@oncall>");
    h.clock.t += 5 * 3600_000;
    await h.server.tick();
    const expired = h.fake.messages.get(card!.ts)!;
    expect(expired.text).toMatch(/expired; nothing was changed/);
    expect(JSON.stringify(expired.blocks)).toContain("honua_request_again");
    expect(JSON.stringify(expired.blocks)).not.toContain("honua_approve");
    expect(h.fake.thread(root).some((m) => /expired; the run stays paused/.test(m.text))).toBe(true);
    // an old client still showing the buttons: the engine refuses, nothing proceeds
    const stale = { ...expired, blocks: card!.versions[0]!.blocks };
    await h.click(stale, "U0ALICE42");
    expect(h.fake.ephemerals("U0ALICE42").join("\n")).toMatch(/expired/);
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(0);
    expect((await h.server.engine.summary(run)).status).toBe("waiting");
    // request again -> the same card opens again with a new expiry, and can be approved
    await h.click(expired, "U0CAROL42", "request_again");
    const reopened = h.fake.messages.get(card!.ts)!;
    expect(JSON.stringify(reopened.blocks)).toContain("honua_approve");
    expect(h.fake.thread(root).some((m) => /asked again for approval/.test(m.text))).toBe(true);
    await h.click(reopened, "U0ALICE42");
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(1);
  });

  it("a gate decided outside Slack (the command line) closes its card and the next card is posted on the next timer pass", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const run = (await h.server.engine.runs())[0]!.run;
    const s = await h.server.engine.summary(run);
    // another process decides: its own engine on the same state directory
    const other = await Engine.open({ env: testEnv(h.home), cwd: h.home, config: parseConfig(CONFIG, "test"), now: () => new Date(h.clock.t) });
    try {
      await other.decide(run, "U0ALICE42", "approve", { planHash: s.pending!.planHash });
    } finally {
      await other.close();
    }
    await h.server.tick();
    await h.server.idle();
    expect(hasButtons(h.fake.messages.get(card!.ts)!)).toBe(false);
    expect(h.fake.messages.get(card!.ts)!.text).toMatch(/approved by U0ALICE42/);
    expect(h.cards(root)).toHaveLength(2);
  });

  it("an automatic rollback is announced loudly, mentioning the requester and the approvers", async () => {
    const h = await harness({ HONUA_SANDBOX_FAULTS: "latency-regression" });
    const root = await h.mention("add Redis caching to prod");
    for (let i = 0; i < 6; i++) {
      const open = h.cards(root).filter(hasButtons);
      if (open.length === 0) break;
      await h.click(open[0]!, "U0ALICE42");
    }
    const alert = h.fake.thread(root).find((m) => /AUTOMATIC ROLLBACK/.test(m.text));
    expect(alert).toBeDefined();
    const text = blocksText(alert!);
    expect(text).toContain("<@U0CAROL42>");
    expect(text).toContain("<@U0ALICE42>");
    expect(text).toContain("<!subteam^S0ONCALL|@oncall>");
    expect(text).toMatch(/p95|latency/i);
    const run = (await h.server.engine.runs())[0]!;
    expect(["rolled-back", "waiting"]).toContain(run.status);
  });

  it("/honua posts the request in the channel and runs in that message's thread", async () => {
    const h = await harness();
    const res = await h.post(commandBody({ user: "U0CAROL42", channel: CHANNEL, text: "add Redis caching to prod", responseUrl: h.fake.responseUrl }), FORM);
    expect(res.status).toBe(200);
    await h.server.idle();
    const root = [...h.fake.messages.values()].find((m) => !m.thread_ts)!;
    expect(root.text).toBe("<@U0CAROL42> asked: add Redis caching to prod");
    expect(h.cards(root.ts)).toHaveLength(1);
  });

  it("thread commands: status answers in the thread; other text gets the command list; cancel acts through the engine", async () => {
    const h = await harness({}, { converse: null });
    const root = await h.mention("add Redis caching to prod");
    const say = (text: string, user = "U0CAROL42") => h.say(root, text, user);
    await say("status");
    const status = h.fake.thread(root).at(-1)!;
    expect(status.text).toMatch(/waiting, 3\/10 steps done/);
    expect(blocksText(status)).toMatch(/Waiting for approval of \*ProvisionCacheInfrastructure\*/);
    await say("what is this?");
    expect(h.fake.thread(root).at(-1)!.text).toMatch(/`status` · `pause` · `resume` · `cancel` · `transcript`/);
    await say("transcript");
    expect(h.fake.called("files.completeUploadExternal")).toHaveLength(1);
    await say("cancel", "U0MALLORY4");
    expect(h.fake.ephemerals("U0MALLORY4").join()).toMatch(/may not cancel/);
    await say("cancel");
    const run = (await h.server.engine.runs())[0]!;
    expect(run.status).toBe("cancelled");
    expect(h.fake.thread(root).some((m) => /Report/.test(m.text))).toBe(true);
  });

  it("pause holds the run before its next step (no card while paused); resume continues it to the next card", async () => {
    const h = await harness({}, { converse: null });
    const root = await h.mention("add Redis caching to prod");
    const say = (text: string, user = "U0CAROL42") => h.say(root, text, user);
    await say("pause");
    expect(h.fake.thread(root).some((m) => /paused the run/.test(m.text))).toBe(true);
    await h.click(h.cards(root)[0]!, "U0ALICE42");
    const run = (await h.server.engine.runs())[0]!.run;
    expect((await h.server.engine.summary(run)).status).toBe("paused");
    expect(h.cards(root)).toHaveLength(1);
    expect(h.fake.thread(root)[1]!.text).toMatch(/: paused,/);
    await say("resume");
    expect((await h.server.engine.summary(run)).status).toBe("waiting");
    expect(h.cards(root)).toHaveLength(2);
  });

  it("other thread text goes to the conversation module with the run, the user and their verified Slack groups", async () => {
    const seen: unknown[] = [];
    const h = await harness({}, { converse: async (_engine, input) => (seen.push(input), { text: `you said ${input.text}` }) });
    const root = await h.mention("add Redis caching to prod");
    await h.say(root, "why redis?", "U0BOB4242");
    const run = (await h.server.engine.runs())[0]!.run;
    expect(seen).toEqual([{ run, user: "U0BOB4242", groups: ["@oncall"], text: "why redis?" }]);
    expect(h.fake.thread(root).at(-1)!.text).toBe("you said why redis?");
  });

  it("a finished run ends with the report, a PNG chart and the transcript uploaded through files.getUploadURLExternal/completeUploadExternal", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to staging");
    for (let i = 0; i < 6; i++) {
      const open = h.cards(root).filter(hasButtons);
      if (open.length === 0) break;
      await h.click(open[0]!, "U0ALICE42");
    }
    const run = (await h.server.engine.runs())[0]!;
    expect(run.status).toBe("done");
    const report = h.fake.thread(root).find((m) => /^Report for run/.test(m.text));
    expect(blocksText(report!)).toMatch(/Before:.*p95/);
    const names = h.fake.called("files.getUploadURLExternal").map((c) => String(c.args.filename));
    expect(names).toEqual([`${run.run}-before-after.png`, `${run.run}-transcript.md`]);
    const complete = h.fake.called("files.completeUploadExternal");
    expect(complete).toHaveLength(1);
    expect(complete[0]!.args).toMatchObject({ channel_id: CHANNEL, thread_ts: root });
    const bytes = [...h.fake.uploads.values()];
    expect(bytes.some((b) => b.includes(Buffer.from([0x89, 0x50, 0x4e, 0x47])))).toBe(true);
    expect(bytes.some((b) => b.toString("utf8").includes(`# Run ${run.run}`))).toBe(true);
    const progress = h.fake.thread(root)[1]!;
    expect(progress.text).toMatch(/done, 10\/10 steps done/);
  });

  it("an unclear request is answered with a question and deployment buttons; a button starts the run", async () => {
    const h = await harness();
    const root = await h.mention("add redis caching");
    const q = h.fake.thread(root)[0]!;
    expect(JSON.stringify(q.blocks)).toContain("honua_pick_deployment");
    const value = (q.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === "actions")!.elements!.find((e) => e.action_id.endsWith(":staging"))!.value;
    await h.post(actionBody({ user: "U0CAROL42", actionId: "honua_pick_deployment:staging", value, channel: CHANNEL, messageTs: q.ts, threadTs: root }), FORM);
    expect((await h.server.engine.runs())[0]).toMatchObject({ deployment: "staging", requestedBy: "U0CAROL42" });
    expect(h.cards(root)).toHaveLength(1);
  });

  it("App Home lists runs in progress and the approvals waiting for the viewer", async () => {
    const h = await harness();
    await h.mention("add Redis caching to prod");
    await h.post(eventBody({ type: "app_home_opened", user: "U0BOB4242", channel: "D1", tab: "home" }), JSON_TYPE);
    await h.post(eventBody({ type: "app_home_opened", user: "U0MALLORY4", channel: "D2", tab: "home" }), JSON_TYPE);
    const [bob, mallory] = h.fake.called("views.publish");
    expect(bob!.args.user_id).toBe("U0BOB4242");
    expect(JSON.stringify(bob!.args.view)).toMatch(/Waiting for your approval\* \(1\)/);
    expect(JSON.stringify(mallory!.args.view)).toMatch(/Waiting for your approval\* \(0\)/);
    expect(JSON.stringify(mallory!.args.view)).toMatch(/Runs in progress\* \(1\)/);
  });

  it("/healthz and /metrics answer; metrics count runs by status and gates waiting, and time a decision from its card", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const asked = await (await fetch(`${h.server.url}/metrics`)).text();
    expect(asked).toMatch(/honua_agent_gates_waiting\{kind="provision"\} 1/);
    expect(asked).not.toMatch(/honua_agent_decision_latency_seconds_count\{/);
    h.clock.t += 90_000;
    await h.click(h.cards(root)[0]!, "U0ALICE42");
    const health = await fetch(`${h.server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, mode: "http" });
    const metrics = await (await fetch(`${h.server.url}/metrics`)).text();
    expect(metrics).toMatch(/honua_agent_runs\{status="waiting"\} 1/);
    expect(metrics).toMatch(/honua_agent_gates_waiting\{kind="traffic"\} 1/);
    expect(metrics).toMatch(/honua_agent_slack_ack_latency_seconds_count\{kind="http"\} [1-9]/);
    expect(metrics).toMatch(/honua_agent_decision_latency_seconds_count\{kind="provision",decision="approve"\} 1\n/);
    expect(metrics).toMatch(/honua_agent_decision_latency_seconds_sum\{kind="provision",decision="approve"\} 90\n/);
  });
});

describe("Slack settings", () => {
  it("names every missing variable; Socket Mode when SLACK_APP_TOKEN is set", () => {
    expect(() => slackSettings({})).toThrow(/SLACK_BOT_TOKEN is not set[\s\S]*SLACK_SIGNING_SECRET is not set/);
    expect(() => slackSettings({ SLACK_BOT_TOKEN: "xoxb-1" })).toThrow(/SLACK_SIGNING_SECRET is not set/);
    expect(slackSettings({ SLACK_BOT_TOKEN: "xoxb-1", SLACK_APP_TOKEN: "xapp-1" }).mode).toBe("socket");
    expect(slackSettings({ SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s", PORT: "8080", SLACK_API_URL: "http://127.0.0.1:9/api" })).toMatchObject({ mode: "http", port: 8080, apiUrl: "http://127.0.0.1:9/api/" });
    expect(() => slackSettings({ SLACK_BOT_TOKEN: "xoxb-1", SLACK_SIGNING_SECRET: "s", PORT: "http" })).toThrow(/PORT must be a port number/);
  });
});

describe("honua-agent serve (the command line)", () => {
  it("refuses to start with exit 2 when configuration is incomplete, naming the variable", () => {
    const t = tempHome();
    try {
      const r = cli(t.home, ["serve"], { SLACK_BOT_TOKEN: "xoxb-1" });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/SLACK_SIGNING_SECRET is not set/);
    } finally {
      t.cleanup();
    }
  });

  it("with SLACK_BOT_TOKEN set, the default command serves Slack over HTTP until SIGTERM", async () => {
    const t = tempHome();
    const fake = await SlackFake.start();
    const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl, PORT: "0", HOST: "127.0.0.1" });
    delete env.SLACK_APP_TOKEN;
    const child = spawn(process.execPath, [new URL("../bin/honua-agent.mjs", import.meta.url).pathname], { cwd: t.home, env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let err = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (b: Buffer) => {
          err += b.toString();
          const m = /health and metrics on (http:\/\/[\d.:]+)\/healthz/.exec(err);
          if (m) resolve(m[1]!);
        });
        child.on("exit", (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      expect(err).toMatch(/Slack events on http:\/\/127\.0\.0\.1:\d+\/slack\/events/);
      expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ ok: true, mode: "http" });
      const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
      expect(fake.called("auth.test")).toHaveLength(1);
    } finally {
      child.kill("SIGKILL");
      await fake.close();
      t.cleanup();
    }
  });
});

describe("Socket Mode", () => {
  it("connects through apps.connections.open, acks each envelope and answers in the thread; a redelivered envelope starts nothing twice", async () => {
    const t = tempHome();
    const fake = await SlackFake.start();
    const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_APP_TOKEN: "xapp-test-token", SLACK_API_URL: fake.apiUrl });
    for (const k of ["SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "OPENAI_BASE_URL"]) delete env[k];
    const server = await startServer({ env, cwd: t.home, config: parseConfig(CONFIG, "test"), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0 });
    try {
      expect(server.mode).toBe("socket");
      expect(fake.called("apps.connections.open")).toHaveLength(1);
      const ts = "1699999999.500001";
      const payload = JSON.parse(eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to prod", ts, channel: CHANNEL, event_ts: ts }, "EvSOCKET1")) as Record<string, unknown>;
      fake.sendSocket({ envelope_id: "env-1", type: "events_api", accepts_response_payload: false, retry_attempt: 0, payload });
      expect(await fake.socketReply((m) => m.envelope_id === "env-1")).toMatchObject({ envelope_id: "env-1" });
      await server.idle();
      expect(fake.thread(ts).filter((m) => JSON.stringify(m.blocks).includes("honua_approve"))).toHaveLength(1);
      fake.sendSocket({ envelope_id: "env-2", type: "events_api", accepts_response_payload: false, retry_attempt: 1, retry_reason: "timeout", payload });
      await fake.socketReply((m) => m.envelope_id === "env-2");
      await server.idle();
      expect(await server.engine.runs()).toHaveLength(1);
      expect((await (await fetch(`${server.url}/healthz`)).json()) as object).toMatchObject({ ok: true, mode: "socket" });
    } finally {
      await server.close();
      await fake.close();
      t.cleanup();
    }
  });
});
