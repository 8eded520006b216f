import { createServer } from "node:net";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parse as parseYaml } from "yaml";
import type { webApi } from "@slack/bolt";
import { parseConfig } from "../src/config.js";
import { ApproverDirectory } from "../src/slack/approvers.js";
import { AgentError } from "../src/core/errors.js";
import type { GatePayload } from "../src/graph/state.js";
import type { PlanResult } from "../src/planner/plan.js";
import { PickValue, buildApprovalCard, buildClarifyMessage, buildDecidedCard, buildError, buildPlanMessage, buildExpiryNotice, buildExpiryWarning, buildReportMessage, buildRollbackAlert, formatApprover, type CardView } from "../src/slack/blocks.js";
import { startServer, type ServeOptions, type SlackServer } from "../src/slack/server.js";
import { SlackStore } from "../src/slack/store.js";
import { freePort, tempHome, testEnv } from "./helpers.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, slackTestEnv, commandBody, eventBody, slackPost, type FakeMessage } from "./fixtures/slack-fake.js";

const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const OPS = "C0OPS";
const OTHER = "C0OTHER";
const CONFIG = {
  deployments: {
    prod: { provider: "sandbox", aliases: ["production"], approvers: ["U0ALICE42", "@oncall"], seed: 16 },
    staging: { provider: "sandbox", aliases: ["stage"], approvers: ["U0ALICE42"], seed: 17, monitoring: { windowMinutes: 15, stageMinutes: 5 } },
  },
};
/** What an echo of hostile text must never turn into: a broadcast, a mention, a disguised link. */
const HOSTILE = ["<!channel>", "<!here>", "<!everyone>", "<@U0BOSS1234>", "<http://evil.example|click>"];

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const o of open.splice(0).reverse()) await o.close();
});

interface Harness {
  fake: SlackFake;
  server: SlackServer;
  clock: { t: number };
  post(body: string, type: string): Promise<Response>;
  mention(text: string, o?: { user?: string; channel?: string }): Promise<string>;
  say(threadTs: string, text: string, user: string, extra?: Record<string, unknown>): Promise<Response>;
  clickWith(card: FakeMessage, user: string, actionId: string, value: string): Promise<Response>;
  cards(thread: string): FakeMessage[];
}

async function harness(serve: Partial<ServeOptions> = {}): Promise<Harness> {
  const t = tempHome();
  open.push({ close: async () => t.cleanup() });
  const fake = await SlackFake.start();
  open.push(fake);
  fake.groups = { S0ONCALL: { handle: "oncall", users: ["U0BOB4242"] } };
  const env = slackTestEnv(t.home, fake.apiUrl, SECRET);
  const clock = { t: Date.parse("2026-11-26T14:00:00Z") };
  const server = await startServer({
    env, cwd: t.home, config: parseConfig(CONFIG, "test"), now: () => new Date(clock.t),
    port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null, ...serve,
  });
  open.push(server);
  let seq = 0;
  const h: Harness = {
    fake, server, clock,
    async post(body, type) {
      const res = await slackPost(server.url, body, type, { secret: SECRET });
      await server.idle();
      return res;
    },
    async mention(text, o = {}) {
      const ts = `1699999999.${String(++seq).padStart(6, "0")}`;
      const res = await h.post(eventBody({ type: "app_mention", user: o.user ?? "U0CAROL42", text: `<@UHONUA> ${text}`, ts, channel: o.channel ?? OPS, event_ts: ts }), JSON_TYPE);
      expect(res.status).toBe(200);
      return ts;
    },
    say(threadTs, text, user, extra = {}) {
      const ts = `1699999999.${String(++seq).padStart(6, "0")}`;
      return h.post(eventBody({ type: "message", channel_type: "channel", user, text, ts, thread_ts: threadTs, channel: OPS, ...extra }), JSON_TYPE);
    },
    clickWith(card, user, actionId, value) {
      return h.post(actionBody({ user, actionId, value, channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts }), FORM);
    },
    cards(thread) {
      return fake.thread(thread).filter((m) => m.versions.some((v) => JSON.stringify(v.blocks).includes("honua_approve")));
    },
  };
  return h;
}


/** Everything the bot sent to Slack (messages, edits, ephemerals, views) that a person reads, as one string (button values are not shown). */
const sent = (fake: SlackFake): string =>
  fake.calls.filter((c) => /^(chat\.|views\.)/.test(c.method)).map((c) => JSON.stringify(c.args, (k, v: unknown) => (k === "value" ? undefined : v))).join("\n");

/** Every mrkdwn text object in some blocks. */
function mrkdwnObjects(v: unknown): Record<string, unknown>[] {
  if (Array.isArray(v)) return v.flatMap(mrkdwnObjects);
  if (!v || typeof v !== "object") return [];
  const o = v as Record<string, unknown>;
  return [...(o.type === "mrkdwn" ? [o] : []), ...Object.values(o).flatMap(mrkdwnObjects)];
}

describe("Slack front: a button acts only on the gate of its own card", () => {
  it("a value naming another run's gate (copied or edited onto a card) decides nothing there and says so", async () => {
    const h = await harness();
    const a = await h.mention("add Redis caching to prod");
    const b = await h.mention("add Redis caching to staging", { channel: OTHER });
    const [cardA] = h.cards(a);
    const [cardB] = h.cards(b);
    const runB = (await h.server.engine.runs()).find((r) => r.deployment === "staging")!.run;
    // alice clicks Approve on prod's card, but the button carries staging's gate
    await h.clickWith(cardA!, "U0ALICE42", "honua_approve", buttonValue(cardB!, "honua_approve"));
    expect(await h.server.engine.store.listDecisions(runB)).toEqual([]);
    expect(h.server.engine.sandbox().count("staging", "provision-cache")).toBe(0);
    expect(h.fake.ephemerals("U0ALICE42").join("\n")).toMatch(/does not belong to the approval card.*nothing was decided/);
    // and neither card changed
    expect(h.fake.messages.get(cardA!.ts)!.versions).toHaveLength(1);
    expect(h.fake.messages.get(cardB!.ts)!.versions).toHaveLength(1);
  });

  it("a value that is not a gate reference (not JSON, extra keys) is refused by its schema and says so", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const real = JSON.parse(buttonValue(card!, "honua_approve")) as Record<string, string>;
    await h.clickWith(card!, "U0ALICE42", "honua_approve", "not json");
    await h.clickWith(card!, "U0ALICE42", "honua_approve", JSON.stringify({ ...real, approve: true }));
    await h.clickWith(card!, "U0ALICE42", "honua_request_again", JSON.stringify({ r: real.r }));
    expect(h.fake.ephemerals("U0ALICE42").filter((m) => /does not carry a valid approval request/.test(m))).toHaveLength(3);
    const run = (await h.server.engine.runs())[0]!.run;
    expect(await h.server.engine.store.listDecisions(run)).toEqual([]);
  });
});

describe("Slack front: nobody the engine refuses is announced as having acted", () => {
  it("cancel or resume from someone who is neither the requester nor an approver: only a private refusal, nothing posted in the thread", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const before = h.fake.thread(root).length;
    await h.say(root, "cancel", "U0MALLORY4");
    await h.say(root, "resume", "U0MALLORY4");
    await h.say(root, "pause", "U0MALLORY4");
    expect(h.fake.thread(root)).toHaveLength(before);
    expect(h.fake.ephemerals("U0MALLORY4").join("\n")).toMatch(/may not cancel[\s\S]*may not resume[\s\S]*may not pause/);
    const run = (await h.server.engine.runs())[0]!.run;
    expect((await h.server.engine.summary(run)).status).toBe("waiting");
    expect(await h.server.engine.store.listDecisions(run)).toEqual([]);
  });

  it("cancel at a gate whose approval request expired still works (it only restores), and is not called automatic", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    h.clock.t += 25 * 3600_000;
    await h.server.tick();
    const before = h.fake.thread(root).length;
    await h.say(root, "cancel", "U0CAROL42");
    const said = h.fake.thread(root).slice(before).map((m) => m.text).join("\n");
    expect(said).toMatch(/cancelled the run/);
    expect(said).not.toMatch(/AUTOMATIC ROLLBACK/);
    const run = (await h.server.engine.runs())[0]!.run;
    expect((await h.server.engine.summary(run)).status).toBe("cancelled");
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(0);
  });

  it("Request again from someone who is neither the requester nor an approver is refused privately; the card stays expired", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    h.clock.t += 25 * 3600_000;
    await h.server.tick();
    const expired = h.fake.messages.get(card!.ts)!;
    await h.clickWith(expired, "U0MALLORY4", "honua_request_again", buttonValue(expired, "honua_request_again"));
    expect(h.fake.ephemerals("U0MALLORY4").join("\n")).toMatch(/may not re-request/);
    expect(JSON.stringify(h.fake.messages.get(card!.ts)!.blocks)).not.toContain("honua_approve");
    const run = (await h.server.engine.runs())[0]!.run;
    const p = (await h.server.engine.summary(run)).pending!;
    expect(Date.parse(p.expiresAt!)).toBeLessThanOrEqual(h.clock.t);
  });

  it("no text in the thread approves: 'approve', 'yes', 'skip' from an approver decide nothing", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    for (const text of ["approve", "yes", "skip", "lgtm, approve it"]) await h.say(root, text, "U0ALICE42");
    const run = (await h.server.engine.runs())[0]!.run;
    expect(await h.server.engine.store.listDecisions(run)).toEqual([]);
    expect(h.server.engine.sandbox().count("prod", "provision-cache")).toBe(0);
  });

  it("a reply also sent to the channel (thread_broadcast) is still read as a thread command", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    await h.say(root, "status", "U0CAROL42", { subtype: "thread_broadcast" });
    expect(h.fake.thread(root).at(-1)!.text).toMatch(/waiting, 3\/10 steps done/);
  });
});

describe("Slack front: echoed text cannot mention, broadcast or link", () => {
  it("the conversation's answer, a clarifying question, a refusal and an error are posted as text", async () => {
    const evil = HOSTILE.join(" ");
    let planned: PlanResult = { clarify: `Which deployment for ${evil}?`, missing: ["deployment"] } as unknown as PlanResult;
    const h = await harness({
      converse: async (_e, input) => {
        if (input.text === "boom") throw new Error(`model said ${evil}`);
        return { text: `you asked: ${evil}` };
      },
      plan: async (text) => (/redis caching to prod/i.test(text) ? (await import("../src/planner/index.js")).planRequest(text, parseConfig(CONFIG, "test").config, {}) : planned),
    });
    await h.mention("something vague");
    planned = { refuse: `no ${evil}` } as unknown as PlanResult;
    await h.mention("something forbidden");
    const root = await h.mention("add Redis caching to prod");
    await h.say(root, "why redis?", "U0CAROL42");
    await h.say(root, "boom", "U0CAROL42");
    const all = sent(h.fake);
    expect(all).toContain("you asked:");
    expect(all).toContain("model said");
    for (const s of HOSTILE) expect(all).not.toContain(s);
    expect(all).toContain("&lt;!channel&gt;");
  });

  it("/honua echoes the request as plain text: no mention, broadcast or link parsing", async () => {
    const h = await harness();
    await h.post(commandBody({ user: "U0CAROL42", channel: OPS, text: `add Redis caching to prod ${HOSTILE.join(" ")} @here`, responseUrl: h.fake.responseUrl }), FORM);
    const [root] = h.fake.called("chat.postMessage");
    expect(root!.args).toMatchObject({ parse: "none", link_names: "false" });
    expect(String(root!.args.text)).toMatch(/^<@U0CAROL42> asked: add Redis caching to prod &lt;!channel&gt;/);
    for (const s of HOSTILE) expect(sent(h.fake)).not.toContain(s);
  });

  it("a deployment button whose value was edited cannot inject into the notice it produces", async () => {
    const h = await harness();
    const root = await h.mention("add redis caching");
    const q = h.fake.thread(root)[0]!;
    await h.clickWith(q, "U0CAROL42", "honua_pick_deployment:prod", JSON.stringify({ q: "add redis caching", d: "<!channel>" }));
    expect(sent(h.fake)).not.toContain("<!channel>");
  });

  it("a long request full of characters JSON escapes still fits the 2000-character button value of the deployment choice", () => {
    const m = buildClarifyMessage({ question: "Which deployment?", request: `add redis caching ${'"\\'.repeat(900)}`, deployments: ["prod", "staging"] });
    const values = (m.blocks as { elements?: { value?: string }[] }[]).flatMap((b) => b.elements ?? []).map((e) => e.value!);
    expect(values).toHaveLength(2);
    for (const v of values) {
      expect(v.length).toBeLessThanOrEqual(2000);
      expect(PickValue.parse(JSON.parse(v)).q).toMatch(/^add redis caching /);
    }
  });

  it("gate text, config diffs, resource fields, reasons and outcomes are escaped in blocks and fallback text; mrkdwn is verbatim", () => {
    const gate: GatePayload = {
      run: "run-1", workflow: "add-caching-layer", deployment: "prod", step: "ProvisionCacheInfrastructure", stage: null, kind: "provision",
      action: "create <!channel> cache", why: "<@U0BOSS1234> said so", risk: "<http://evil.example|click>",
      change: { config: [{ key: "Cache__Note", before: null, after: "```<!here>```" }], resources: [{ "<!everyone>": "x" }], traffic: null },
      metricsNow: null, approvers: ["U0ALICE42"], requestedBy: "U0CAROL42", askedAt: "2026-11-26T14:00:00Z",
    };
    const view: CardView = { gate, interrupt: "i", planHash: "h", expiresAt: "2026-11-26T15:00:00Z", approvers: [formatApprover("U0ALICE42")], twoPersonRule: false };
    const messages = [
      buildApprovalCard(view), buildExpiryWarning(view, "2026-11-26T14:50:00Z"), buildExpiryNotice(view),
      buildRollbackAlert({ run: "run-1", deployment: "prod", reason: "p95 of <!here> rose", mentions: [] }),
      buildReportMessage({ run: "run-1", workflow: "w", deployment: "prod", status: "failed", outcome: "<!channel> broke", before: null, after: null, decisions: [], requestedBy: "U0CAROL42" }),
      buildError("unknown deployment <!channel>"),
      // a decision made on the command line as `--as "<!channel>"`
      buildDecidedCard(view, { decision: "approve", by: "<!channel>", at: "2026-11-26T14:05:00Z" }),
      buildPlanMessage({ workflow: "add-caching-layer", title: "Add a caching layer", deployment: "prod", params: { "<!here>": "<!channel>", note: "<@U0BOSS1234>" }, steps: [{ name: "A", gated: true }], requestedBy: "U0CAROL42", cost: null }),
    ];
    for (const m of messages) {
      const text = `${m.text}\n${JSON.stringify(m.blocks)}`;
      for (const s of HOSTILE) expect(text).not.toContain(s);
      // the diff's own ``` cannot close the code block early and let the rest render as mrkdwn
      expect(JSON.stringify(m.blocks)).not.toMatch(/```&lt;!here/);
      const mrkdwn = mrkdwnObjects(m.blocks);
      expect(mrkdwn.length).toBeGreaterThan(0);
      for (const t of mrkdwn) expect(t.verbatim, String(t.text)).toBe(true);
    }
  });
});

describe("Slack front: work after the ack never crashes the process and reaches the thread", () => {
  it("a failure to record a run's thread (database error) is reported in the thread, not left as an unhandled rejection", async () => {
    const h = await harness();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      vi.spyOn(SlackStore.prototype, "bindThread").mockRejectedValueOnce(new Error("database is locked"));
      const root = await h.mention("add Redis caching to prod");
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      expect(h.fake.thread(root).some((m) => /database is locked/.test(m.text))).toBe(true);
      expect(h.cards(root)).toHaveLength(1); // the run carried on
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a mention whose thread lookup fails (database error) is answered in its thread, not only logged", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    vi.spyOn(SlackStore.prototype, "runInThread").mockRejectedValueOnce(new Error("database is locked"));
    const ts = "1699999999.900001";
    await h.post(eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> status", ts, thread_ts: root, channel: OPS, event_ts: ts }), JSON_TYPE);
    expect(h.fake.thread(root).at(-1)!.text).toMatch(/^Error: .*database is locked/);
  });

  it("expiry: a run whose thread cannot be written does not hold back the notices of other runs; each notice goes out once", async () => {
    const h = await harness();
    const a = await h.mention("add Redis caching to prod");
    const b = await h.mention("add Redis caching to staging", { channel: OTHER });
    const roots = new Map<string, { root: string; channel: string }>();
    for (const r of await h.server.engine.runs()) roots.set(r.run, r.deployment === "prod" ? { root: a, channel: OPS } : { root: b, channel: OTHER });
    // the run the timer visits first sits in a channel the bot was removed from
    const [first, second] = (await h.server.engine.pendingGates()).map((g) => roots.get(g.run)!);
    h.fake.closedChannels.add(first!.channel);
    h.clock.t += 25 * 3600_000; // past the 24 h provision TTL of both
    await h.server.tick();
    await h.server.tick();
    await h.server.idle();
    const notices = h.fake.thread(second!.root).filter((m) => /expired; the run stays paused/.test(m.text));
    expect(notices).toHaveLength(1);
    const [card] = h.cards(second!.root);
    expect(JSON.stringify(h.fake.messages.get(card!.ts)!.blocks)).toContain("honua_request_again");
    // the first run's card still got edited to say it expired (chat.update works there); no decision proceeded anywhere
    for (const r of await h.server.engine.runs()) expect(await h.server.engine.store.listDecisions(r.run)).toEqual([]);
  });

  it("a card posted for the next gate (by another replica) while the previous decision is announced keeps its buttons", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    const [card] = h.cards(root);
    const run = (await h.server.engine.runs())[0]!.run;
    // another replica's card for a gate that has no decision yet
    await h.server.engine.store.sql.query(`INSERT INTO honua_slack_cards (run, interrupt, plan_hash, channel, ts, state) VALUES (?, 'next-gate', 'h2', ?, '1700000099.000001', 'open')`, [run, OPS]);
    await h.clickWith(card!, "U0ALICE42", "honua_approve", buttonValue(card!, "honua_approve"));
    const rows = await h.server.engine.store.sql.query(`SELECT state FROM honua_slack_cards WHERE run = ? AND interrupt = 'next-gate'`, [run]);
    expect(rows[0]!.state).toBe("open");
    expect(h.fake.messages.get(card!.ts)!.text).toMatch(/approved by U0ALICE42/);
  });
});

describe("Slack front: approvers while Slack's user-group API fails", () => {
  it("an approver listed by id still approves; a group member gets the lookup error, not a silent refusal", async () => {
    const client = {
      usergroups: {
        users: { list: async () => Promise.reject(new Error("ratelimited")) },
        list: async () => Promise.reject(new Error("ratelimited")),
      },
    } as unknown as webApi.WebClient;
    const dir = new ApproverDirectory(client, parseConfig(CONFIG, "test").config);
    expect(await dir.actor("U0ALICE42", "prod")).toEqual({ user: "U0ALICE42", groups: [] });
    await expect(dir.actor("U0BOB4242", "prod")).rejects.toThrow(/ratelimited/);
  });
});

describe("Slack front: controls while Slack's user-group API fails", () => {
  it("the requester can still cancel their own run", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    h.fake.failures.set("usergroups.users.list", "ratelimited");
    h.fake.failures.set("usergroups.list", "ratelimited");
    await h.say(root, "cancel", "U0CAROL42");
    expect((await h.server.engine.runs())[0]!.status).toBe("cancelled");
    expect(h.fake.thread(root).some((m) => /cancelled the run/.test(m.text))).toBe(true);
  });
});

/** One state directory and one Web API fake; `start` opens a new front on them, as a restart would. */
async function restartable(): Promise<{ fake: SlackFake; start: () => Promise<SlackServer> }> {
  const t = tempHome();
  open.push({ close: async () => t.cleanup() });
  const fake = await SlackFake.start();
  open.push(fake);
  const env = slackTestEnv(t.home, fake.apiUrl, SECRET);
  const start = () => startServer({ env, cwd: t.home, config: parseConfig(CONFIG, "test"), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null });
  return { fake, start };
}

describe("Slack front: exactly once across a restart", () => {
  it("an event and a click delivered again after a restart (same state directory) start and decide nothing twice", async () => {
    const { fake, start } = await restartable();
    const send = async (s: SlackServer, body: string, type: string) => {
      expect((await slackPost(s.url, body, type, { secret: SECRET })).status).toBe(200);
      await s.idle();
    };
    const ts = "1699999998.000001";
    const mention = eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to staging", ts, channel: OPS, event_ts: ts }, "EvRESTART1");
    const first = await start();
    await send(first, mention, JSON_TYPE);
    const card = fake.thread(ts).find((m) => JSON.stringify(m.blocks).includes("honua_approve"))!;
    const click = actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: OPS, messageTs: card.ts, threadTs: ts, actionTs: "1700000300.000001" });
    await send(first, click, FORM);
    await first.close();
    const second = await start();
    open.push(second);
    await send(second, mention, JSON_TYPE);
    await send(second, click, FORM);
    const runs = await second.engine.runs();
    expect(runs).toHaveLength(1);
    expect(await second.engine.store.listDecisions(runs[0]!.run)).toHaveLength(1);
    expect(second.engine.sandbox().count("staging", "provision-cache")).toBe(1);
  });
});

describe("Slack front: cards after a restart", () => {
  it("a card posted before a restart and approved after it is edited in place: who decided, no buttons", async () => {
    const { fake, start } = await restartable();
    const ts = "1699999996.000001";
    const first = await start();
    await slackPost(first.url, eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to staging", ts, channel: OPS, event_ts: ts }), JSON_TYPE, { secret: SECRET });
    await first.idle();
    await first.close();
    const second = await start();
    open.push(second);
    const card = fake.thread(ts).find((m) => JSON.stringify(m.blocks).includes("honua_approve"))!;
    await slackPost(second.url, actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: OPS, messageTs: card.ts, threadTs: ts }), FORM, { secret: SECRET });
    await second.idle();
    const edited = fake.messages.get(card.ts)!;
    expect(JSON.stringify(edited.blocks)).not.toContain('"type":"actions"');
    expect(edited.text).toMatch(/approved by U0ALICE42/);
    expect(JSON.stringify(edited.blocks)).toContain("What will happen");
  });
});

describe("Slack front: upload failures", () => {
  it("a transcript upload Slack refuses is reported in the thread; the process carries on", async () => {
    const h = await harness();
    const root = await h.mention("add Redis caching to prod");
    h.fake.failures.set("files.completeUploadExternal", "internal_error");
    await h.say(root, "transcript", "U0CAROL42");
    expect(h.fake.thread(root).at(-1)!.text).toMatch(/^Error: .*internal_error/);
    h.fake.failures.clear();
    await h.say(root, "status", "U0CAROL42");
    expect(h.fake.thread(root).at(-1)!.text).toMatch(/waiting, 3\/10 steps done/);
  });
});

describe("Slack front: startup", () => {
  it("Socket Mode with an app token Slack refuses exits as bad input naming SLACK_APP_TOKEN, and frees its port", async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    fake.failures.set("apps.connections.open", "invalid_auth");
    const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_APP_TOKEN: "xapp-bad", SLACK_API_URL: fake.apiUrl });
    for (const k of ["SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "OPENAI_BASE_URL"]) delete env[k];
    const port = await freePort();
    const err = await startServer({ env, cwd: t.home, config: parseConfig(CONFIG, "test"), port, host: "127.0.0.1", expiryIntervalMs: 0, clientRetries: 0 }).then(
      (s) => (open.push(s), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("bad-input");
    expect((err as Error).message).toMatch(/SLACK_APP_TOKEN.*invalid_auth/);
    expect(await canListen(port)).toBe(true);
  });

  it("a port in use is bad input naming PORT", async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    open.push({ close: () => new Promise<void>((r) => blocker.close(() => r())) });
    const port = (blocker.address() as { port: number }).port;
    const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: fake.apiUrl });
    delete env.SLACK_APP_TOKEN;
    const err = await startServer({ env, cwd: t.home, config: parseConfig(CONFIG, "test"), port, host: "127.0.0.1", expiryIntervalMs: 0, clientRetries: 0 }).then(
      (s) => (open.push(s), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("bad-input");
    expect((err as Error).message).toMatch(/PORT/);
  });
});

describe("Socket Mode accepts what HTTP accepts", () => {
  it("a click and /honua arrive as envelopes, are acked and acted on; a redelivered click decides nothing twice", async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    fake.groups = { S0ONCALL: { handle: "oncall", users: ["U0BOB4242"] } };
    const env = testEnv(t.home, { SLACK_BOT_TOKEN: "xoxb-test-token", SLACK_APP_TOKEN: "xapp-test-token", SLACK_API_URL: fake.apiUrl });
    for (const k of ["SLACK_SIGNING_SECRET", "OPENAI_API_KEY", "OPENAI_BASE_URL"]) delete env[k];
    const server = await startServer({ env, cwd: t.home, config: parseConfig(CONFIG, "test"), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null });
    open.push(server);
    const command = Object.fromEntries(new URLSearchParams(commandBody({ user: "U0CAROL42", channel: OPS, text: "add Redis caching to prod", responseUrl: fake.responseUrl })));
    fake.sendSocket({ envelope_id: "env-c", type: "slash_commands", accepts_response_payload: true, payload: command });
    await fake.socketReply((m) => m.envelope_id === "env-c");
    await server.idle();
    const root = [...fake.messages.values()].find((m) => !m.thread_ts)!;
    const card = fake.thread(root.ts).find((m) => JSON.stringify(m.blocks).includes("honua_approve"))!;
    const click = JSON.parse(new URLSearchParams(actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: OPS, messageTs: card.ts, threadTs: root.ts, actionTs: "1700000200.000001" })).get("payload")!) as Record<string, unknown>;
    fake.sendSocket({ envelope_id: "env-a", type: "interactive", accepts_response_payload: true, payload: click });
    await fake.socketReply((m) => m.envelope_id === "env-a");
    await server.idle();
    fake.sendSocket({ envelope_id: "env-a2", type: "interactive", accepts_response_payload: true, retry_attempt: 1, payload: click });
    await fake.socketReply((m) => m.envelope_id === "env-a2");
    await server.idle();
    const run = (await server.engine.runs())[0]!.run;
    expect(await server.engine.store.listDecisions(run)).toHaveLength(1);
    expect(server.engine.sandbox().count("prod", "provision-cache")).toBe(1);
    expect(fake.thread(root.ts).filter((m) => JSON.stringify(m.versions[0]!.blocks).includes("honua_approve"))).toHaveLength(2);
  });
});

describe("slack/manifest.yaml", () => {
  /** The bot scope each Web API method called by src/slack needs (none: no scope). */
  const SCOPE: Record<string, string | null> = {
    "auth.test": null,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "views.publish": null,
    "usergroups.list": "usergroups:read",
    "usergroups.users.list": "usergroups:read",
    filesUploadV2: "files:write",
  };
  const EVENT_SCOPE: Record<string, string | null> = {
    app_mention: "app_mentions:read",
    app_home_opened: null,
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
  };

  function sources(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
  }

  it("declares exactly the bot scopes the code's Web API calls, events and command need", () => {
    const root = new URL("..", import.meta.url).pathname;
    const manifest = parseYaml(readFileSync(join(root, "slack/manifest.yaml"), "utf8")) as {
      oauth_config: { scopes: { bot: string[] } };
      settings: { event_subscriptions: { bot_events: string[] }; interactivity: { is_enabled: boolean } };
      features: { slash_commands: { command: string }[]; app_home: { home_tab_enabled: boolean } };
    };
    const code = sources(join(root, "src/slack")).map((f) => readFileSync(f, "utf8")).join("\n");
    const methods = new Set([...code.matchAll(/client\.((?:[a-z]+\.)+[a-zA-Z]+)\(/g)].map((m) => m[1]!).filter((m) => m !== "once"));
    if (code.includes("filesUploadV2(")) methods.add("filesUploadV2");
    for (const m of methods) expect(Object.keys(SCOPE), `Web API method ${m} has no scope entry in this test`).toContain(m);
    const events = manifest.settings.event_subscriptions.bot_events;
    for (const e of events) expect(Object.keys(EVENT_SCOPE), `event ${e}`).toContain(e);
    const needed = new Set([...methods].map((m) => SCOPE[m]).concat(events.map((e) => EVENT_SCOPE[e]!)).filter((s): s is string => !!s));
    if (manifest.features.slash_commands.some((c) => c.command === "/honua") && code.includes('"/honua"')) needed.add("commands");
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...needed].sort());
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.features.app_home.home_tab_enabled).toBe(true);
    // the events the listeners read are all subscribed
    for (const e of ["app_mention", "app_home_opened", "message.im", "message.channels"]) expect(events).toContain(e);
  });
});

async function canListen(port: number): Promise<boolean> {
  const s = createServer();
  const ok = await new Promise<boolean>((r) => {
    s.once("error", () => r(false));
    s.listen(port, "127.0.0.1", () => r(true));
  });
  if (ok) await new Promise<void>((r) => s.close(() => r()));
  return ok;
}
