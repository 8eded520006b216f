/**
 * Model benchmark, run on demand (not part of the tests):
 *
 *   npx tsx bench/model.bench.ts > model-bench.json
 *
 * Prints ONE JSON object to stdout (progress on stderr). Both designs run the real ChatOpenAI client against the
 * OpenAI-compatible fake (test/fixtures/fake-openai.ts) with recorded answers; tokens are the fake's count
 * (4 characters a token of the request and the answer), so the numbers compare designs, not providers.
 *
 *   planThenExecute: the agent's design. One `submit_plan` call per request; the workflow then runs as a
 *     LangGraph graph of typed steps with no model in the loop (add-caching-layer is run end to end in the
 *     sandbox to show it: model calls during the run are counted from the fake's request log).
 *   naiveLoop: a tool-calling loop that binds every step as a tool and lets the model call them one by one,
 *     feeding each step's result back (the whole history is resent each call). Step results for
 *     add-caching-layer are the real outputs of the sandbox run; the other workflows cannot run in this version,
 *     so their step results are a small stand-in (flagged `syntheticStepResults`).
 *
 * Target: <= 2 model calls per run for plan-then-execute.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HumanMessage, SystemMessage, ToolMessage, AIMessage, type BaseMessage } from "@langchain/core/messages";
import { z } from "zod";
import { BUILTIN_CONFIG, parseConfig } from "../src/config.js";
import { converse } from "../src/conversation/index.js";
import { Engine } from "../src/engine.js";
import { requireWorkflow, workflowIds } from "../src/graph/workflows/registry.js";
import { EVALS_DIR, loadRequests } from "../src/evals/index.js";
import { callModel, createChatModel } from "../src/planner/llm.js";
import { MemoryCallSink, ModelPlanner, deploymentChoices, modelSettings, planOnly, planRequest } from "../src/planner/index.js";
import { isPlan } from "../src/planner/plan.js";
import { recordedPlanArgs, requestOf, startFakeOpenAI, type ChatRequestBody, type FakeReply } from "../test/fixtures/fake-openai.js";

const log = (s: string) => process.stderr.write(`${s}\n`);
const { config } = parseConfig(BUILTIN_CONFIG, "built-in");
const cases = loadRequests(join(EVALS_DIR, "requests.jsonl"));
const byRequest = new Map(cases.map((c) => [c.request, c.expected]));
const REQUESTS_PER_WORKFLOW = 5;

/** The fake answers a planning call from the recorded expectations, and a naive-loop call with the next step. */
let naiveSteps: string[] = [];
const script = (body: ChatRequestBody): FakeReply => {
  if (body.tools?.some((t) => t.function.name === "submit_plan")) {
    return { toolCalls: [{ name: "submit_plan", args: recordedPlanArgs(requestOf(body), byRequest.get(requestOf(body)) as Record<string, unknown>, deploymentChoices(config)) }] };
  }
  if (body.tools?.some((t) => t.function.name === "metrics")) {
    // The conversation: look once (one tool), then answer.
    return body.messages.some((m) => m.role === "tool") ? { content: "p95 is 180 ms, hit ratio 86%; no action needed." } : { toolCalls: [{ name: "run_status", args: {} }, { name: "metrics", args: {} }] };
  }
  const done = body.messages.filter((m) => m.role === "tool").length;
  const next = naiveSteps[done];
  return next ? { toolCalls: [{ name: next, args: { reason: `step ${done + 1} of ${naiveSteps.length}` } }] } : { content: "All steps completed." };
};

const fake = await startFakeOpenAI(script);
const settings = modelSettings({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "bench-fake" })!;
const home = mkdtempSync(join(tmpdir(), "honua-model-bench-"));
const engine = await Engine.open({ env: { ...process.env, HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: "2026-11-26T00:00:00Z", HONUA_SANDBOX_FAULTS: "" }, cwd: home });

const stats = (xs: number[]) => ({ mean: Number((xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)).toFixed(1)), max: Math.max(...xs) });

// ---- plan-then-execute
const planner = new ModelPlanner(settings);
const planThenExecute: Record<string, unknown> = {};
let cachingOutputs: Record<string, unknown> = {};
for (const wf of workflowIds()) {
  const sample = cases.filter((c) => isPlan(c.expected) && c.expected.workflow === wf).slice(0, REQUESTS_PER_WORKFLOW);
  const calls: number[] = [];
  const tokens: number[] = [];
  let duringRun: number | null = null;
  for (const c of sample) {
    const sink = new MemoryCallSink();
    const planned = await planRequest(c.request, config, {}, { planner, sink });
    const plan = planOnly(planned);
    let runCalls = 0;
    if (wf === "add-caching-layer" && isPlan(plan) && duringRun === null) {
      const before = fake.requests.length;
      let s = await engine.start(plan, "carol", c.request);
      while (s.pending) s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
      runCalls = fake.requests.length - before;
      duringRun = runCalls;
      const tr = await engine.transcript(s.run);
      cachingOutputs = Object.fromEntries(tr.steps.map((st) => [st.name, st.output]));
      log(`add-caching-layer ran to ${s.status} with ${runCalls} model calls during the run`);
    }
    calls.push(sink.records.length + runCalls);
    tokens.push(sink.records.reduce((a, r) => a + (r.totalTokens ?? 0), 0));
  }
  planThenExecute[wf] = { requests: sample.length, modelCallsPerRun: stats(calls), tokensPerRun: stats(tokens), ...(duringRun !== null ? { modelCallsDuringExecution: duringRun } : {}) };
}

// ---- naive loop: every step a tool
const naiveLoop: Record<string, unknown> = {};
const chat = createChatModel(settings);
for (const wf of workflowIds()) {
  const def = requireWorkflow(wf).def;
  naiveSteps = def.steps.map((s) => s.name);
  const tools = def.steps.map((s) => ({ name: s.name, description: s.description, schema: z.strictObject({ reason: z.string().nullable() }) }));
  const request = cases.find((c) => isPlan(c.expected) && c.expected.workflow === wf)!.request;
  const messages: BaseMessage[] = [new SystemMessage(`Run the ${wf} workflow for the request by calling its step tools in order.`), new HumanMessage(JSON.stringify({ request }))];
  let calls = 0;
  let tokens = 0;
  for (let i = 0; i < 40; i++) {
    const out = await callModel({ chat, settings, task: "plan", promptVersion: "naive-loop", messages, tools });
    calls++;
    tokens += out.record.totalTokens ?? 0;
    if (!out.ok) throw new Error(out.detail);
    const tcs = out.message.tool_calls ?? [];
    if (tcs.length === 0) break;
    messages.push(new AIMessage({ content: out.message.content, tool_calls: tcs }));
    for (const tc of tcs) {
      const result = wf === "add-caching-layer" ? cachingOutputs[tc.name] ?? null : { step: tc.name, status: "done" };
      messages.push(new ToolMessage({ content: JSON.stringify(result), tool_call_id: tc.id ?? tc.name }));
    }
  }
  naiveLoop[wf] = { modelCallsPerRun: calls, tokensPerRun: tokens, ...(wf === "add-caching-layer" ? {} : { syntheticStepResults: true }) };
}

// ---- a thread question
const first = (await engine.runs())[0]!;
const before = fake.requests.length;
const sink = new MemoryCallSink();
const reply = await converse(engine, { run: first.run, user: "carol", groups: [], text: "how's it doing?" }, { env: { OPENAI_BASE_URL: fake.url, OPENAI_MODEL: "bench-fake" }, sink });
const threadQuestion = { modelCalls: fake.requests.length - before, tokens: sink.records.reduce((a, r) => a + (r.totalTokens ?? 0), 0), answeredBy: reply.answeredBy };

const maxPlanCalls = Math.max(...Object.values(planThenExecute).map((v) => (v as { modelCallsPerRun: { max: number } }).modelCallsPerRun.max));
process.stdout.write(
  `${JSON.stringify(
    {
      server: "OpenAI-compatible fake with recorded answers (test/fixtures/fake-openai.ts); real ChatOpenAI 1.5.8 client",
      tokenCounting: "ceil(chars / 4) of request messages + tool schemas, and of the answer",
      planThenExecute,
      naiveLoop,
      threadQuestion,
      target: { maxModelCallsPerRun: 2, measuredMax: maxPlanCalls, met: maxPlanCalls <= 2 },
      strictSchemaRefusals: fake.refusals.length,
    },
    null,
    2,
  )}\n`,
);
await engine.close();
await fake.close();
rmSync(home, { recursive: true, force: true });
