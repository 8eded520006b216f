import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { webApi } from "@slack/bolt";
import { DEPLOYMENT_NAME_MAX, loadConfig, parseConfig } from "../src/config.js";
import type { GatePayload } from "../src/graph/state.js";
import type { MetricsSummary } from "../src/core/metrics.js";
import type { Clarify } from "../src/planner/plan.js";
import {
  buildAnswer, buildApprovalCard, buildClarifyMessage, buildDecidedCard, buildError, buildExpiredCard, buildExpiryNotice, buildExpiryWarning,
  buildHelpMessage, buildHomeView, buildNotice, buildPlanMessage, buildProgressMessage, buildReportMessage, buildRequestedAgainCard,
  buildRollbackAlert, escapeText, formatApprover, progressLines, requestEcho, type CardView, type SlackMessage,
} from "../src/slack/blocks.js";
import { clip, codePoints, fitList } from "../src/slack/limits.js";
import { startServer } from "../src/slack/server.js";
import { tempHome } from "./helpers.js";
import { SlackFake, slackTestEnv, eventBody, slackPost, JSON_TYPE } from "./fixtures/slack-fake.js";
import { messageProblems, refusal, viewProblems } from "./fixtures/slack-limits.js";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

// ------------------------------------------------------------------------------------- fixtures

const EMOJI = "😀";
const FAMILY = "👨‍👩‍👧";
const FLAG = "🇫🇷";
const ACCENT = "e\u0301";
const TOKENS = ["<@U0ALICE42>", "<!date^1764165600^{date_short_pretty} {time}|2026-11-26 14:00 UTC>", "<!subteam^S0ONCALL|@oncall>", "<https://grafana.example.org/d/abc|the dashboard>", "<#C0OPS>"];
const ENTITIES = ["&amp;", "&lt;", "&gt;"];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SLACK_TOKEN = /<(?:[@#!][^<>]*|(?:https?|mailto):[^<>]*)>/g;
const graphemes = (s: string): string[] => [...new Intl.Segmenter("en", { granularity: "grapheme" }).segment(s)].map((g) => g.segment);

/** Problems with mrkdwn as Slack would render it: half an emoji, half a token, half an entity. */
function broken(s: string): string[] {
  const out: string[] = [];
  if (LONE_SURROGATE.test(s)) out.push(`a lone surrogate in ${JSON.stringify(s.slice(-40))}`);
  const rest = s.replace(SLACK_TOKEN, "");
  if (/[<>]/.test(rest)) out.push(`a cut token in ${JSON.stringify(s.slice(-60))}`);
  if (/&(?!(?:amp|lt|gt);)/.test(rest)) out.push(`a cut entity in ${JSON.stringify(s.slice(-60))}`);
  return out;
}

/** Every mrkdwn text in some blocks, and the fallback text. */
function mrkdwnTexts(m: { text?: string; blocks?: unknown }): string[] {
  const out: string[] = m.text === undefined ? [] : [m.text];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (o.type === "mrkdwn" && typeof o.text === "string") out.push(o.text);
      Object.values(o).forEach(walk);
    }
  };
  walk(m.blocks);
  return out;
}

/** The one assertion every builder's output goes through: what the fake Web API checks, plus nothing cut in half. */
function expectFits(m: { text: string; blocks?: unknown[] }, label = "message"): void {
  expect(messageProblems(m), label).toEqual([]);
  for (const t of mrkdwnTexts(m)) expect(broken(t), label).toEqual([]);
  expect(LONE_SURROGATE.test(JSON.stringify(m)), `${label}: lone surrogate`).toBe(false);
}

const metrics = (p95: number): MetricsSummary => ({
  at: "2026-11-26T14:00:00Z", windowMinutes: 10, samples: 10, p95Ms: p95, errorRate: 0.002, hitRatio: 0.8,
  requestsPerSecond: 150, originRequestsPerSecond: 30, monthlyCostUsd: 1100,
});

const gate = (over: Partial<GatePayload> = {}): GatePayload => ({
  run: "run-20261126-abc123", workflow: "add-caching-layer", deployment: "prod", step: "EnableCachingGradually", stage: 0, kind: "traffic",
  action: "Route 10% of prod traffic through the redis cache", why: "Stage 1 of 3", risk: "Automatic rollback on errors > 2%",
  change: { config: [{ key: "Cache__Enabled", before: null, after: "true" }], resources: [{ kind: "redis", nodeType: "cache.t4g.small" }], traffic: { from: 0, to: 10 } },
  metricsNow: metrics(300), approvers: ["U0ALICE42"], requestedBy: "U0CAROL42", askedAt: "2026-11-26T14:00:00Z",
  ...over,
});

const card = (over: Partial<GatePayload> = {}, view: Partial<CardView> = {}): CardView => ({
  gate: gate(over), interrupt: "2b7e1516-28ae-4d2a-a6d2-abf7158809cf", planHash: "0123456789abcdef0123456789abcdef", expiresAt: "2026-11-26T15:00:00Z",
  approvers: [formatApprover("U0ALICE42"), formatApprover("@oncall", new Map([["oncall", "S0ONCALL"]]))], twoPersonRule: over.kind === "delete",
  ...view,
});

/** Every builder, given the same strings: what a long or odd deployment name, reason or request does to each. */
function everyMessage(o: { deployment: string; text: string; approvers: string[]; user: string }): [string, { text: string; blocks?: unknown[] }][] {
  const c = card({ deployment: o.deployment, action: o.text, why: o.text, risk: o.text, requestedBy: o.user }, { approvers: o.approvers });
  const del = card({ deployment: o.deployment, action: o.text, kind: "delete", stage: null, change: { config: [], resources: [{ id: o.text }], traffic: null } }, { approvers: o.approvers, twoPersonRule: true });
  const lines = progressLines([{ name: "A" }, { name: "B" }], [{ name: "A", stage: 10, status: "done" }], null, { step: "B", stage: 50 });
  return [
    ["plan", buildPlanMessage({ workflow: "add-caching-layer", title: o.text, deployment: o.deployment, params: { request: o.text, [o.text]: o.text }, steps: [{ name: "A", gated: true }], requestedBy: o.user, cost: null, unavailable: o.text })],
    ["progress", buildProgressMessage({ run: "run-20261126-abc123", workflow: "add-caching-layer", deployment: o.deployment, status: "failed", lines: [...lines, { name: "Rollback", mark: "failed", detail: o.text }], outcome: o.text })],
    ["approval card", buildApprovalCard(c)],
    ["delete card", buildApprovalCard(del)],
    ["decided card", buildDecidedCard(c, { decision: "approve", by: o.user, at: "2026-11-26T14:02:00Z" })],
    ["expired card", buildExpiredCard(c, "2026-11-26T15:00:00Z")],
    ["requested again", buildRequestedAgainCard(c, o.user, "2026-11-26T15:01:00Z")],
    ["expiry warning", buildExpiryWarning(c, "2026-11-26T14:48:00Z")],
    ["expiry notice", buildExpiryNotice(c)],
    ["rollback alert", buildRollbackAlert({ run: "run-20261126-abc123", deployment: o.deployment, reason: o.text, mentions: o.approvers })],
    ["report", buildReportMessage({ run: "run-20261126-abc123", workflow: "add-caching-layer", deployment: o.deployment, status: "rolled-back", outcome: o.text, before: metrics(300), after: metrics(480), decisions: [{ step: "B", decision: "approve", by: o.user, at: "2026-11-26T14:02:00Z" }], requestedBy: o.user })],
    ["clarify", buildClarifyMessage({ question: o.text, request: o.text, deployments: [o.deployment, "prod", "staging"] })],
    ["help", buildHelpMessage(`you wrote: ${escapeText(o.text)}`)],
    ["notice", buildNotice(`${TOKENS[0]} said ${escapeText(o.text)} at ${TOKENS[1]}`)],
    ["error", buildError(o.text)],
    ["engine error", buildError(`already approved by U0ALICE42 at 2026-11-26T14:00:00Z: ${o.text}`, true)],
    ["answer", buildAnswer(o.text)],
    ["request echo", { text: requestEcho(o.user, o.text) }],
  ];
}

const home = (o: { deployment: string; text: string; n: number }) =>
  buildHomeView({
    user: "U0BOB4242",
    runs: Array.from({ length: o.n }, (_, i) => ({ run: `run-20261126-${i}`, workflow: "add-caching-layer", deployment: o.deployment, status: "waiting", requestedBy: o.text, startedAt: "2026-11-26T14:00:00Z", channel: "C0OPS" })),
    approvals: Array.from({ length: o.n }, (_, i) => ({ run: `run-20261126-${i}`, deployment: o.deployment, step: "ProvisionCacheInfrastructure", kind: "provision", expiresAt: "2026-11-27T14:00:00Z", channel: "C0OPS" })),
  });

// ---------------------------------------------------------------------------------------- clip

describe("clip: the one way text is shortened for Slack", () => {
  it("counts code points, keeps short text as it is and marks a cut with …", () => {
    expect(clip("abcdef", 6)).toBe("abcdef");
    expect(clip("abcdef", 4)).toBe("abc…");
    expect(clip(EMOJI.repeat(10), 10)).toBe(EMOJI.repeat(10)); // 20 UTF-16 units, 10 characters
    expect(clip(EMOJI.repeat(10), 5)).toBe(`${EMOJI.repeat(4)}…`);
    expect(codePoints(clip(EMOJI.repeat(10), 5))).toBe(5);
    expect(clip("word word word", 11)).toBe("word word…"); // no space left before the mark
  });

  it("never cuts inside a surrogate pair, an emoji sequence, a combining mark, a Slack token or an entity, at any cut position", () => {
    const pieces = ["ab ", EMOJI, FAMILY, FLAG, ACCENT, ...TOKENS, ...ENTITIES, " x"];
    const s = pieces.join("");
    const whole = graphemes(s);
    for (let max = 1; max <= codePoints(s) + 1; max++) {
      const out = clip(s, max);
      expect(codePoints(out), `max ${max}`).toBeLessThanOrEqual(max);
      if (out === s) continue;
      expect(out.endsWith("…")).toBe(true);
      const kept = out.slice(0, -1);
      expect(s.startsWith(kept), `max ${max}: ${out}`).toBe(true);
      expect(broken(kept), `max ${max}`).toEqual([]);
      // whole graphemes only: the kept part is a run of the input's own graphemes
      expect(graphemes(kept), `max ${max}`).toEqual(whole.slice(0, graphemes(kept).length));
    }
  });

  it("a token or entity that straddles the cut is left out whole", () => {
    const date = TOKENS[1]!;
    expect(clip(`${"x".repeat(10)}${date} tail`, 20)).toBe(`${"x".repeat(10)}…`);
    expect(clip(`${"x".repeat(10)}${date} tail`, 10 + codePoints(date) + 1)).toBe(`${"x".repeat(10)}${date}…`);
    expect(clip("Tom &amp; Jerry", 7)).toBe("Tom…");
    expect(clip("Tom &amp; Jerry", 10)).toBe("Tom &amp;…");
    expect(clip("x".repeat(5) + "<@U0ALICE42>", 8)).toBe("xxxxx…");
  });

  it("fitList counts what does not fit instead of cutting a line or an item in half", () => {
    const items = Array.from({ length: 100 }, (_, i) => `<@U0USER${String(i).padStart(4, "0")}>`);
    const out = fitList(items, 300, { sep: ", " });
    expect(codePoints(out)).toBeLessThanOrEqual(300);
    expect(out).toMatch(/, …and \d+ more$/);
    expect(broken(out)).toEqual([]);
    const shown = out.split(", ").length - 1;
    expect(out).toContain(`…and ${100 - shown} more`);
    expect(fitList(["a", "b"], 300)).toBe("a\nb");
    expect(fitList([], 300)).toBe("");
  });

  it("is quick on a 50,000-character text", () => {
    const long = `${EMOJI}${"&amp;".repeat(10_000)}`;
    const t = performance.now();
    for (let i = 0; i < 20; i++) clip(long, 3000);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});

// ------------------------------------------------------------------------------------- checker

describe("the limits checker (shared by the fake Web API and these tests)", () => {
  const button = (over: Record<string, unknown>) => ({ blocks: [{ type: "actions", elements: [{ type: "button", action_id: "a", text: { type: "plain_text", text: "ok" }, value: "v", ...over }] }] });

  it("finds every limit Slack enforces, with a pointer to the element", () => {
    expect(messageProblems(button({ text: { type: "plain_text", text: "x".repeat(76) } }))).toEqual(["must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"]);
    expect(messageProblems(button({ text: { type: "plain_text", text: EMOJI.repeat(75) } }))).toEqual([]); // characters, not UTF-16 units
    expect(messageProblems(button({ action_id: "x".repeat(256) }))).toEqual(["must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"]);
    expect(messageProblems(button({ value: "x".repeat(2001) }))).toHaveLength(1);
    expect(messageProblems(button({ confirm: { title: { type: "plain_text", text: "x".repeat(101) }, text: { type: "mrkdwn", text: "x".repeat(301) }, confirm: { type: "plain_text", text: "ok" }, deny: { type: "plain_text", text: "no" } } }))).toHaveLength(2);
    expect(messageProblems({ text: "x".repeat(4001) })).toEqual(["must be less than 4001 characters [json-pointer:/text]"]);
    expect(messageProblems({ blocks: [{ type: "header", text: { type: "plain_text", text: "x".repeat(151) } }] })).toHaveLength(1);
    expect(messageProblems({ blocks: [{ type: "header", text: { type: "mrkdwn", text: "x" } }] })).toHaveLength(1);
    expect(messageProblems({ blocks: [{ type: "section", text: { type: "mrkdwn", text: "x".repeat(3001) } }] })).toHaveLength(1);
    expect(messageProblems({ blocks: [{ type: "section", text: { type: "mrkdwn", text: "" } }] })).toHaveLength(1);
    expect(messageProblems({ blocks: [{ type: "context", elements: Array.from({ length: 11 }, () => ({ type: "mrkdwn", text: "x" })) }] })).toHaveLength(1);
    expect(messageProblems({ blocks: Array.from({ length: 51 }, () => ({ type: "divider" })) })).toEqual(["must provide no more than 50 items [json-pointer:/blocks]"]);
    expect(messageProblems({ blocks: [{ type: "divider", block_id: "x".repeat(256) }] })).toHaveLength(1);
    expect(messageProblems({ blocks: [{ type: "divider", block_id: "a" }, { type: "divider", block_id: "a" }] })).toHaveLength(1);
    expect(viewProblems({ type: "home", blocks: Array.from({ length: 100 }, () => ({ type: "divider" })) })).toEqual([]);
    expect(viewProblems({ type: "home", blocks: Array.from({ length: 101 }, () => ({ type: "divider" })) })).toHaveLength(1);
    expect(refusal("chat.postMessage", { text: "x".repeat(4001) })?.error).toBe("msg_too_long");
    expect(refusal("chat.update", { text: "ok", ...button({ text: { type: "plain_text", text: "x".repeat(76) } }) })?.error).toBe("invalid_blocks");
    expect(refusal("views.publish", { view: { type: "home", blocks: [{ type: "section" }] } })?.error).toBe("invalid_arguments");
  });

  it("the fake Web API refuses such a call as Slack does, records it and fails the test unless the test takes it", async () => {
    const fake = await SlackFake.start();
    const client = new webApi.WebClient("xoxb-test-token", { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } });
    const err = await client.chat.postMessage({ channel: "C1", text: "card", blocks: [{ type: "actions", elements: [{ type: "button", action_id: "a", text: { type: "plain_text", text: "x".repeat(80) } }] }] }).catch((e: unknown) => e);
    expect((err as { data?: { error?: string; errors?: string[] } }).data).toMatchObject({ error: "invalid_blocks", errors: ["must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"] });
    expect(fake.messages.size).toBe(0);
    await expect(client.chat.postMessage({ channel: "C1", text: "y".repeat(4001) })).rejects.toThrow(/msg_too_long/);
    await expect(client.views.publish({ user_id: "U1", view: { type: "home", blocks: [{ type: "header", text: { type: "plain_text", text: "h".repeat(151) } }] } })).rejects.toThrow(/invalid_arguments/);
    expect(fake.violations.map((v) => [v.method, v.error])).toEqual([["chat.postMessage", "invalid_blocks"], ["chat.postMessage", "msg_too_long"], ["views.publish", "invalid_arguments"]]);
    await expect(fake.close()).rejects.toThrow(/Slack would have refused 3 call\(s\)/);
    const again = await SlackFake.start();
    const c2 = new webApi.WebClient("xoxb-test-token", { slackApiUrl: again.apiUrl, retryConfig: { retries: 0 } });
    await c2.chat.postMessage({ channel: "C1", text: "z".repeat(5000) }).catch(() => undefined);
    expect(again.takeViolations()).toHaveLength(1);
    await again.close();
  });
});

// ---------------------------------------------------------------------------- extreme inputs

describe("every message stays within Slack's limits on extreme inputs", () => {
  const approvers200 = Array.from({ length: 200 }, (_, i) => formatApprover(`U0APPR${String(i).padStart(4, "0")}`));

  for (const length of [DEPLOYMENT_NAME_MAX, 80, 250]) {
    it(`a deployment name of ${length} characters${length > DEPLOYMENT_NAME_MAX ? " (refused by the config; the messages still fit)" : " (the longest the config allows)"}`, () => {
      const deployment = `eu-${"x".repeat(length - 3)}`;
      for (const [label, m] of everyMessage({ deployment, text: "add Redis caching", approvers: approvers200, user: "U0CAROL42" })) expectFits(m, label);
      expect(viewProblems(home({ deployment, text: "U0CAROL42", n: 30 }))).toEqual([]);
      const pick = buildClarifyMessage({ question: "Which deployment?", request: "add redis caching", deployments: [deployment, `${deployment}-2`, "prod"] });
      const choices = (pick.blocks as { type: string; elements?: { action_id: string; text: { text: string } }[] }[]).filter((b) => b.type === "actions").flatMap((b) => b.elements ?? []);
      expectFits(pick);
      if (length <= DEPLOYMENT_NAME_MAX) {
        expect(choices.map((e) => e.text.text)).toEqual([deployment, `${deployment}-2`, "prod"]);
        expect(choices[0]!.action_id).toBe(`honua_pick_deployment:${deployment}`);
      } else if (length <= 100) {
        expect(choices.map((e) => e.text.text)).toEqual([`${deployment.slice(0, 74)}…`, `${deployment.slice(0, 74)}…`, "prod"]);
        expect(new Set(choices.map((e) => e.action_id)).size).toBe(3);
      } else {
        // a name no button value could carry back is counted, not offered
        expect(choices.map((e) => e.text.text)).toEqual(["prod"]);
        expect(JSON.stringify(pick.blocks)).toContain("…and 2 more deployments: name it in your request");
      }
    });
  }

  it("200 approvers: the cards, warnings and alerts mention as many as fit and count the rest", () => {
    const m = buildExpiryWarning(card({}, { approvers: approvers200 }), "2026-11-26T14:48:00Z");
    expectFits(m);
    expect(JSON.stringify(m.blocks)).toMatch(/…and \d+ more the approval request for \*EnableCachingGradually\*/);
    const alert = buildRollbackAlert({ run: "run-1", deployment: "prod", reason: "p95 480 ms > baseline x 1.5", mentions: approvers200 });
    expectFits(alert);
    expect(JSON.stringify(alert.blocks)).toContain("*Why:* p95 480 ms &gt; baseline x 1.5");
  });

  it("50,000-character reasons, errors, requests, questions and actions", () => {
    const huge = "rollback because ".repeat(3000).slice(0, 50_000);
    expect(huge.length).toBe(50_000);
    for (const [label, m] of everyMessage({ deployment: "prod", text: huge, approvers: approvers200, user: huge })) {
      expectFits(m, label);
      expect(codePoints(m.text), label).toBeLessThanOrEqual(4000);
    }
    expect(viewProblems(home({ deployment: "prod", text: huge, n: 500 }))).toEqual([]);
    const alert = buildRollbackAlert({ run: "run-1", deployment: "prod", reason: huge, mentions: ["<@U0CAROL42>"] });
    expect(JSON.stringify(alert.blocks)).toContain("Anything left behind is deleted only behind"); // what follows the reason is still there
  });

  it("emoji, surrogate pairs, tokens and entities at every position around each cut", () => {
    // A text made of one unit repeated, shifted by 0..unit-length characters, puts every builder's cut at every offset inside the unit.
    for (const unit of [EMOJI, FAMILY, FLAG, ACCENT, "<", ">", "&", `${EMOJI}${ACCENT}${FLAG}`]) {
      for (let k = 0; k <= codePoints(unit) + 1; k++) {
        const text = `${"x".repeat(k)}${`${unit}x`.repeat(Math.ceil(50_000 / (unit.length + 1)))}`;
        for (const [label, m] of everyMessage({ deployment: "prod", text, approvers: Array.from({ length: 300 }, () => formatApprover(`${unit}${k}`)), user: text })) {
          expectFits(m, `${label}: ${JSON.stringify(unit)} shifted by ${k}`);
        }
      }
    }
    for (const token of [...TOKENS, "U0ALICE42", "2026-11-26T14:00:00Z"]) {
      for (let k = 0; k <= codePoints(token) + 1; k++) {
        const many = `${"x".repeat(k)}${`${token} `.repeat(Math.ceil(50_000 / token.length))}`;
        const label = `${token} shifted by ${k}`;
        expectFits(buildNotice(many), label);
        expectFits(buildHelpMessage(many), label);
        expectFits(buildError(many, true), label); // ids and times become <@U…> and <!date^…> tokens
        expectFits(buildRollbackAlert({ run: "run-1", deployment: "prod", reason: many, mentions: Array.from({ length: 300 }, () => token.startsWith("<") ? token : `<@${token}>`) }), label);
        expectFits(buildExpiryNotice(card({}, { approvers: Array.from({ length: 300 }, () => `${"a".repeat(k)}${token.startsWith("<") ? token : escapeText(token)}`) })), label);
      }
    }
  });

  it("a card with a 40-key config diff and 30 resources still shows the action, the traffic share, the expiry and the plan hash first", () => {
    const config = Array.from({ length: 40 }, (_, i) => ({ key: `Honua__Services__RasterTiles__Caching__Redis__Setting${i}`, before: `old-value-${"o".repeat(40)}`, after: `new-value-${"n".repeat(40)}` }));
    const resources = Array.from({ length: 30 }, (_, i) => ({ kind: "elasticache-replication-group", id: `honua-prod-cache-${i}`, nodeType: "cache.r7g.large", engine: "redis 7.1", region: "eu-west-1" }));
    const c = card({ change: { config, resources, traffic: { from: 10, to: 50 } }, stage: 1 });
    for (const m of [buildApprovalCard(c), buildDecidedCard(c, { decision: "approve", by: "U0ALICE42", at: "2026-11-26T14:10:00Z" }), buildExpiredCard(c, "2026-11-26T15:00:00Z")]) {
      expectFits(m);
      const texts = (m.blocks as { text?: { text: string } }[]).map((b) => b.text?.text ?? "");
      const first = texts.findIndex((t) => t.includes("*What will happen:*"));
      expect(first).toBe(1);
      expect(texts[1]).toContain("*Traffic share:* 10% → *50%*");
      expect(texts[1]).toMatch(/\*expires\* <!date\^\d+\^/);
      expect(texts[1]).toContain("0123456789abcdef0123456789abcdef");
      const diff = texts.findIndex((t) => t.startsWith("*Config diff* (40 keys)"));
      const res = texts.findIndex((t) => t.startsWith("*Resources* (30)"));
      expect(diff).toBeGreaterThan(first);
      expect(res).toBeGreaterThan(diff);
      expect(texts[diff]).toMatch(/…and \d+ more```$/);
      expect(texts[res]).toMatch(/…and \d+ more$/);
    }
  });

  it("the fallback text of a long action or a big report stays within 4,000 characters", () => {
    const action = `Route traffic ${"→ next hop ".repeat(800)}`;
    expect(codePoints(buildApprovalCard(card({ action })).text)).toBeLessThanOrEqual(4000);
    const report = buildReportMessage({ run: "r1", workflow: "w", deployment: "prod", status: "done", outcome: "o".repeat(10_000), before: null, after: null, decisions: Array.from({ length: 300 }, (_, i) => ({ step: `Step${i}`, decision: "approve", by: "U0ALICE42", at: "2026-11-26T14:02:00Z" })), requestedBy: "U0CAROL42" });
    expectFits(report);
    expect(JSON.stringify(report.blocks)).toMatch(/…and \d+ more/);
  });
});

// ------------------------------------------------------------------------------------ property

/** A small seeded generator: the same inputs on every run, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const PIECES = ["a", "Redis ", "prod", " ", "\n", "\t", EMOJI, FAMILY, FLAG, ACCENT, "ß", "中文", "<", ">", "&", "\"", "\\", "`", "```", "*", "_", "~", "|", "^", "@here", "<!channel>", ...TOKENS, ...ENTITIES, "\u200b", "\u0000"];
  const fresh = (target: number): string => {
    let out = "";
    while (out.length < target) out += next() < 0.6 ? pick(PIECES) : "x".repeat(1 + int(30));
    return out;
  };
  const SIZES = [0, 1, 5, 40, 300, 2000, 2999, 3001, 4100, 12_000, 50_000];
  // Made once, drawn from many times: building 50,000-character texts anew for every field would be most of the test's time.
  const pool = SIZES.map((n) => Array.from({ length: 12 }, () => fresh(n + int(20))));
  /** Random text (emoji, tokens, entities, Slack markup, long runs) of up to about `max` UTF-16 units. */
  const text = (max = 50_000): string => pick(pool[int(SIZES.filter((n) => n <= max).length)]!);
  return { next, int, pick, text };
}

describe("property: random inputs through every builder stay within Slack's limits", () => {
  it("200 random cases through every message builder and the App Home view", () => {
    const r = random(20261126);
    for (let n = 0; n < 200; n++) {
      const deployment = r.next() < 0.5 ? r.text() : `d-${"x".repeat(r.pick([10, 60, 61, 77, 250, 1000]))}`;
      const text = r.text();
      const user = r.pick(["U0CAROL42", "carol", r.text()]);
      const approvers = Array.from({ length: r.pick([0, 1, 3, 30, 200, 400]) }, () => formatApprover(r.pick(["U0ALICE42", "S0ONCALL", "@oncall", "alice", r.text(300)]), new Map([["oncall", "S0ONCALL"]])));
      for (const [label, m] of everyMessage({ deployment, text, approvers, user })) expectFits(m, `case ${n}: ${label}`);
      const config = Array.from({ length: r.pick([0, 1, 40, 200]) }, () => ({ key: r.text(200), before: r.next() < 0.3 ? null : r.text(500), after: r.next() < 0.3 ? null : r.text(500) }));
      const resources = Array.from({ length: r.pick([0, 1, 30, 300]) }, () => ({ [r.text(50) || "k"]: r.text(400), n: r.int(1000), ok: r.next() < 0.5, none: null }));
      const traffic = r.next() < 0.7 ? { from: r.int(101), to: r.int(101) } : null;
      const kind = r.pick(["provision", "traffic", "delete", "inconclusive", "rollback"] as const);
      const c = card({ deployment, action: r.text(), why: r.text(), risk: r.text(), kind, change: { config, resources, traffic }, requestedBy: user }, { approvers, expiresAt: r.next() < 0.8 ? "2026-11-26T15:00:00Z" : null, twoPersonRule: r.next() < 0.5 });
      const cards: [string, SlackMessage][] = [
        ["approval", buildApprovalCard(c)], ["decided", buildDecidedCard(c, { decision: "reject", by: user, at: "2026-11-26T14:05:00Z" })],
        ["expired", buildExpiredCard(c, "2026-11-26T15:00:00Z")], ["again", buildRequestedAgainCard(c, user, "2026-11-26T15:05:00Z")],
      ];
      for (const [label, m] of cards) {
        expectFits(m, `case ${n}: ${label} card`);
        const essentials = (m.blocks[1] as { text: { text: string } }).text.text;
        expect(essentials.startsWith("*What will happen:*"), `case ${n}`).toBe(true);
        if (traffic) expect(essentials, `case ${n}`).toContain(`*Traffic share:* ${traffic.from}% → *${traffic.to}%*`);
        expect(essentials, `case ${n}`).toContain(c.planHash);
      }
      const steps = Array.from({ length: r.pick([1, 10, 300]) }, (_, i) => ({ name: `Step${i}${r.next() < 0.1 ? r.text(100) : ""}`, gated: r.next() < 0.3 }));
      expectFits(buildPlanMessage({ workflow: "add-caching-layer", title: r.text(), deployment, params: Object.fromEntries(Array.from({ length: r.int(50) }, () => [r.text(80), r.text()])), steps, requestedBy: user, cost: { addedMonthlyUsd: 1, savingsMonthlyUsd: 2, savingsOf: "origin", netMonthlyUsd: -1 } }), `case ${n}: plan`);
      const lines = progressLines(steps, steps.filter(() => r.next() < 0.5).map((s) => ({ name: s.name, stage: r.next() < 0.5 ? r.int(100) : null, status: r.pick(["done", "failed"] as const) })), null, null);
      expectFits(buildProgressMessage({ run: "run-20261126-abc123", workflow: "add-caching-layer", deployment, status: "running", lines, outcome: r.next() < 0.5 ? r.text() : null }), `case ${n}: progress`);
      expectFits(buildClarifyMessage({ question: r.text(), request: r.text(), deployments: Array.from({ length: r.pick([0, 1, 26, 130]) }, () => r.text(300) || "d") }), `case ${n}: clarify`);
      expect(viewProblems(home({ deployment, text: user, n: r.pick([0, 1, 50, 400]) })), `case ${n}: home`).toEqual([]);
    }
  });
});

// ----------------------------------------------------------------------------- the config rule

describe("deployment names in the config", () => {
  it(`are refused over ${DEPLOYMENT_NAME_MAX} characters (and so are aliases), with every other problem listed too`, () => {
    const t = tempHome();
    try {
      const long = "x".repeat(80);
      const yaml = [
        "deployments:",
        `  ${long}:`,
        "    provider: k8s",
        "    approvers: [oncall]",
        `  ${"y".repeat(DEPLOYMENT_NAME_MAX)}:`,
        "    provider: sandbox",
        `    aliases: [${"z".repeat(DEPLOYMENT_NAME_MAX + 1)}]`,
        "    approvers: []",
        "  'eu prod':",
        "    provider: sandbox",
        "    approvers: [oncall]",
      ].join("\n");
      writeFileSync(join(t.home, "honua-agent.yaml"), yaml);
      let message = "";
      try {
        loadConfig({}, t.home);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toContain(`deployments.${long}: a deployment name is 80 characters; at most ${DEPLOYMENT_NAME_MAX} are allowed`);
      expect(message).toContain(`deployments.${long}.provider:`);
      expect(message).toMatch(new RegExp(`deployments\\.y{${DEPLOYMENT_NAME_MAX}}\\.aliases\\.0: an alias is ${DEPLOYMENT_NAME_MAX + 1} characters; at most ${DEPLOYMENT_NAME_MAX}`));
      expect(message).toMatch(/at least one approver/);
      expect(message).toContain("deployments.eu prod: deployment names are letters, digits, - and _");
      expect(message.split("\n  - ")).toHaveLength(6); // the header and five problems
    } finally {
      t.cleanup();
    }
  });

  it(`accept a name of exactly ${DEPLOYMENT_NAME_MAX} characters`, () => {
    const name = `eu-${"x".repeat(DEPLOYMENT_NAME_MAX - 3)}`;
    expect(Object.keys(parseConfig({ deployments: { [name]: { provider: "sandbox", aliases: ["y".repeat(DEPLOYMENT_NAME_MAX)], approvers: ["oncall"] } } }, "test").config.deployments)).toEqual([name]);
  });
});

// ------------------------------------------------------------------------------ through Slack

describe("through the real front: the fake Web API refuses what Slack refuses", () => {
  it(`a ${DEPLOYMENT_NAME_MAX}-character deployment with 200 approvers, a 50,000-character question, answer and error all reach Slack`, async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    const secret = "limits-test-signing-secret";
    const name = `eu-${"x".repeat(DEPLOYMENT_NAME_MAX - 3)}`;
    const approvers = ["U0ALICE42", ...Array.from({ length: 199 }, (_, i) => `U0APPR${String(i).padStart(4, "0")}`)];
    const config = parseConfig({ deployments: { [name]: { provider: "sandbox", approvers, seed: 16 }, staging: { provider: "sandbox", approvers: ["U0ALICE42"], seed: 17 } } }, "test");
    const huge = `${"why? ".repeat(9999)}${EMOJI}<@U0BOSS1234>`;
    let clarify = false;
    const clock = { t: Date.parse("2026-11-26T14:00:00Z") };
    const server = await startServer({
      env: slackTestEnv(t.home, fake.apiUrl, secret), cwd: t.home, config, now: () => new Date(clock.t), port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0,
      converse: async (_e, input) => {
        if (input.text === "boom") throw new Error(huge);
        return { text: huge };
      },
      plan: async (text) => {
        const { planRequest } = await import("../src/planner/index.js");
        if (clarify) return { clarify: huge, missing: ["deployment"] } satisfies Clarify;
        return planRequest(text, config.config, {});
      },
    });
    open.push(server);
    let seq = 0;
    const post = async (event: Record<string, unknown>) => {
      const ts = `1699999999.${String(++seq).padStart(6, "0")}`;
      expect((await slackPost(server.url, eventBody({ channel: "C0OPS", ts, event_ts: ts, ...event }), JSON_TYPE, { secret })).status).toBe(200);
      await server.idle();
      return ts;
    };
    const root = await post({ type: "app_mention", user: "U0CAROL42", text: `<@UHONUA> add Redis caching to ${name}` });
    const cards = fake.thread(root).filter((m) => JSON.stringify(m.blocks).includes("honua_approve"));
    expect(cards).toHaveLength(1);
    expect(JSON.stringify(cards[0]!.blocks)).toMatch(/\*Who may approve:\* <@U0ALICE42>, .*…and \d+ more/);
    await post({ type: "message", channel_type: "channel", user: "U0CAROL42", text: "why so?", thread_ts: root });
    await post({ type: "message", channel_type: "channel", user: "U0CAROL42", text: "boom", thread_ts: root });
    const said = fake.thread(root).slice(-2);
    expect(said.map((m) => codePoints(m.text) <= 4000)).toEqual([true, true]);
    expect(said[1]!.text).toMatch(/^Error: /);
    clarify = true;
    const q = await post({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add redis caching" });
    expect(fake.thread(q)[0]!.text.startsWith("why? why?")).toBe(true);
    expect(JSON.stringify(fake.thread(q)[0]!.blocks)).toContain(`"action_id":"honua_pick_deployment:${name}"`);
    await post({ type: "app_home_opened", user: "U0APPR0007", channel: "D1", tab: "home" });
    expect(fake.called("views.publish")).toHaveLength(1);
    expect(fake.violations).toEqual([]);
  });
});
