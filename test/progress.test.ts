/**
 * Structured progress: a step reports `{ done, total, unit, rate }` as it goes; the terminal shows it without a line per
 * batch, the Slack progress message is edited (one message, paced under chat.update's rate limit) to show it, and the
 * run still records one step record per step, however many batches reported.
 */
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseConfig } from "../src/config.js";
import { Progress, parseProgress, percentDone, renderProgress } from "../src/core/progress.js";
import { Engine } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import { defineStep, type StepContext, type WorkflowDef } from "../src/graph/step.js";
import { defineTool, type WorkflowModule } from "../src/graph/workflows/module.js";
import { registerWorkflow, unregisterWorkflow } from "../src/graph/workflows/registry.js";
import { TerminalEvents } from "../src/render.js";
import { progressLines } from "../src/slack/blocks.js";
import { RATE } from "../src/slack/limits.js";
import { startServer } from "../src/slack/server.js";
import { JSON_TYPE, SlackFake, eventBody, slackPost, slackTestEnv } from "./fixtures/slack-fake.js";
import { engineSuite, testEnv } from "./helpers.js";

/** A copy of `total` records in batches of `batch`, reporting after each; `between` runs after the batch that reaches `pauseAt`. */
function copyWorkflow(id: string, o: { total: number; batch: number; pauseAt?: number; between?: () => Promise<void>; report?: (ctx: StepContext, done: number) => void }): WorkflowDef {
  const Count = defineStep({
    name: "CountRecords",
    description: "count what is to be copied",
    input: z.object({}).strict(),
    output: z.object({ total: z.number().int() }).strict(),
    prepare: () => ({}),
    run: async () => ({ output: { total: o.total } }),
  });
  const Copy = defineStep({
    name: "CopyRecords",
    description: "copy the records in batches",
    input: z.object({ total: z.number().int() }).strict(),
    output: z.object({ copied: z.number().int(), batches: z.number().int() }).strict(),
    prepare: (view) => ({ total: view.output(Count).total }),
    run: async (ctx, { total }) => {
      let done = 0;
      let batches = 0;
      while (done < total) {
        done = Math.min(total, done + o.batch);
        batches++;
        if (o.report) o.report(ctx, done);
        else ctx.progress({ done, total, unit: "records", rate: 20 });
        if (done === o.pauseAt && o.between) await o.between();
      }
      return { output: { copied: done, batches } };
    },
  });
  return { id, title: "Copy records", params: z.object({}).strict(), steps: [Count, Copy], rollback: async () => ({ restored: [], leftovers: [] }) };
}

describe("the progress schema and its one line", () => {
  it("renders counts, bytes and rates; 100% only when all is done", () => {
    expect(renderProgress({ done: 1200, total: 5000, unit: "records", rate: 310.4 })).toBe("1,200 of 5,000 records (24%) · 310 records/s");
    expect(renderProgress({ done: 3_670_016, total: 10_485_760, unit: "bytes", rate: 1_258_291 })).toBe("3.50 MiB of 10.0 MiB (35%) · 1.20 MiB/s");
    expect(renderProgress({ done: 0, total: 1, unit: "statements", rate: 0 })).toBe("0 of 1 statement (0%)");
    expect(renderProgress({ done: 0, total: 0, unit: "objects", rate: 0 })).toBe("0 of 0 objects");
    expect(renderProgress({ done: 2, total: 3, unit: "objects", rate: 0.5 })).toBe("2 of 3 objects (66%) · 0.5 objects/s");
    expect(percentDone({ done: 999, total: 1000, unit: "records", rate: 1 })).toBe(99);
  });

  it("a watch window: elapsed of its length, what is left, the latest readings", () => {
    expect(renderProgress({ done: 750, total: 3600, unit: "seconds", rate: 0, note: "p95 41 ms, errors 0.10%" })).toBe("watched 12m 30s of 1h (20%), 47m 30s left · p95 41 ms, errors 0.10%");
    expect(renderProgress({ done: 45, total: 600, unit: "seconds", rate: 0 })).toBe("watched 45s of 10m (7%), 9m 15s left");
    expect(renderProgress({ done: 3900, total: 7200, unit: "seconds", rate: 0 })).toBe("watched 1h 5m of 2h (54%), 55m left");
  });


  it("refuses what is not progress, naming the step and each bad field", () => {
    expect(() => parseProgress("CopyRecords", { done: 5, total: 3, unit: "records", rate: 1 })).toThrow(/step CopyRecords reported progress .*done: done must not exceed total/);
    expect(() => parseProgress("CopyRecords", { done: 1, total: 3, unit: "rows", rate: 1 })).toThrow(/unit: /);
    expect(() => parseProgress("CopyRecords", { done: 1, total: 3, unit: "records", rate: -1 })).toThrow(/rate: /);
    expect(() => parseProgress("CopyRecords", { done: 1.5, total: 3, unit: "records", rate: 1 })).toThrow(/done: /);
    expect(() => parseProgress("CopyRecords", { done: 1, total: 3, unit: "records", rate: 1, eta: 4 })).toThrow(/eta|unrecognized/i);
    expect(() => parseProgress("CopyRecords", { done: 1, total: 3, unit: "records" })).toThrow(/rate: /);
    expect(Progress.safeParse({ done: 3, total: 3, unit: "bytes", rate: 0 }).success).toBe(true);
  });

  it("a Slack progress line shows the running step's count beside its stage", () => {
    const lines = progressLines([{ name: "CountRecords" }, { name: "CopyRecords" }], [{ name: "CountRecords", stage: null, status: "done" }], { step: "CopyRecords", stage: null, progress: { done: 40, total: 100, unit: "records", rate: 20 } }, null);
    expect(lines).toEqual([
      { name: "CountRecords", mark: "done", detail: "" },
      { name: "CopyRecords", mark: "running", detail: "40 of 100 records (40%) · 20 records/s" },
    ]);
  });
});

describe("structured progress through the engine, in the terminal", () => {
  const suite = engineSuite();

  async function run(def: WorkflowDef, tty: boolean): Promise<{ out: string; events: RunEvent[]; engine: Engine; run: string; status: string }> {
    let out = "";
    const events: RunEvent[] = [];
    const terminal = new TerminalEvents((s) => (out += s), tty);
    const engine = suite.track(await Engine.open({ env: testEnv(suite.home), cwd: suite.home, workflows: { [def.id]: def }, onEvent: (e) => { events.push(e); terminal.event(e); } }));
    const s = await engine.start({ workflow: def.id, deployment: "prod", params: {} }, "carol", "copy the records");
    terminal.end();
    return { out, events, engine, run: s.run, status: s.status };
  }

  it("250 batches: one step record, and a log shows the start, each further tenth and the end (not a line per batch)", async () => {
    const r = await run(copyWorkflow("copy-records", { total: 5000, batch: 20 }), false);
    expect(r.status).toBe("done");
    expect(r.events.filter((e) => e.type === "progress")).toHaveLength(250);
    const tr = await r.engine.transcript(r.run);
    expect(tr.steps.map((s) => s.name)).toEqual(["CountRecords", "CopyRecords"]);
    expect(tr.steps[1]!.output).toEqual({ copied: 5000, batches: 250 });
    const progress = r.out.split("\n").filter((l) => l.startsWith("  … CopyRecords: "));
    expect(progress).toEqual([
      "  … CopyRecords: 20 of 5,000 records (0%) · 20 records/s",
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((t) => `  … CopyRecords: ${(t * 500).toLocaleString("en-US")} of 5,000 records (${t * 10}%) · 20 records/s`),
      "  … CopyRecords: 5,000 of 5,000 records (100%) · 20 records/s",
    ]);
    expect(r.out).not.toMatch(/\r/);
    expect(r.out).toMatch(/▶ CopyRecords\n[\s\S]*✔ CopyRecords\n■ done/);
  });

  it("on a TTY one status line is rewritten in place and cleared before the next line", async () => {
    const r = await run(copyWorkflow("copy-records-tty", { total: 100, batch: 25 }), true);
    expect(r.status).toBe("done");
    const clear = "\r\x1b[2K";
    expect(r.out).toContain(`▶ CopyRecords\n${clear}  … CopyRecords: 25 of 100 records (25%) · 20 records/s${clear}  … CopyRecords: 50 of 100 records (50%)`);
    // The step's end is printed on a cleared line, never after the status line.
    expect(r.out).toContain(`100 of 100 records (100%) · 20 records/s${clear}✔ CopyRecords\n`);
    expect(r.out.split("\n").filter((l) => l.includes("records/s"))).toHaveLength(1);
  });

  it("progress that is not {done, total, unit, rate} fails the step with the reason, and the run is rolled back as failed", async () => {
    const bad = copyWorkflow("copy-records-bad", { total: 10, batch: 5, report: (ctx, done) => ctx.progress(JSON.parse(`{"done":${done * 2},"total":5,"unit":"rows","rate":1}`) as Progress) });
    const r = await run(bad, false);
    expect(r.status).toBe("failed");
    const tr = await r.engine.transcript(r.run);
    expect(tr.steps.map((s) => [s.name, s.status])).toEqual([["CountRecords", "done"], ["CopyRecords", "failed"], ["Rollback", "done"]]);
    const copy = tr.steps.find((s) => s.name === "CopyRecords")!;
    expect(copy.status).toBe("failed");
    expect(copy.error).toMatch(/step CopyRecords reported progress that is not \{done, total, unit: records\|bytes\|objects\|statements, rate\}: unit: Invalid option/);
    expect(r.events.filter((e) => e.type === "progress")).toHaveLength(0);
  });

  it("text progress is shown as before", async () => {
    const r = await run(copyWorkflow("copy-records-text", { total: 4, batch: 2, report: (ctx, done) => ctx.progress(`copied ${done}\nso far`) }), false);
    expect(r.out).toContain("  copied 2\n  so far\n  copied 4\n  so far\n");
  });
});

describe("structured progress in Slack (real Bolt app, fake Web API)", () => {
  const ID = "copy-archive-records";
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("edits the run's one progress message with the count while the step runs, paced under chat.update's limit, and records one step", async () => {
    const t = (await import("./helpers.js")).tempHome();
    cleanups.push(() => t.cleanup());
    const fake = await SlackFake.start();
    cleanups.push(() => fake.close());
    const shown = (needle: string): boolean => [...fake.messages.values()].some((m) => m.versions.some((v) => JSON.stringify(v.blocks).includes(needle)));
    const waitFor = async (needle: string): Promise<void> => {
      // Bounded: the edit comes after one progress interval; if it never comes the step fails and says so.
      for (let i = 0; i < 1000 && !shown(needle); i++) await new Promise((r) => setTimeout(r, 10));
      if (!shown(needle)) throw new Error(`the progress message never showed ${needle}`);
    };
    const def = copyWorkflow(ID, { total: 1000, batch: 5, pauseAt: 400, between: () => waitFor("400 of 1,000 records") });
    // Progress of 400 as the count passes: the message must show the latest count, not each.
    const m: WorkflowModule = {
      def: { ...def, steps: def.steps },
      summary: "copy the archive records",
      capabilities: [],
      priority: 70,
      intent: {
        signals: [[/\bcopy the archive records\b/, 5]],
        sqlScore: 0,
        vocabulary: { triggers: [], notTypos: [], notDeployments: ["archive", "records"], things: [], safeObjects: [] },
        capability: "copy the archive records",
        listed: 90,
        extract: () => ({ params: {}, missing: [], claimed: [] }),
      },
      tool: defineTool({ args: z.strictObject({}), paramNames: [], toParams: () => ({}), invented: () => null }),
    };
    registerWorkflow(m, "progress.test.ts");
    cleanups.push(() => unregisterWorkflow(ID));
    const secret = "8f742231b10e8888abcd99yyyzzz85a5";
    const server = await startServer({
      env: slackTestEnv(t.home, fake.apiUrl, secret), cwd: t.home,
      config: parseConfig({ deployments: { prod: { provider: "sandbox", approvers: ["U0ALICE42"] } } }, "test"),
      port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0,
    });
    cleanups.push(() => server.close());
    const ts = "1699999999.000001";
    const res = await slackPost(server.url, eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> copy the archive records on prod", ts, channel: "C0OPS", event_ts: ts }), JSON_TYPE, { secret });
    expect(res.status).toBe(200);
    await server.idle();

    const runs = await server.engine.runs();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ workflow: ID, status: "done" });
    const tr = await server.engine.transcript(runs[0]!.run);
    expect(tr.steps.map((s) => [s.name, s.status])).toEqual([["CountRecords", "done"], ["CopyRecords", "done"]]);
    expect(tr.steps[1]!.output).toEqual({ copied: 1000, batches: 200 });

    const progress = fake.thread(ts).filter((msg) => msg.versions.some((v) => v.text.startsWith("Run ") || v.text.includes("steps done")));
    expect(progress).toHaveLength(1);
    const versions = progress[0]!.versions.map((v) => JSON.stringify(v.blocks));
    expect(versions.some((v) => v.includes(":hourglass_flowing_sand: CopyRecords — 400 of 1,000 records (40%) · 20 records/s"))).toBe(true);
    expect(versions.at(-1)).toContain(":white_check_mark: CopyRecords");
    expect(versions.at(-1)).not.toContain("records/s");
    // 200 progress reports, one message: its edits are a handful (the 200 reports come between two timer fires but one).
    const edits = fake.calls.filter((c) => c.method === "chat.update" && c.args.ts === progress[0]!.ts).length;
    expect(edits).toBeGreaterThanOrEqual(2);
    expect(edits).toBeLessThan(20);
    expect(RATE.progressEditMs).toBeGreaterThanOrEqual(60_000 / RATE.chatUpdatePerMinute);
  });
});

describe("a watch window as it runs", () => {
  const suite = engineSuite();

  it("the sandbox's watch window reports its place and readings as it goes (plain lines when not a TTY)", async () => {
    const events: RunEvent[] = [];
    const e = await suite.open({}, events);
    let s = await e.start({ workflow: "add-caching-layer", deployment: "prod", params: {} }, "carol", "add redis caching to prod");
    while (s.pending) s = await e.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    const watched = events.flatMap((x) => (x.type === "progress" && x.step === "MonitorCachePerformance" && x.progress ? [x] : []));
    expect(watched.length).toBeGreaterThan(3);
    expect(watched.at(-1)!.progress).toMatchObject({ unit: "seconds", total: 3600 });
    expect(watched[0]!.message).toMatch(/^watched \d+m of 1h \(\d+%\), [\dm ]+s? ?left · p95 \d+(\.\d+)? ms, errors \d+\.\d\d%/);
    const lines: string[] = [];
    const t = new TerminalEvents((x) => lines.push(x), false);
    for (const x of watched) t.event(x);
    expect(lines.length).toBeLessThanOrEqual(11); // a tenth at a time, not a line per reading
  });
});
