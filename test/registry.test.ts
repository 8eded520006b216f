/**
 * A workflow is its folder: a throwaway one, written to a temporary folder and found by the registry, is planned by
 * the rules and by the model, run and approved from the command line, and posted with its approval card in Slack,
 * with nothing else edited.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertToOpenAITool } from "@langchain/core/utils/function_calling";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BUILTIN_CONFIG, parseConfig } from "../src/config.js";
import { registerWorkflowFolders, unregisterWorkflow, workflowIds } from "../src/graph/workflows/registry.js";
import { MemoryCallSink, capabilities, planOnly, planRequest } from "../src/planner/index.js";
import { planPromptArgs } from "../src/planner/model.js";
import { planOffline } from "../src/planner/offline.js";
import { Plan } from "../src/planner/plan.js";
import { planTool } from "../src/planner/tool.js";
import { requiredCategories } from "../src/evals/index.js";
import { startServer } from "../src/slack/server.js";
import { planReply, startFakeOpenAI, strictViolations, type FakeOpenAI } from "./fixtures/fake-openai.js";
import { JSON_TYPE, FORM, SlackFake, actionBody, blocksText, buttonValue, eventBody, slackPost, slackTestEnv } from "./fixtures/slack-fake.js";
import { cli, tempHome } from "./helpers.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const project = (path: string): string => JSON.stringify(join(ROOT, path));
const ID = "tune-connection-pool";
const REQUEST = "tune the connection pool to 50 connections on prod";

/** The throwaway workflow's folder: params and two steps (the second gated) in index.ts, beside its intent and tool. */
function writeWorkflow(dir: string, o: { id?: string; secondStep?: string; exportName?: string } = {}): string {
  const folder = join(dir, o.id ?? ID);
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, "index.ts"),
    `import { z } from "zod";
import { defineStep } from ${project("src/graph/step.ts")};
import { intent } from "./intent.ts";
import { tool } from "./tool.ts";

export const PoolParams = z.object({ size: z.number().int().min(1).max(1000).optional() }).strict();
const size = (params: Record<string, unknown>): number => PoolParams.parse(params).size ?? 20;

const InspectConnectionPool = defineStep({
  name: "InspectConnectionPool",
  description: "Read the pool size in use",
  input: z.object({}).strict(),
  output: z.object({ current: z.number() }).strict(),
  prepare: () => ({}),
  run: async () => ({ output: { current: 10 } }),
});
const ResizeConnectionPool = defineStep({
  name: ${JSON.stringify(o.secondStep ?? "ResizeConnectionPool")},
  description: "Set the new pool size",
  input: z.object({ size: z.number() }).strict(),
  output: z.object({ size: z.number() }).strict(),
  prepare: (view) => ({ size: size(view.params) }),
  run: async (_ctx, input) => ({ output: { size: input.size } }),
  gate: {
    kind: "provision",
    describe: async (_ctx, view) => ({ action: \`Resize the connection pool to \${size(view.params)}\`, why: "asked for", risk: "connections are re-opened", change: {} }),
  },
});

export const ${o.exportName ?? "workflow"} = {
  summary: "tune the connection pool",
  capabilities: [],
  priority: 60,
  intent,
  tool,
  def: {
    id: ${JSON.stringify(o.id ?? ID)},
    title: "Tune connection pool",
    params: PoolParams,
    steps: [InspectConnectionPool, ResizeConnectionPool],
    rollback: async () => ({ restored: [], leftovers: [] }),
  },
};
`,
  );
  writeFileSync(
    join(folder, "intent.ts"),
    `export const intent = {
  signals: [[/\\bconnection pools?\\b|\\bpool size\\b/, 5]],
  sqlScore: 0,
  vocabulary: { triggers: ["connection", "connections"], notTypos: [], notDeployments: ["pool"], things: ["pool"], safeObjects: [] },
  capability: "tune the connection pool (size)",
  listed: 30,
  extract(text) {
    const m = /\\b(\\d+)\\s*connections\\b|\\bpool size (?:of |to )?(\\d+)/.exec(text.lower);
    return { params: m ? { size: Number(m[1] ?? m[2]) } : {}, missing: [], claimed: [] };
  },
};
`,
  );
  writeFileSync(
    join(folder, "tool.ts"),
    `import { z } from "zod";
import { defineTool } from ${project("src/graph/workflows/module.ts")};
import { numberIn, said, withoutNulls } from ${project("src/core/evidence.ts")};

export const tool = defineTool({
  args: z.strictObject({ size: z.number().int().nullable().describe("connections in the pool") }),
  paramNames: ["size"],
  toParams: (args) => withoutNulls(args),
  invented: (params, request) => (typeof params.size === "number" && !numberIn(said(request).text, params.size) ? \`size \${params.size} is not in the request\` : null),
});
`,
  );
  return folder;
}

/** A folder of workflow folders: ES modules, like the project's, with the project's packages reachable from it. */
function workflowsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "honua-workflows-"));
  writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  dirs.push(dir);
  return dir;
}

const dirs: string[] = [];
const { config } = parseConfig(BUILTIN_CONFIG, "built-in");
let dir = "";
/** What the planners answered before the folder was registered (everything derived from the registry was built then). */
let before: { plan: unknown; tool: string };

beforeAll(async () => {
  before = { plan: planOffline(REQUEST, config), tool: JSON.stringify(convertToOpenAITool(planTool()).function.parameters) };
  dir = workflowsDir();
  writeWorkflow(dir);
  await registerWorkflowFolders(dir);
});
afterAll(() => {
  unregisterWorkflow(ID);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("a workflow in a folder of its own, with nothing else edited", () => {
  it("is registered beside the built-in five; what the planners derive is rebuilt when it comes and goes", async () => {
    expect(workflowIds()).toContain(ID);
    expect(workflowIds()).toHaveLength(6);
    expect(before.plan).toEqual({ refuse: expect.stringContaining("isn't one of the changes I make") });
    expect(before.tool).not.toContain(ID);
    expect(planOffline(REQUEST, config)).toMatchObject({ workflow: ID });
    unregisterWorkflow(ID);
    try {
      expect(planOffline(REQUEST, config)).toEqual(before.plan);
      expect(JSON.stringify(convertToOpenAITool(planTool()).function.parameters)).toBe(before.tool);
      expect(Plan().safeParse({ workflow: ID, deployment: "prod", params: {} }).success).toBe(false);
    } finally {
      await registerWorkflowFolders(dir);
    }
    expect(Plan().safeParse({ workflow: ID, deployment: "prod", params: {} }).success).toBe(true);
  });

  it("the offline planner plans a request for it, asks for its deployment, and names it among what it can do", () => {
    expect(planOffline(REQUEST, config)).toEqual({ workflow: ID, deployment: "prod", params: { size: 50 } });
    expect(planOffline("tune the connection pool", config)).toEqual({ clarify: expect.stringMatching(/^I can tune the connection pool, but on which deployment\?/), missing: ["deployment"] });
    expect(capabilities()).toMatch(/change observability \(.*\), or tune the connection pool \(size\)\.$/);
    expect(planOffline("write me a poem", config)).toEqual({ refuse: expect.stringContaining("tune the connection pool (size)") });
    // The built-in workflows plan as before.
    expect(planOffline("add Redis caching to prod", config)).toEqual({ workflow: "add-caching-layer", deployment: "prod", params: { cacheType: "redis" } });
    expect(Plan().safeParse({ workflow: ID, deployment: "prod", params: { size: 5000 } }).success).toBe(false);
    expect(requiredCategories()).toEqual(expect.arrayContaining([ID, `param:${ID}.size`]));
  });

  it("the model's tool schema and prompt include it, strict-compatible, and a model answer for it maps to a plan", async () => {
    const parameters = convertToOpenAITool(planTool()).function.parameters;
    expect(strictViolations(parameters)).toEqual([]);
    expect(JSON.stringify(parameters)).toContain(`"const":"${ID}"`);
    expect(planPromptArgs(config).workflows.at(-1)).toEqual({ id: ID, title: "tune the connection pool", rule: null });

    const fake: FakeOpenAI = await startFakeOpenAI([
      planReply({ kind: "plan", workflow: ID, deploymentAsWritten: "prod", params: { size: 50 } }),
      planReply({ kind: "plan", workflow: ID, deploymentAsWritten: "prod", params: { size: 500 } }),
      planReply({ kind: "clarify", workflow: ID, deploymentAsWritten: null, missing: ["deployment", "size"], question: "How many connections?" }),
    ]);
    try {
      const env = { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "fake-model" };
      const sink = new MemoryCallSink();
      const r = await planRequest(REQUEST, config, env, { sink });
      expect(r).toMatchObject({ planner: "model", fallback: null });
      expect(planOnly(r)).toEqual({ workflow: ID, deployment: "prod", params: { size: 50 } });
      const sent = fake.requests[0]!;
      expect(JSON.stringify(sent.tools?.[0]?.function.parameters)).toContain(ID);
      expect(String(sent.messages[0]?.content)).toContain(`- ${ID}: tune the connection pool`);
      expect(fake.refusals).toEqual([]);
      // A size the user never gave is the model's invention: the rules answer instead.
      const invented = await planRequest(REQUEST, config, env);
      expect(invented).toMatchObject({ planner: "offline", fallback: expect.stringMatching(/size 500 is not in the request/), params: { size: 50 } });
      // Its param names are what a clarifying answer may ask for.
      const asked = await planRequest("tune the connection pool", config, env);
      expect(asked).toMatchObject({ planner: "model", missing: ["deployment", "size"] });
    } finally {
      await fake.close();
    }
  });

  it("the command line plans it, runs it to its gate (exit 3) and approves it to done", () => {
    const t = tempHome();
    dirs.push(t.home);
    const env = { HONUA_AGENT_WORKFLOWS: dir };
    const plan = cli(t.home, ["plan", REQUEST, "--json"], env);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.json()).toEqual({ workflow: ID, deployment: "prod", params: { size: 50 } });
    const run = cli(t.home, ["run", REQUEST, "--as", "carol", "--json"], env);
    expect(run.code, run.stderr).toBe(3);
    const started = run.json() as { run: string; workflow: string; status: string; pending: { step: string; kind: string } };
    expect(started).toMatchObject({ workflow: ID, deployment: "prod", status: "waiting", pending: { step: "ResizeConnectionPool", kind: "provision" } });
    const approved = cli(t.home, ["approve", started.run, "--as", "alice", "--json"], env);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.json()).toMatchObject({ run: started.run, workflow: ID, status: "done", pending: null });
    const transcript = cli(t.home, ["transcript", started.run, "--json"], env).json() as { steps: { name: string; output: unknown }[] };
    expect(transcript.steps.map((s) => [s.name, s.output])).toEqual([["InspectConnectionPool", { current: 10 }], ["ResizeConnectionPool", { size: 50 }]]);
    // Without the folder, the same request is not one of the changes the agent makes.
    const without = cli(t.home, ["plan", REQUEST, "--json"]);
    expect(without.code).toBe(2);
    expect(without.json()).toEqual({ refuse: expect.stringContaining("isn't one of the changes I make") });
  });

  it("the Slack front posts its plan and an approval card, and an approver's click finishes it", async () => {
    const t = tempHome();
    dirs.push(t.home);
    const secret = "8f742231b10e8888abcd99yyyzzz85a5";
    const fake = await SlackFake.start();
    const server = await startServer({
      env: slackTestEnv(t.home, fake.apiUrl, secret), cwd: t.home,
      config: parseConfig({ deployments: { prod: { provider: "sandbox", approvers: ["U0ALICE42"] } } }, "test"),
      port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0,
    });
    try {
      const post = async (body: string, type: string) => {
        const res = await slackPost(server.url, body, type, { secret });
        await server.idle();
        expect(res.status).toBe(200);
      };
      const ts = "1699999999.000001";
      await post(eventBody({ type: "app_mention", user: "U0CAROL42", text: `<@UHONUA> ${REQUEST}`, ts, channel: "C0OPS", event_ts: ts }), JSON_TYPE);
      const thread = fake.thread(ts);
      const plan = thread.find((m) => m.text.startsWith("Plan:"));
      expect(plan?.text).toBe(`Plan: ${ID} on prod, 2 steps, 1 gated`);
      expect(blocksText(plan!)).toMatch(/Plan: Tune connection pool[\s\S]*`size`=50[\s\S]*1\. InspectConnectionPool[\s\S]*2\. ResizeConnectionPool  :lock: _approval_/);
      const cards = thread.filter((m) => JSON.stringify(m.blocks).includes("honua_approve"));
      expect(cards).toHaveLength(1);
      expect(blocksText(cards[0]!)).toMatch(/Resize the connection pool to 50/);
      await post(actionBody({ user: "U0ALICE42", actionId: "honua_approve", value: buttonValue(cards[0]!, "honua_approve"), channel: "C0OPS", messageTs: cards[0]!.ts, threadTs: ts }), FORM);
      expect((await server.engine.runs())[0]).toMatchObject({ workflow: ID, status: "done" });
    } finally {
      await server.close();
      await fake.close();
    }
  });
});

describe("the registry refuses a folder it cannot use, saying why", () => {
  afterEach(() => {
    unregisterWorkflow("tune-connection-pool-two");
  });

  it("a second folder with an id already registered", async () => {
    const other = workflowsDir();
    writeWorkflow(join(other, "copy"));
    await expect(registerWorkflowFolders(join(other, "copy"))).rejects.toThrow(/workflow tune-connection-pool is registered twice/);
  });

  it("a step named like one the builder adds", async () => {
    const other = workflowsDir();
    writeWorkflow(other, { id: "tune-connection-pool-two", secondStep: "Rollback" });
    await expect(registerWorkflowFolders(other)).rejects.toThrow(/workflow tune-connection-pool-two .*duplicate or reserved step name Rollback/);
    expect(workflowIds()).not.toContain("tune-connection-pool-two");
  });

  it("an index.ts that exports no `workflow`", async () => {
    const other = workflowsDir();
    const folder = writeWorkflow(other, { id: "tune-connection-pool-two", exportName: "somethingElse" });
    await expect(registerWorkflowFolders(other)).rejects.toThrow(`${join(folder, "index.ts")} exports no \`workflow\``);
  });

  it("a workflow without the planner's intent", async () => {
    const other = workflowsDir();
    const folder = writeWorkflow(other, { id: "tune-connection-pool-two" });
    writeFileSync(join(folder, "intent.ts"), "export const intent = undefined;\n");
    await expect(registerWorkflowFolders(other)).rejects.toThrow(/workflow tune-connection-pool-two .*has no intent/);
  });
});
