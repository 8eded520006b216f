/**
 * The thread conversation: questions and control requests about one run. With a model, a typed tool-calling
 * loop (bindTools, strict schemas, a hard cap on model calls per turn); without one, a rule-based intent matcher
 * over the same tools. Neither can approve, reject or skip a gate: there is no such tool.
 */
import { requestTooLong } from "../core/text.js";
import { AIMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { converseSystemPrompt, converseUserMessage, version as CONVERSE_PROMPT_VERSION } from "../../prompts/converse.js";
import type { Engine } from "../engine.js";
import { AgentError } from "../core/errors.js";
import { approverList } from "../graph/gates.js";
import { SqlCallLog, type ModelCallSink } from "../planner/calls.js";
import { callModel, createChatModel, modelSettings, printable, type ModelSettings } from "../planner/llm.js";
import { execute, type ExecutorDeps } from "./executors.js";
import { matchIntent, runNamed, userAskedFor } from "./intents.js";
import { firstTime } from "./notices.js";
import { HELP, decisionDecline, renderResult } from "./render.js";
import { TOOL_DEFS, boundTools, isToolName, type ToolCall, type ToolName, type ToolResult } from "./tools.js";

export { matchIntent } from "./intents.js";
export { TOOL_DEFS, TOOL_NAMES, CONTROL_TOOLS, type ToolName } from "./tools.js";

export interface ConverseInput {
  run: string;
  user: string;
  /** Groups whose membership the caller verified (e.g. Slack user groups); matched against approvers. */
  groups: string[];
  /** The thread message: untrusted text. */
  text: string;
}

export interface ConverseOptions {
  env?: NodeJS.ProcessEnv;
  /** Model settings that win over OPENAI_*; `offline: true` forces the rule-based answers. */
  model?: Partial<ModelSettings> & { offline?: boolean };
  /** Hard cap on model calls in one turn (default 3). */
  maxModelCalls?: number;
  /** Where model calls are recorded; the agent's database by default. */
  sink?: ModelCallSink;
}

/** A tool the turn ran (or refused to run), for fronts that refresh cards after a control. */
export interface ConverseAction {
  tool: ToolName;
  args: unknown;
  kind: "read" | "control";
  ok: boolean;
  detail: string;
  /** The run a control started (a revert), for fronts that show it. */
  started?: string;
}

export interface ConverseReply {
  text: string;
  actions: ConverseAction[];
  answeredBy: "model" | "rules";
  modelCalls: number;
}

export const DEFAULT_MAX_MODEL_CALLS = 3;
/** Tool calls run in one turn, whatever the model asks for: each one reads the run or the deployment. */
export const MAX_TOOL_CALLS = 12;
export const RULES_NOTICE = "(Answers here are rule-based: no model is configured.)";

const actionOf = (call: ToolCall, result: ToolResult): ConverseAction => ({
  tool: call.tool,
  args: call.args,
  kind: TOOL_DEFS[call.tool].control ? "control" : "read",
  ok: result.ok,
  detail: result.ok ? renderResult(call, result).split("\n")[0]! : result.error,
  ...(result.ok && call.tool === "revert_run" && typeof result.data.revert === "string" ? { started: result.data.revert } : {}),
});

/** Controls already run (or refused) in this turn, with their results: a control acts at most once per message. */
type Ran = Map<ToolName, { call: ToolCall; result: ToolResult }>;

async function answerByRules(deps: ExecutorDeps, text: string, ran: Ran = new Map()): Promise<{ text: string; actions: ConverseAction[] }> {
  const intent = matchIntent(text);
  if (intent.kind === "help") return { text: HELP, actions: [] };
  if (intent.kind === "decision") {
    const s = await deps.engine.summary(deps.run);
    const status = s.pending ? ` The run is ${s.status} at ${s.pending.step} (${s.pending.kind}).` : ` The run is ${s.status}.`;
    return { text: decisionDecline(approverList(deps.engine.config.config, s.deployment)) + status, actions: [] };
  }
  const parts: string[] = [];
  const actions: ConverseAction[] = [];
  for (const c of intent.calls) {
    // A control the model already ran this turn is reported, not run again: a second rollback or cancel would
    // act on whatever gate the first one left (e.g. decide the cleanup gate nobody was shown).
    const earlier = TOOL_DEFS[c.tool].control ? ran.get(c.tool) : undefined;
    if (earlier) {
      parts.push(renderResult(earlier.call, earlier.result));
      continue;
    }
    const { call, result } = await execute(deps, { tool: c.tool, args: c.args });
    const typed = call ?? c;
    parts.push(renderResult(typed, result));
    actions.push(actionOf(typed, result));
  }
  return { text: parts.join("\n\n"), actions };
}

export async function converse(engine: Engine, input: ConverseInput, opts: ConverseOptions = {}): Promise<ConverseReply> {
  const env = opts.env ?? process.env;
  const deps: ExecutorDeps = { engine, run: input.run, actor: { user: input.user, groups: input.groups }, env };
  const tooLong = requestTooLong(input.text);
  if (tooLong) return { text: `I didn't read that: ${tooLong}.`, actions: [], answeredBy: "rules", modelCalls: 0 };
  try {
    await engine.summary(input.run);
  } catch (e) {
    if (e instanceof AgentError && e.code === "not-found") return { text: `I don't know run ${input.run}.`, actions: [], answeredBy: "rules", modelCalls: 0 };
    throw e;
  }
  const settings = opts.model?.offline ? null : modelSettings(env, opts.model);
  if (settings && matchIntent(input.text).kind === "decision") {
    // Asked to approve, reject or skip a gate: the rules answer (who may decide), so no model wording can read
    // like a decision that was never made.
    const answer = await answerByRules(deps, input.text);
    return { text: answer.text, actions: answer.actions, answeredBy: "rules", modelCalls: 0 };
  }
  if (!settings) {
    const answer = await answerByRules(deps, input.text);
    const notice = (await firstTime(engine.store.sql, input.run, "rules-notice", new Date().toISOString())) ? `${RULES_NOTICE}\n` : "";
    return { text: `${notice}${answer.text}`, actions: answer.actions, answeredBy: "rules", modelCalls: 0 };
  }
  const sink = opts.sink ?? (await SqlCallLog.open(engine.store.sql));
  const cap = opts.maxModelCalls !== undefined && Number.isFinite(opts.maxModelCalls) ? Math.max(1, Math.floor(opts.maxModelCalls)) : DEFAULT_MAX_MODEL_CALLS;
  return modelTurn(deps, input, settings, sink, cap);
}

/** Whether a revert's run argument is null (this run) or the run the user's own message names. */
function namedByUser(args: unknown, text: string): boolean {
  const named = args && typeof args === "object" && "run" in args ? (args as { run: unknown }).run : null;
  return named === null || named === undefined || (typeof named === "string" && named.toLowerCase() === runNamed(text));
}

async function modelTurn(deps: ExecutorDeps, input: ConverseInput, settings: ModelSettings, sink: ModelCallSink, maxCalls: number): Promise<ConverseReply> {
  const chat = createChatModel(settings);
  const tools = boundTools();
  const messages: BaseMessage[] = [
    new SystemMessage(converseSystemPrompt({ tools: tools.map((t) => ({ name: t.name, description: t.description })), maxModelCalls: maxCalls })),
    new HumanMessage(converseUserMessage({ run: input.run, user: input.user, message: input.text })),
  ];
  const actions: ConverseAction[] = [];
  const done: { call: ToolCall; result: ToolResult }[] = [];
  const ran: Ran = new Map();
  let toolCalls = 0;
  const fromTools = () => done.map((d) => renderResult(d.call, d.result)).join("\n\n");
  for (let i = 0; i < maxCalls; i++) {
    const out = await callModel({ chat, settings, task: "converse", promptVersion: CONVERSE_PROMPT_VERSION, messages, tools, run: input.run });
    await sink.record(out.record);
    if (!out.ok) {
      const rules = await answerByRules(deps, input.text, ran);
      return {
        text: `(The model ${out.reason === "timeout" ? "timed out" : "failed"}: ${out.detail}. This answer is rule-based.)\n${rules.text}`,
        actions: [...actions, ...rules.actions], answeredBy: "rules", modelCalls: i + 1,
      };
    }
    const calls = out.message.tool_calls ?? [];
    if (calls.length === 0) {
      const text = printable(typeof out.message.content === "string" ? out.message.content : out.message.text);
      return { text: text.trim() || fromTools() || HELP, actions, answeredBy: "model", modelCalls: i + 1 };
    }
    messages.push(new AIMessage({ content: out.message.content, tool_calls: calls }));
    for (const tc of calls) {
      let result: ToolResult;
      if (toolCalls++ >= MAX_TOOL_CALLS) {
        result = { ok: false, code: "limit", error: `${tc.name} was not run: at most ${MAX_TOOL_CALLS} tool calls per message` };
      } else if (isToolName(tc.name) && TOOL_DEFS[tc.name].control && !userAskedFor(input.text, tc.name)) {
        // Only the user's own words may ask for a control; text inside tool results or metrics never can.
        result = { ok: false, code: "forbidden", error: `${tc.name} was not run: the message did not ask for it` };
        actions.push({ tool: tc.name, args: tc.args, kind: "control", ok: false, detail: result.error });
      } else if (tc.name === "revert_run" && !namedByUser(tc.args, input.text)) {
        // A revert acts on this run or on one the user named: never on a run id the model found elsewhere.
        result = { ok: false, code: "forbidden", error: `${tc.name} was not run: the message did not name that run` };
        actions.push({ tool: tc.name, args: tc.args, kind: "control", ok: false, detail: result.error });
      } else if (isToolName(tc.name) && TOOL_DEFS[tc.name].control && ran.has(tc.name)) {
        // Once per message: a repeated rollback or cancel would act on the gate the first one left behind.
        result = { ok: false, code: "duplicate", error: `${tc.name} was not run again: a control runs once per message` };
        actions.push({ tool: tc.name, args: tc.args, kind: "control", ok: false, detail: result.error });
      } else {
        const r = await execute(deps, { tool: tc.name, args: tc.args });
        result = r.result;
        if (r.call) {
          done.push({ call: r.call, result });
          actions.push(actionOf(r.call, result));
          if (TOOL_DEFS[r.call.tool].control) ran.set(r.call.tool, { call: r.call, result });
        }
      }
      messages.push(new ToolMessage({ content: JSON.stringify(result), tool_call_id: tc.id ?? `${tc.name}-${i}` }));
    }
  }
  return {
    text: `${fromTools() || HELP}\n(Assembled from the tool results: the limit of ${maxCalls} model calls for one answer was reached.)`,
    actions, answeredBy: "model", modelCalls: maxCalls,
  };
}
