import { afterEach, describe, expect, it, vi } from "vitest";
import { parseConfig } from "../src/config.js";
import { startServer, type SlackServer } from "../src/slack/server.js";
import { tempHome } from "./helpers.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, buttonValue, slackTestEnv, eventBody, slackPost } from "./fixtures/slack-fake.js";

// The chart renderer fails here (a missing font, a broken native module): the report must still carry the transcript.
vi.mock("../src/core/chart.js", () => ({ renderChartPng: async () => Promise.reject(new Error("resvg: no fonts")) }));

const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});


describe("Slack report", () => {
  it("a before/after chart that cannot be drawn does not hold back the transcript upload, and says why", async () => {
    const t = tempHome();
    open.push({ close: async () => t.cleanup() });
    const fake = await SlackFake.start();
    open.push(fake);
    const env = slackTestEnv(t.home, fake.apiUrl, SECRET);
    const config = parseConfig({ deployments: { staging: { provider: "sandbox", approvers: ["U0ALICE42"], seed: 17, monitoring: { windowMinutes: 15, stageMinutes: 5 } } } }, "test");
    const server: SlackServer = await startServer({ env, cwd: t.home, config, port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null });
    open.push(server);
    const post = async (body: string, type: string) => {
      await slackPost(server.url, body, type, { secret: SECRET });
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
    expect(fake.called("files.getUploadURLExternal").map((c) => String(c.args.filename))).toEqual([`${run.run}-transcript.md`]);
    const [complete] = fake.called("files.completeUploadExternal");
    expect(String(complete!.args.initial_comment)).toMatch(/chart could not be drawn: resvg: no fonts/);
  });
});
