import type { ChatOpenAI } from "@langchain/openai";
import type { AIMessage, BaseMessage } from "@langchain/core/messages";
import type { BindToolsInput } from "@langchain/core/language_models/chat_models";
import { newCallId, type ModelCallRecord } from "./calls.js";

/** How to reach an OpenAI-compatible model: OpenAI itself, or vLLM, Ollama, LM Studio through a base URL. */
export interface ModelSettings {
  apiKey: string;
  baseURL: string | undefined;
  model: string;
  timeoutMs: number;
}

export const DEFAULT_MODEL = "gpt-4.1-mini";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const MAX_TIMEOUT_MS = 600_000;

/**
 * The model settings, or null when none is configured (then the rule-based planner and intent matcher answer).
 * Decided before any client is constructed: ChatOpenAI without a key constructs fine and fails on first call.
 * Explicit settings win over the environment.
 */
export function modelSettings(env: NodeJS.ProcessEnv, explicit: Partial<ModelSettings> = {}): ModelSettings | null {
  const apiKey = explicit.apiKey ?? env.OPENAI_API_KEY;
  const baseURL = explicit.baseURL ?? env.OPENAI_BASE_URL;
  if (!apiKey && !baseURL) return null;
  // A timer cannot wait longer than 2^32-1 ms (and the HTTP client's 2^31-1): a larger value would fail or fire at
  // once on every call, so anything outside 1 ms..10 min is the default.
  const valid = (ms: number | undefined): ms is number => ms !== undefined && Number.isFinite(ms) && ms > 0 && ms <= MAX_TIMEOUT_MS;
  const timeout = Number(env.OPENAI_TIMEOUT_MS);
  return {
    // Local OpenAI-compatible servers accept any key; the client refuses an empty one.
    apiKey: apiKey || "local-no-key",
    baseURL: baseURL || undefined,
    model: explicit.model ?? env.OPENAI_MODEL ?? DEFAULT_MODEL,
    timeoutMs: valid(explicit.timeoutMs) ? explicit.timeoutMs : valid(timeout) ? timeout : DEFAULT_TIMEOUT_MS,
  };
}

/** The client, its package imported on first use (it is large; commands without a model never load it). */
export async function createChatModel(s: ModelSettings): Promise<ChatOpenAI> {
  const { ChatOpenAI } = await import("@langchain/openai");
  return new ChatOpenAI({
    model: s.model,
    apiKey: s.apiKey,
    temperature: 0,
    timeout: s.timeoutMs,
    // A failed call falls back to the rules at once; retrying would only delay the answer.
    maxRetries: 0,
    configuration: s.baseURL ? { baseURL: s.baseURL } : {},
  });
}

export type CallOutcome =
  | { ok: true; message: AIMessage; record: ModelCallRecord }
  | { ok: false; reason: "timeout" | "error"; detail: string; record: ModelCallRecord };

/**
 * One model call with tools bound, timed, with the record of it (model, prompt version, tokens, latency) whatever
 * happens. The caller stores the record once it knows whether the answer validated.
 */
export async function callModel(args: {
  chat: ChatOpenAI | Promise<ChatOpenAI>;
  settings: ModelSettings;
  task: ModelCallRecord["task"];
  promptVersion: string;
  messages: BaseMessage[];
  tools: BindToolsInput[];
  toolChoice?: string;
  run?: string | null;
}): Promise<CallOutcome> {
  const chat = await args.chat;
  const started = Date.now();
  const base = {
    id: newCallId(), run: args.run ?? null, task: args.task, model: args.settings.model, promptVersion: args.promptVersion,
    at: new Date(started).toISOString(),
  };
  const bound = chat.bindTools(args.tools, { strict: true, ...(args.toolChoice ? { tool_choice: args.toolChoice } : {}) });
  let result: CallOutcome;
  try {
    const message = await bound.invoke(args.messages, { signal: AbortSignal.timeout(args.settings.timeoutMs) });
    const u = message.usage_metadata;
    result = {
      ok: true,
      message,
      record: {
        ...base, inputTokens: u?.input_tokens ?? null, outputTokens: u?.output_tokens ?? null, totalTokens: u?.total_tokens ?? null,
        latencyMs: Date.now() - started, outcome: "ok", detail: null,
      },
    };
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    const timedOut = e instanceof Error && (e.name === "TimeoutError" || e.name === "AbortError" || /timed? ?out|abort/i.test(detail));
    const reason = timedOut ? "timeout" : "error";
    result = {
      ok: false, reason, detail: timedOut ? `no answer within ${args.settings.timeoutMs} ms` : detail.slice(0, 300),
      record: { ...base, inputTokens: null, outputTokens: null, totalTokens: null, latencyMs: Date.now() - started, outcome: reason, detail: detail.slice(0, 500) },
    };
  }
  return result;
}

/**
 * Model-written text as shown to people: without control characters (terminal escapes could redraw the screen or
 * fake lines such as "approved by alice") or bidirectional overrides (which reorder what is read).
 */
export const printable = (s: string): string => s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "");
