/**
 * The conversation's tools: names, descriptions and strict zod schemas, apart from their executors.
 * Read tools look; control tools call the engine's pause / resume / cancel / rollback request, which check who
 * may. There is deliberately no tool that approves, rejects or skips a gate: decisions only come from the
 * approval path (buttons, `honua-agent approve|reject`) under the deployment's approver policy.
 */
import { z } from "zod";

const reason = z.string().nullable().describe("the user's reason in their words, or null");

export const TOOL_DEFS = {
  run_status: {
    description: "Where the run stands: status, outcome, the gate or pause it is waiting at (why, risk, approvers, expiry).",
    schema: z.strictObject({}),
    control: false,
  },
  metrics: {
    description: "Serving metrics: now (p95 latency, error rate, cache hit ratio, origin load, cost) and as known at each decision.",
    schema: z.strictObject({}),
    control: false,
  },
  plan_and_diff: {
    description: "The plan (workflow, deployment, params), the design chosen, and the config diff applied or proposed.",
    schema: z.strictObject({}),
    control: false,
  },
  transcript_excerpt: {
    description: "The last steps and decisions of the run.",
    schema: z.strictObject({ last: z.number().int().min(1).max(30).nullable().describe("how many steps, default 8") }),
    control: false,
  },
  deployments: {
    description: "Configured deployments: aliases, provider, approvers, and which run holds each one's lock.",
    schema: z.strictObject({}),
    control: false,
  },
  cost: {
    description: "Estimated cost impact of the change and the deployment's monthly cost now, by component.",
    schema: z.strictObject({}),
    control: false,
  },
  pause_run: {
    description: "Pause the run before its next step (requester or approver).",
    schema: z.strictObject({ reason }),
    control: true,
  },
  resume_run: {
    description: "Continue a paused run (requester or approver); later gates are still asked.",
    schema: z.strictObject({}),
    control: true,
  },
  cancel_run: {
    description: "Cancel the run and restore what it changed (requester or approver).",
    schema: z.strictObject({ reason }),
    control: true,
  },
  request_rollback: {
    description: "Roll the change back. From an approver it acts; from anyone else it becomes a gate an approver decides.",
    schema: z.strictObject({ reason }),
    control: true,
  },
  revert_run: {
    description:
      "Undo a finished (done) run from its journal: starts a new run of its deployment that puts back traffic, config and what it created, behind the same gates. This run unless the user named another run id. Approvers of the deployment only.",
    schema: z.strictObject({ run: z.string().nullable().describe("the run id (run-...) the user named, or null for this run") }),
    control: true,
  },
} as const;

export type ToolName = keyof typeof TOOL_DEFS;
export const TOOL_NAMES = Object.keys(TOOL_DEFS) as ToolName[];
export const CONTROL_TOOLS = TOOL_NAMES.filter((n) => TOOL_DEFS[n].control);
export type ToolArgs<N extends ToolName> = z.infer<(typeof TOOL_DEFS)[N]["schema"]>;

export const isToolName = (s: string): s is ToolName => s in TOOL_DEFS;

/** The tools as LangChain tool definitions, for `bindTools(..., { strict: true })`. */
export const boundTools = () => TOOL_NAMES.map((name) => ({ name, description: TOOL_DEFS[name].description, schema: TOOL_DEFS[name].schema }));

/** A tool call the conversation wants to make, typed by tool. */
export type ToolCall = { [N in ToolName]: { tool: N; args: ToolArgs<N> } }[ToolName];

/** What an executor returns; errors are readable results, not exceptions, so the model (or the rules) can say them. */
export type ToolResult = { ok: true; data: Record<string, unknown> } | { ok: false; code: string; error: string };
