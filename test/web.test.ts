import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../src/core/errors.js";
import type { ChangeSection } from "../src/core/sections.js";
import { Engine } from "../src/engine.js";
import { SqlCallLog } from "../src/planner/calls.js";
import { renderSectionHtml } from "../src/tools/sections.js";
import { checkAccess, runLink, signPath, webSettings } from "../src/web/auth.js";
import { queryLogs, seriesChart } from "../src/web/charts.js";
import { runView, runsView } from "../src/web/data.js";
import { startWeb, type WebServer } from "../src/web/server.js";
import { parseConfig } from "../src/config.js";
import { startServer } from "../src/slack/server.js";
import { CACHING_PLAN, EPOCH, approveAll, engineSuite, freePort, openEngine, postgresTestDatabase, tempHome, testEnv } from "./helpers.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, eventBody, slackPost, slackTestEnv } from "./fixtures/slack-fake.js";

const CHROMIUM = "/usr/bin/chromium";
const unavailable = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (Debian package chromium)`;
// CI (.ci/run sets HONUA_AGENT_REQUIRE_TOOLS) installs chromium: there a missing one fails instead of skipping.
if (unavailable && process.env.HONUA_AGENT_REQUIRE_TOOLS) throw new Error(`required by CI but not usable here: ${unavailable}`);

const OUT = new URL("../test-output/web/", import.meta.url).pathname;
const SECRET = "s".repeat(16) + "3cr3t-for-the-viewer-tests-0123456789";
const TOKEN = "t".repeat(40);
/** The viewer's clock for link expiry: the sandbox epoch plus a day. */
const NOW = new Date(Date.parse(EPOCH) + 86_400_000);
const nowS = Math.floor(NOW.getTime() / 1000);
const HOSTILE = `add redis caching to prod <script>document.body.dataset.pwned="1"</script><img src=x onerror="document.body.dataset.pwned='2'">`;

/** One browser for the file (launched on first use): each test opens its own pages. */
let shared: Promise<Browser> | undefined;
const launch = (): Promise<Browser> => (shared ??= chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] }));
afterAll(async () => {
  await (await shared)?.close();
});

describe("change sections as HTML", () => {
  it("one renderer per kind, every value escaped", () => {
    const evil = "<script>x()</script>";
    const sections: ChangeSection[] = [
      { kind: "sql", title: "SQL", statements: [{ original: `CREATE INDEX i ON t (${evil})`, rewritten: "CREATE INDEX CONCURRENTLY i ON t (a)", lock: "SHARE UPDATE EXCLUSIVE on t", estimate: "~2 s", notes: [evil] }] },
      { kind: "mapping", title: "mapping", rows: [{ from: "a", to: evil, transform: null }] },
      { kind: "table", title: "placement", columns: ["rule", evil], rows: [[evil, 3, true, null]] },
      { kind: "textDiff", title: "rules", path: "rules/honua.yml", diff: `--- a\n+++ b\n@@ -1 +1 @@\n-old\n+${evil}` },
    ];
    for (const s of sections) {
      const out = renderSectionHtml(s).value;
      expect(out, s.kind).not.toContain("<script>");
      expect(out, s.kind).toContain("&lt;script&gt;x()&lt;/script&gt;");
    }
    expect(renderSectionHtml(sections[0]!).value).toContain("you gave:");
    expect(renderSectionHtml(sections[3]!).value).toContain('<span class="add">+&lt;script&gt;');
  });
});

describe("evidence charts", () => {
  const log = (reading: string) => ({
    source: "sandbox:prod", at: EPOCH, noData: [],
    queries: [{ reading, query: "q", start: EPOCH, end: EPOCH, stepSeconds: 60, points: [{ at: "2026-11-26T00:01:00Z", value: 1, raw: "1", samples: 1 }, { at: "2026-11-26T00:02:00Z", value: null, raw: "NaN", samples: 0 }, { at: "2026-11-26T00:03:00Z", value: 3, raw: "3", samples: 1 }] }],
  });

  it("reads a window's log alone or one per signal; anything else is no chart", () => {
    expect(queryLogs(log("p95Ms")).map((l) => l.signal)).toEqual(["serving"]);
    expect(queryLogs({ serving: log("p95Ms"), database: log("lockWaits"), other: { x: 1 } }).map((l) => l.signal)).toEqual(["serving", "database"]);
    expect(queryLogs([1, 2])).toEqual([]);
    expect(queryLogs("text")).toEqual([]);
  });

  it("draws the series as SVG with its labels escaped, and nothing for a series without a number", async () => {
    const svg = (await seriesChart(log(`<script>alert(1)</script>`)))!.value;
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("&lt;script&gt;");
    const empty = log("p95Ms");
    empty.queries[0]!.points = [{ at: EPOCH, value: null, raw: "NaN", samples: 0 }];
    expect(await seriesChart(empty)).toBeNull();
  });
});

describe("the viewer only looks", () => {
  const suite = engineSuite();

  it("opens no gate's ticket and marks no run, where `status` and `runs` would", async () => {
    const now = Date.parse(EPOCH) + 3_600_000;
    const e = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, now: () => new Date(now) }));
    // A start interrupted before its first checkpoint (an earlier version's row, without params): judged never started.
    await e.store.createRun({ run: "run-crashed", workflow: "add-caching-layer", deployment: "prod", status: "running", requestedBy: "carol", startedAt: new Date(now - 120_000).toISOString(), request: "add redis caching to prod" });
    const s = await e.start(CACHING_PLAN, "carol", "add redis caching to prod");
    // As if no front had shown the gate yet: its ticket (and so its expiry) does not exist.
    await e.store.sql.query(`DELETE FROM honua_gates WHERE run = ?`, [s.run]);
    const tickets = async () => (await e.store.sql.query(`SELECT COUNT(*) AS n FROM honua_gates WHERE run = ?`, [s.run]))[0]!.n;

    const list = await runsView(e, {});
    expect(list.rows.find((r) => r.run === "run-crashed")?.status).toBe("failed");
    expect(list.rows.find((r) => r.run === s.run)?.waitingOn).toMatchObject({ kind: "provision", expiresAt: null });
    const page = await runView(e, s.run);
    expect(page.transcript.status).toBe("waiting");
    expect(page.gates.at(-1)?.pending).toEqual({ expiresAt: null });
    expect(Number(await tickets())).toBe(0);
    expect((await e.store.getRun("run-crashed"))?.status).toBe("running");

    // What the fronts that ask do with the same runs.
    expect((await e.summary(s.run)).pending?.expiresAt).toBe(new Date(now + 24 * 60 * 60_000).toISOString());
    expect(Number(await tickets())).toBe(1);
    expect((await e.runs()).find((r) => r.run === "run-crashed")?.status).toBe("failed");
    expect((await e.store.getRun("run-crashed"))?.status).toBe("failed");
  });
});

describe("signed links and settings", () => {
  const s = webSettings({ HONUA_WEB_SECRET: SECRET, HONUA_WEB_BASE_URL: "https://viewer.example.org/", HONUA_WEB_LINK_TTL_HOURS: "2" });
  const at = (link: string, nowMs: number) => {
    const u = new URL(link);
    return checkAccess(s, { path: u.pathname, query: u.searchParams, authorization: undefined }, nowMs);
  };

  it("a run link is signed for its page and expires after the configured hours", () => {
    const link = runLink(s, "run-20261126-abcdef0123", NOW)!;
    expect(link).toMatch(/^https:\/\/viewer\.example\.org\/runs\/run-20261126-abcdef0123\?exp=\d+&sig=[0-9a-f]{64}$/);
    expect(at(link, NOW.getTime())).toMatchObject({ ok: true, via: "link" });
    expect(at(link, NOW.getTime() + 2 * 3600_000 + 1000)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    // The same signature on another page, or a changed expiry, is refused.
    expect(at(link.replace("abcdef0123", "abcdef0124"), NOW.getTime())).toMatchObject({ ok: false, reason: expect.stringMatching(/signature/) });
    expect(at(link.replace(/exp=(\d+)/, (_, e: string) => `exp=${Number(e) + 3600}`), NOW.getTime())).toMatchObject({ ok: false });
    expect(runLink(webSettings({}), "r", NOW)).toBeNull();
  });

  it("bad settings are refused with the variable named", () => {
    expect(() => webSettings({ HONUA_WEB_SECRET: "short" })).toThrow(/HONUA_WEB_SECRET must be at least 32/);
    expect(() => webSettings({ HONUA_WEB_BASE_URL: "javascript:alert(1)" })).toThrow(/HONUA_WEB_BASE_URL must be an http/);
    expect(() => webSettings({ HONUA_WEB_LINK_TTL_HOURS: "-1" })).toThrow(/HONUA_WEB_LINK_TTL_HOURS/);
  });
});

describe.skipIf(unavailable !== null)(`the viewer in a real headless Chromium${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  const t = tempHome();
  let engine: Engine;
  let web: WebServer;
  let browser: Browser;
  let done = "";
  let rolledBack = "";
  let waiting = "";
  /** `honua-agent web --host 0.0.0.0` without a secret, started first: it runs beside the runs being made. */
  let refused: Promise<{ code: number | null; stderr: string }>;
  const env = () => testEnv(t.home, { HONUA_WEB_SECRET: SECRET, HONUA_WEB_TOKEN: TOKEN });
  const signed = (path: string, exp = nowS + 3600) => `${web.url}${signPath(SECRET, path, exp)}`;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    refused = new Promise((resolve) => {
      const child = spawn(process.execPath, [new URL("../bin/honua-agent.mjs", import.meta.url).pathname, "web", "--host", "0.0.0.0", "--port", "0"], { cwd: t.home, env: testEnv(t.home), stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
      child.on("close", (code) => resolve({ code, stderr }));
    });
    engine = await openEngine(t.home);
    done = (await approveAll(engine, await engine.start(CACHING_PLAN, "carol", HOSTILE))).run;
    await engine.close();
    // A latency regression once 10% of staging's traffic is on the cache: rolled back on its own, leftovers deleted.
    engine = await openEngine(t.home, { HONUA_SANDBOX_FAULTS: "latency-regression@10" });
    const rb = await approveAll(engine, await engine.start({ ...CACHING_PLAN, deployment: "staging" }, "dave", "add redis caching to staging"));
    expect(rb.status).toBe("rolled-back");
    rolledBack = rb.run;
    await engine.close();
    // A third run left at its first gate; a model call recorded for the first (its detail is untrusted text too).
    engine = await openEngine(t.home);
    waiting = (await engine.start({ ...CACHING_PLAN, deployment: "staging" }, "erin", "add redis caching to staging")).run;
    await (await SqlCallLog.open(engine.store.sql)).record({
      id: "mc-web-1", run: done, task: "plan", model: "gpt-test", promptVersion: "plan@3", inputTokens: 812, outputTokens: 40, totalTokens: 852,
      latencyMs: 930, outcome: "invalid", detail: "<b>not a plan</b>", at: EPOCH,
    });
    await engine.close();
    web = await startWeb({ env: env(), cwd: t.home, host: "127.0.0.1", port: 0, now: () => NOW });
    browser = await launch();
  }, 60_000);

  afterAll(async () => {
    await web?.close();
    t.cleanup();
  });

  it("the runs list shows every run and what a waiting one waits on, filters, and carries signed links to each run", async () => {
    const page = await browser.newPage();
    const r = await page.goto(signed("/"));
    expect(r?.status()).toBe(200);
    expect(r?.headers()["content-security-policy"]).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
    expect(await page.locator("#runs tbody tr").count()).toBe(3);
    expect(await page.locator(`tr[data-run="${rolledBack}"] .badge`).innerText()).toBe("rolled-back");
    // The waiting run says what it waits on: the gate, its step, who decides, until when.
    expect(await page.locator(`tr[data-run="${waiting}"] td`).last().innerText()).toMatch(/^provision approval of ProvisionCacheInfrastructure · by alice, bob · expires 20\d\d-/);
    expect(await page.locator(`tr[data-run="${done}"] td`).last().innerText()).toBe("");
    await page.screenshot({ path: join(OUT, "runs.png"), fullPage: true });
    // The filter form keeps the link's signature; the list narrows to the rolled-back run.
    await page.selectOption("select[name=deployment]", "staging");
    await Promise.all([page.waitForURL(/deployment=staging/), page.click("button[type=submit]")]);
    expect(await page.locator("#runs tbody tr").count()).toBe(2);
    await page.selectOption("select[name=status]", "rolled-back");
    await Promise.all([page.waitForURL(/status=rolled-back/), page.click("button[type=submit]")]);
    expect(await page.locator("#runs tbody tr").count()).toBe(1);
    // A run's link from a signed list is itself signed: following it opens the page.
    await Promise.all([page.waitForURL(/\/runs\//), page.click(`tr[data-run="${rolledBack}"] a`)]);
    expect(await page.locator("h1").innerText()).toContain(rolledBack);
    expect((await page.goto(`${signed("/")}&requester=erin`))?.status()).toBe(200);
    expect(await page.locator("#runs tbody tr").count()).toBe(1);
    expect(await page.locator(`tr[data-run="${waiting}"]`).count()).toBe(1);
    await page.close();
  });

  it("a finished run's page: timeline, each gate as shown with its decision, the report and the audit chain", async () => {
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => void (dialogs.push(d.message()), d.dismiss()));
    const r = await page.goto(signed(`/runs/${done}`));
    expect(r?.status()).toBe(200);
    const tr = await web.engine.transcript(done);
    expect(await page.locator(".step").count()).toBe(tr.steps.length);
    // Every human decision sits beside its gate, bound to the hash the card showed; the payload's hash verifies.
    const gates = page.locator(".gate");
    expect(await gates.count()).toBe(tr.decisions.length);
    expect(await page.locator(".gate .badge.ok", { hasText: "hash verifies" }).count()).toBe(tr.decisions.length);
    for (const d of tr.decisions) expect(await page.locator(".decision", { hasText: d.planHash }).count()).toBeGreaterThan(0);
    expect(await page.locator(".gate[data-gate=ProvisionCacheInfrastructure] .decision").innerText()).toMatch(/approve by alice/);
    expect(await page.locator("#chain").innerText()).toMatch(/audit chain verifies.*prod: chain verifies/s);
    expect(await page.locator("#config-changes tbody tr").count()).toBeGreaterThan(0);
    expect(await page.locator("#report").innerText()).toMatch(/before \/ after/i);
    expect(await page.locator("#model-calls tbody tr").innerText()).toMatch(/plan\s+gpt-test\s+plan@3\s+812\/40\s+930 ms\s+invalid: <b>not a plan<\/b>/);
    // The hostile request is text: nothing ran, no element came of it.
    expect(await page.locator("#request").innerText()).toBe(HOSTILE);
    expect(await page.evaluate("document.body.dataset.pwned ?? \"none\"")).toBe("none");
    expect(await page.locator("script").count()).toBe(0);
    expect(await page.locator("main img").count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.screenshot({ path: join(OUT, "run-done.png"), fullPage: true });
    await page.close();
  });

  it("a rolled-back run's page: the degraded stage with the raw series behind its verdict as a chart", async () => {
    const page = await browser.newPage();
    expect((await page.goto(signed(`/runs/${rolledBack}`)))?.status()).toBe(200);
    expect(await page.locator(".badge.s-rolled-back").first().innerText()).toBe("rolled-back");
    const degraded = page.locator(".step.degraded");
    expect(await degraded.count()).toBe(1);
    expect(await degraded.locator("h3").innerText()).toMatch(/EnableCachingGradually · stage 1 \(10%\)/);
    // The chart is drawn from the evidence the transcript keeps: one SVG with a line per reading.
    const tr = await web.engine.transcript(rolledBack);
    const key = Object.keys(tr.evidence).find((k) => k.startsWith("EnableCachingGradually:0:"))!;
    const chart = degraded.locator(`.chart[data-evidence="${key}"] svg`);
    expect(await chart.count()).toBe(1);
    expect(await chart.locator("path").count()).toBeGreaterThan(5);
    expect(await chart.innerHTML()).toContain("p95Ms");
    // The baseline it was judged against and the rollback limit are drawn on it.
    expect(await chart.locator("text", { hasText: /^limit$/ }).count()).toBeGreaterThan(0);
    expect(await chart.locator("text", { hasText: /^baseline$/ }).count()).toBeGreaterThan(0);
    // Signed for this run only: the header has no link to the list.
    expect(await page.locator("header a").count()).toBe(0);
    await page.screenshot({ path: join(OUT, "run-rolled-back.png"), fullPage: true });
    await page.close();
  });

  it("a waiting run's page shows the open gate as it is asked, with its expiry and no decision", async () => {
    const r = await fetch(`${web.url}/runs/${waiting}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    const body = await r.text();
    expect(body).toMatch(/gate: provision before ProvisionCacheInfrastructure/);
    expect(body).toMatch(/waiting for a decision<\/span> · expires 20\d\d-/);
    expect(body).toContain("hash verifies");
  });

  it("refuses an unsigned, an expired, a misdirected or a bad-token request (403); a bearer token is enough", async () => {
    const page = await browser.newPage();
    expect((await page.goto(`${web.url}/runs/${done}`))?.status()).toBe(403);
    expect(await page.locator("body").innerText()).toMatch(/needs a signed link/);
    expect((await page.goto(signed(`/runs/${done}`, nowS - 1)))?.status()).toBe(403);
    expect(await page.locator("body").innerText()).toMatch(/expired/);
    await page.close();
    const other = signed(`/runs/${done}`).replace(`/runs/${done}`, `/runs/${rolledBack}`);
    expect((await fetch(other)).status).toBe(403);
    expect((await fetch(`${web.url}/`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(403);
    const ok = await fetch(`${web.url}/runs/${done}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("referrer-policy")).toBe("no-referrer");
  });

  it("the runs list pages: newest first, links to older and newer pages keep the filters and the link's signature", async () => {
    const small = await startWeb({ env: env(), cwd: t.home, host: "127.0.0.1", port: 0, now: () => NOW, pageSize: 2 });
    try {
      const rowsOf = (body: string) => [...body.matchAll(/<tr data-run="([^"]+)"/g)].map((m) => m[1]);
      const hrefOf = (body: string, rel: "next" | "prev") => new RegExp(`<a rel="${rel}" href="([^"]+)">`).exec(body)?.[1]?.replaceAll("&amp;", "&");
      const first = await (await fetch(`${small.url}${signPath(SECRET, "/", nowS + 3600)}`)).text();
      expect(rowsOf(first)).toEqual([waiting, rolledBack]);
      expect(first).toMatch(/3 of 3 runs; page 1 of 2 \(1–2\)/);
      expect(first).not.toContain('rel="prev"');
      const next = hrefOf(first, "next");
      expect(next).toMatch(/sig=.*&page=2$/);
      const second = await fetch(`${small.url}${next}`);
      expect(second.status).toBe(200);
      const body = await second.text();
      expect(rowsOf(body)).toEqual([done]);
      expect(body).toMatch(/page 2 of 2 \(3–3\)/);
      expect(hrefOf(body, "prev")).toMatch(/sig=[^&]+$/);
      expect(body).not.toContain('rel="next"');
      // With a filter: the filter goes with the page; past the last page nothing is listed and the way back is offered.
      const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
      const staging = await (await fetch(`${small.url}/?deployment=staging&page=1`, auth)).text();
      expect(rowsOf(staging)).toEqual([waiting, rolledBack]);
      expect(staging).toMatch(/2 of 3 runs match/);
      expect(staging).not.toContain('rel="next"');
      const past = await (await fetch(`${small.url}/?deployment=staging&page=7`, auth)).text();
      expect(rowsOf(past)).toEqual([]);
      expect(past).toMatch(/no runs on page 7/);
      expect(hrefOf(past, "prev")).toBe("/?deployment=staging");
      for (const bad of ["0", "-1", "x", "1.5", "9999999"]) {
        const r = await fetch(`${small.url}/?page=${bad}`, auth);
        expect(r.status, bad).toBe(400);
        expect(await r.text()).toMatch(/bad filter: page/);
      }
    } finally {
      await small.close();
    }
  });

  it("bad input is a clear 400/404/405 and changes nothing", async () => {
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const before = await web.engine.runs();
    const bad = await fetch(`${web.url}/?status=bogus`, auth);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/bad filter: status/);
    expect((await fetch(`${web.url}/?colour=red`, auth)).status).toBe(400);
    expect((await fetch(`${web.url}/runs/run-19990101-0000000000`, auth)).status).toBe(404);
    expect((await fetch(`${web.url}/runs/bad%20id%3Cx%3E`, auth)).status).toBe(400);
    expect((await fetch(`${web.url}/runs/${done}`, { ...auth, method: "POST" })).status).toBe(405);
    expect(await web.engine.runs()).toEqual(before);
  });

  it("refuses to start on a non-loopback host without a secret or token: exit 2, nothing opened", async () => {
    await expect(startWeb({ env: testEnv(t.home), cwd: t.home, host: "0.0.0.0", port: 0 })).rejects.toThrow(AgentError);
    const r = await refused;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to serve transcripts on 0\.0\.0\.0 without access control: set HONUA_WEB_SECRET/);
  }, 60_000);
});

describe.skipIf(unavailable !== null)("the viewer on the PostgreSQL store", () => {
  const pg = postgresTestDatabase("honua_web");
  it("serves a run's page from PostgreSQL", async () => {
    const env = testEnv(pg.home, { HONUA_AGENT_DATABASE_URL: pg.url, HONUA_WEB_TOKEN: TOKEN });
    const engine = await openEngine(pg.home, { HONUA_AGENT_DATABASE_URL: pg.url });
    const run = (await approveAll(engine, await engine.start(CACHING_PLAN, "carol", "add redis caching to prod"))).run;
    await engine.close();
    const web = await startWeb({ env, cwd: pg.home, port: 0, now: () => NOW });
    const browser = await launch();
    try {
      expect(web.engine.persistence.location).toMatch(/postgres/i);
      const page = await browser.newPage({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } });
      expect((await page.goto(`${web.url}/runs/${run}`))?.status()).toBe(200);
      expect(await page.locator(".step").count()).toBe((await web.engine.transcript(run)).steps.length);
      expect(await page.locator("#chain").innerText()).toMatch(/prod: chain verifies/);
      expect((await page.goto(`${web.url}/`))?.status()).toBe(200);
      expect(await page.locator("#runs tbody tr").count()).toBe(1);
    } finally {
      await web.close();
    }
  }, 60_000);
});

describe.skipIf(unavailable !== null)("serve: the Slack report links to its run's page, served at /web", () => {
  it("a signed link in the report opens the run's page on serve's port; the bare path is refused", async () => {
    const t = tempHome();
    const fake = await SlackFake.start();
    const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
    const port = await freePort();
    const env = slackTestEnv(t.home, fake.apiUrl, SLACK_SECRET, { HONUA_WEB_SECRET: SECRET, HONUA_WEB_BASE_URL: `http://127.0.0.1:${port}/web` });
    const config = parseConfig({ deployments: { staging: { provider: "sandbox", approvers: ["U0ALICE42"], seed: 17, monitoring: { windowMinutes: 15, stageMinutes: 5 } } } }, "test");
    const server = await startServer({ env, cwd: t.home, config, port, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null });
    const browser = await launch();
    try {
      const post = async (body: string, type: string) => {
        await slackPost(server.url, body, type, { secret: SLACK_SECRET });
        await server.idle();
      };
      const root = "1699999997.000001";
      await post(eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to staging", ts: root, channel: "C0OPS", event_ts: root }), JSON_TYPE);
      for (let i = 0; i < 6; i++) {
        const card = fake.thread(root).find((m) => JSON.stringify(m.blocks).includes('"action_id":"honua_approve"'));
        if (!card) break;
        await post(actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: "C0OPS", messageTs: card.ts, threadTs: root }), FORM);
      }
      const run = (await server.engine.runs())[0]!;
      expect(run.status).toBe("done");
      const report = fake.thread(root).find((m) => /^Report for run/.test(m.text))!;
      const link = /Transcript viewer: (\S+)/.exec(report.text)?.[1];
      expect(link).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/web/runs/${run.run}\\?exp=\\d+&sig=[0-9a-f]{64}$`));
      // In the blocks the link is mrkdwn-escaped, as Slack wants it.
      expect(JSON.stringify(report.blocks)).toContain(`<${link!.replace("&", "&amp;")}|Open this run in the transcript viewer>`);
      const page = await browser.newPage();
      expect((await page.goto(link!))?.status()).toBe(200);
      expect(await page.locator("h1").innerText()).toContain(run.run);
      expect((await page.goto(`http://127.0.0.1:${port}/web/runs/${run.run}`))?.status()).toBe(403);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
      await fake.close();
      t.cleanup();
    }
  }, 60_000);
});
