import { describe, expect, it } from "vitest";
import type { GatePayload } from "../src/graph/state.js";
import type { MetricsSummary } from "../src/core/metrics.js";
import {
  ACTION, GateButtonValue, buildApprovalCard, buildClarifyMessage, buildDecidedCard, buildExpiredCard, buildExpiryWarning,
  buildHomeView, buildPlanMessage, buildProgressMessage, buildReportMessage, buildRollbackAlert, formatApprover, mentionIds,
  progressLines, type CardView,
} from "../src/slack/blocks.js";
import { chartPoints, renderChartPng } from "../src/core/chart.js";
import { deliveryId } from "../src/slack/listeners/dedupe.js";

const metrics = (p95: number, hit: number | null): MetricsSummary => ({
  at: "2026-11-26T14:00:00Z", windowMinutes: 10, samples: 10, p95Ms: p95, errorRate: 0.002, hitRatio: hit,
  requestsPerSecond: 150, originRequestsPerSecond: hit === null ? 150 : 30, monthlyCostUsd: 1100,
});

const gate = (over: Partial<GatePayload> = {}): GatePayload => ({
  run: "run-20261126-abc123", workflow: "add-caching-layer", deployment: "prod", step: "EnableCachingGradually", stage: 0, kind: "traffic",
  action: "Route 10% of prod traffic through the redis cache", why: "Stage 1 of 3", risk: "Automatic rollback on errors > 2%",
  change: { config: [{ key: "Cache__Enabled", before: null, after: "true" }], resources: [{ kind: "redis", nodeType: "cache.t4g.small" }], traffic: { from: 0, to: 10 } },
  metricsNow: metrics(300, null), approvers: ["U0ALICE42"], requestedBy: "U0CAROL42", askedAt: "2026-11-26T14:00:00Z",
  ...over,
});

const card = (over: Partial<GatePayload> = {}): CardView => ({
  gate: gate(over), interrupt: "int-1", planHash: "0123456789abcdef", expiresAt: "2026-11-26T15:00:00Z",
  approvers: [formatApprover("U0ALICE42"), formatApprover("@oncall", new Map([["oncall", "S0ONCALL"]]))], twoPersonRule: over.kind === "delete",
});

type Block = { type: string; elements?: { action_id?: string; style?: string; value?: string; confirm?: unknown }[] };
const buttons = (blocks: unknown[]) => (blocks as Block[]).flatMap((b) => (b.type === "actions" ? (b.elements ?? []) : []));

describe("Block Kit builders (pure, no Slack)", () => {
  it("an approval card shows what, why, risk, the exact change, metrics, approvers and expiry, with Approve (primary) and Reject (danger)", () => {
    const m = buildApprovalCard(card());
    const all = JSON.stringify(m.blocks);
    expect(m.text).toBe("Approval needed on prod: EnableCachingGradually (traffic). Route 10% of prod traffic through the redis cache");
    for (const part of ["What will happen", "Why:", "Risk:", "+ Cache__Enabled: (unset) -&gt; true", "nodeType: cache.t4g.small", "0% → *10%*", "Metrics now:* p95 300 ms", "<@U0ALICE42>", "<!subteam^S0ONCALL|@oncall>", "expires* <!date^"]) {
      expect(all).toContain(part);
    }
    const [approve, reject] = buttons(m.blocks);
    expect(approve).toMatchObject({ action_id: ACTION.approve, style: "primary" });
    expect(approve!.confirm).toBeUndefined();
    expect(reject).toMatchObject({ action_id: ACTION.reject, style: "danger" });
    const value = GateButtonValue.parse(JSON.parse(approve!.value!));
    expect(value).toEqual({ r: "run-20261126-abc123", i: "int-1", h: "0123456789abcdef" });
    expect(approve!.value!.length).toBeLessThanOrEqual(2000);
  });

  it("a delete card asks for confirmation and names the two-person rule", () => {
    const m = buildApprovalCard(card({ kind: "delete", step: "CleanupAfterRollback", stage: null, change: { config: [], resources: [{ id: "cache-1", action: "delete" }], traffic: null } }));
    const [approve] = buttons(m.blocks);
    expect(approve!.confirm).toMatchObject({ title: { text: "Delete for good?" }, style: "danger" });
    expect(JSON.stringify(m.blocks)).toMatch(/two-person rule: not <@U0CAROL42>/);
  });

  it("a decided card has no buttons and says who decided when; an expired card offers only Request again", () => {
    const d = buildDecidedCard(card(), { decision: "approve", by: "U0ALICE42", at: "2026-11-26T14:02:10Z" });
    expect(buttons(d.blocks)).toEqual([]);
    expect(d.text).toBe("EnableCachingGradually on prod: approved by U0ALICE42 at 14:02 UTC");
    expect(JSON.stringify(d.blocks)).toContain("Approved by <@U0ALICE42> at <!date^");
    const r = buildDecidedCard(card(), { decision: "reject", by: "alice", at: "2026-11-26T14:02:10Z" });
    expect(r.text).toMatch(/rejected by alice/);
    const e = buildExpiredCard(card(), "2026-11-26T15:00:00Z");
    expect(buttons(e.blocks).map((b) => b.action_id)).toEqual([ACTION.requestAgain]);
    expect(buildExpiryWarning(card(), "2026-11-26T14:48:00Z").text).toBe("Approval for EnableCachingGradually on prod expires in 12 min");
  });

  it("user text is escaped: a request cannot smuggle mentions or links into the bot's messages", () => {
    const m = buildClarifyMessage({ question: "Which deployment? <!channel> <https://evil>", request: "x", deployments: [] });
    expect(JSON.stringify(m.blocks)).not.toContain("<!channel>");
    expect(JSON.stringify(m.blocks)).toContain("&lt;!channel&gt;");
    expect(mentionIds("already approved by U0ALICE42 at 2026-11-26T14:00:00.000Z")).toMatch(/^already approved by <@U0ALICE42> at <!date\^\d+\^/);
    expect(formatApprover("alice")).toBe("alice");
    expect(formatApprover("S0ONCALL")).toBe("<!subteam^S0ONCALL>");
    expect(formatApprover("@unknown-handle")).toBe("@unknown-handle");
  });

  it("progress marks: done, running, waiting (with stage), pending; rollback steps appended", () => {
    const planned = [{ name: "A" }, { name: "B" }, { name: "Roll" }, { name: "C" }];
    const lines = progressLines(planned, [{ name: "A", stage: null, status: "done" }, { name: "B", stage: 10, status: "done" }], null, { step: "B", stage: 50 });
    expect(lines.map((l) => [l.name, l.mark, l.detail])).toEqual([["A", "done", ""], ["B", "waiting", "10% · waiting for approval (50%)"], ["Roll", "pending", ""], ["C", "pending", ""]]);
    const running = progressLines([{ name: "A" }], [{ name: "Rollback", stage: null, status: "failed" }], { step: "A", stage: null }, null);
    expect(running.map((l) => l.mark)).toEqual(["running", "failed"]);
    const msg = buildProgressMessage({ run: "r1", workflow: "w", deployment: "prod", status: "waiting", lines, outcome: null });
    expect(msg.text).toBe("Run r1 (w on prod): waiting, 1/4 steps done");
    expect(JSON.stringify(msg.blocks)).toContain(":raised_hand: B — 10% · waiting for approval (50%)");
  });

  it("plan, rollback alert, report and home view carry fallback text and the essentials", () => {
    const plan = buildPlanMessage({ workflow: "add-caching-layer", title: "Add caching layer", deployment: "prod", params: {}, steps: [{ name: "A", gated: false }, { name: "B", gated: true }], requestedBy: "U0CAROL42", cost: { addedMonthlyUsd: 47.45, savingsMonthlyUsd: 310.15, savingsOf: "origin", netMonthlyUsd: -262.7 } });
    expect(plan.text).toBe("Plan: add-caching-layer on prod, 2 steps, 1 gated, -$262.70/month net");
    expect(JSON.stringify(plan.blocks)).toContain("B  :lock: _approval_");
    const alert = buildRollbackAlert({ run: "r1", deployment: "prod", reason: "p95 480 ms > baseline x 1.5", mentions: ["<@U0CAROL42>", "<@U0ALICE42>"] });
    expect(alert.text).toBe("AUTOMATIC ROLLBACK on prod (run r1): p95 480 ms &gt; baseline x 1.5"); // Slack shows &gt; as >
    expect(JSON.stringify(alert.blocks)).toContain("<@U0CAROL42> <@U0ALICE42>");
    const report = buildReportMessage({ run: "r1", workflow: "w", deployment: "prod", status: "done", outcome: "all steps completed", before: metrics(300, null), after: metrics(120, 0.85), decisions: [{ step: "B", decision: "approve", by: "U0ALICE42", at: "2026-11-26T14:02:00Z" }], requestedBy: "U0CAROL42" });
    expect(report.text).toBe("Report for run r1 (w on prod): done: all steps completed");
    expect(JSON.stringify(report.blocks)).toMatch(/After:\* p95 120 ms/);
    const home = buildHomeView({ user: "U1", runs: [], approvals: [{ run: "r1", deployment: "prod", step: "B", kind: "traffic", expiresAt: null, channel: "C1" }] });
    expect(home.type).toBe("home");
    expect(JSON.stringify(home.blocks)).toMatch(/Waiting for your approval\* \(1\).*\*B\* \(traffic\) on \*prod\*.* in <#C1>/);
  });
});

describe("before/after chart", () => {
  it("compares the metrics both sides have and renders a PNG with vega-lite + resvg", async () => {
    const points = chartPoints(metrics(300, null), metrics(120, 0.85));
    expect(points.filter((p) => p.metric === "p95 latency (ms)")).toEqual([
      { metric: "p95 latency (ms)", phase: "before", value: 300 },
      { metric: "p95 latency (ms)", phase: "after", value: 120 },
    ]);
    expect(chartPoints(null, null)).toEqual([]);
    const png = await renderChartPng("caching on prod", metrics(300, null), metrics(120, 0.85));
    expect(png!.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png!.readUInt32BE(16)).toBeGreaterThan(400); // width from the IHDR chunk: five panels side by side
    expect(await renderChartPng("nothing", null, null)).toBeNull();
  });
});

describe("delivery ids (what dedupe keys on)", () => {
  it("the same for a retry or replay, different for a new click", () => {
    expect(deliveryId({ event_id: "Ev1", type: "event_callback" })).toBe("event:Ev1");
    const click = (ts: string) => ({ type: "block_actions", user: { id: "U1" }, actions: [{ action_id: "honua_approve", action_ts: ts }] });
    expect(deliveryId(click("1.1"))).toBe(deliveryId(click("1.1")));
    expect(deliveryId(click("1.1"))).not.toBe(deliveryId(click("1.2")));
    expect(deliveryId({ command: "/honua", trigger_id: "t1" })).toBe("command:t1");
    expect(deliveryId({ type: "view_submission" })).toBeUndefined();
  });
});
