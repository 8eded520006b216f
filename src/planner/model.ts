/**
 * The model planner: one strict tool call (`submit_plan`) per request, validated with the same zod Plan schemas
 * and deployment resolution as the offline planner. Anything that does not validate, times out or errors is
 * answered by the offline planner instead, and the answer says so.
 */
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { ChatOpenAI } from "@langchain/openai";
import { planSystemPrompt, planUserMessage, version as PLAN_PROMPT_VERSION } from "../../prompts/plan.js";
import type { AgentConfig } from "../config.js";
import type { ModelCallRecord } from "./calls.js";
import { callModel, createChatModel, type ModelSettings } from "./llm.js";
import { planOffline } from "./offline.js";
import { Plan, PlanResult, WORKFLOW_IDS, type WorkflowId } from "./plan.js";
import { REFUSAL_TEXT, WORKFLOW_TITLES, clarify, deploymentChoices, resolveAsWritten } from "./resolve.js";
import { PLAN_TOOL, PlanToolArgs } from "./tool.js";

/** What a planner produced, and how. */
export interface PlanAttempt {
  result: PlanResult;
  planner: "model" | "offline";
  /** Why the model's answer was not used (the offline planner answered), or null. */
  fallback: string | null;
  calls: ModelCallRecord[];
}

export interface Planner {
  readonly kind: "model" | "offline";
  plan(request: string, config: AgentConfig): Promise<PlanAttempt>;
}

export class InvalidModelAnswer extends Error {
  override name = "InvalidModelAnswer";
}

const dropNulls = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));

function paramsOf(workflow: WorkflowId, raw: Record<string, unknown>): Record<string, unknown> {
  if (workflow === "upgrade-database-schema") {
    const ddl = raw.ddl as string[] | null;
    const description = raw.description as string | null;
    const changes = ddl && ddl.length > 0 ? ddl.map((s) => s.trim().replace(/;+$/, "").trim()).filter(Boolean) : description;
    return changes === null || changes === undefined ? {} : { changes };
  }
  if (workflow === "modify-observability") {
    const changes = raw.changes as { kind: string; action: string; name: string | null; specJson: string | null }[] | null;
    if (!changes) return {};
    return {
      changes: changes.map((c) => {
        let spec: unknown;
        if (c.specJson !== null && c.specJson.trim() !== "") {
          try {
            spec = JSON.parse(c.specJson);
          } catch {
            throw new InvalidModelAnswer(`specJson is not JSON: ${c.specJson.slice(0, 80)}`);
          }
          if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new InvalidModelAnswer("specJson is not a JSON object");
        }
        return dropNulls({ kind: c.kind, action: c.action, name: c.name, spec: spec ?? null });
      }),
    };
  }
  return dropNulls(raw);
}

/** Maps the tool call onto a PlanResult; throws InvalidModelAnswer when it does not fit the contract. */
export function fromToolArgs(rawArgs: unknown, request: string, config: AgentConfig): PlanResult {
  const parsed = PlanToolArgs.safeParse(rawArgs);
  if (!parsed.success) throw new InvalidModelAnswer(`tool arguments: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const r = parsed.data.result;
  if (r.kind === "refuse") return PlanResult.parse({ refuse: REFUSAL_TEXT[r.reason] });
  if (r.kind === "clarify") {
    const workflow = r.workflow;
    const allowed = new Set(["deployment", "workflow", ...(workflow ? paramNames(workflow) : [])]);
    const unknownParams = r.missing.filter((m) => !allowed.has(m));
    if (r.missing.length === 0 || unknownParams.length > 0) throw new InvalidModelAnswer(`clarify names no known param: ${JSON.stringify(r.missing)}`);
    if (r.missing.includes("workflow")) {
      return PlanResult.parse({ clarify: r.question, missing: ["workflow"] });
    }
    const dep = resolveAsWritten(request, r.deploymentAsWritten, config);
    const others = r.missing.filter((m) => m !== "deployment").map((param) => ({ param, question: r.question }));
    // The model may ask for a param while the deployment is fine; only a missing or unknown deployment adds that question.
    return clarify(config, workflow, r.missing.includes("deployment") && dep.kind === "known" ? { kind: "none" } : dep, others);
  }
  const workflow = r.workflow;
  const params = paramsOf(workflow, r.params as Record<string, unknown>);
  const dep = resolveAsWritten(request, r.deploymentAsWritten, config);
  if (dep.kind !== "known") return clarify(config, workflow, dep, []);
  const plan = Plan.safeParse({ workflow, deployment: dep.name, params });
  if (!plan.success) throw new InvalidModelAnswer(`plan: ${plan.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return plan.data;
}

const PARAM_NAMES: Record<WorkflowId, string[]> = {
  "add-caching-layer": ["cacheType", "ttlSeconds", "rolloutSteps"],
  "modify-metadata-storage": ["fromStore", "toStore", "batchSize"],
  "add-storage-backend": ["backend", "region", "bucket", "path", "placement"],
  "upgrade-database-schema": ["changes"],
  "modify-observability": ["changes"],
};
export const paramNames = (w: WorkflowId): string[] => PARAM_NAMES[w];

export const planPromptArgs = (config: AgentConfig) => ({
  deployments: deploymentChoices(config),
  workflows: WORKFLOW_IDS.map((id) => ({ id, title: WORKFLOW_TITLES[id] })),
});

export class ModelPlanner implements Planner {
  readonly kind = "model" as const;
  private readonly chat: ChatOpenAI;

  constructor(private readonly settings: ModelSettings) {
    this.chat = createChatModel(settings);
  }

  async plan(request: string, config: AgentConfig): Promise<PlanAttempt> {
    const out = await callModel({
      chat: this.chat,
      settings: this.settings,
      task: "plan",
      promptVersion: PLAN_PROMPT_VERSION,
      messages: [new SystemMessage(planSystemPrompt(planPromptArgs(config))), new HumanMessage(planUserMessage(request))],
      tools: [PLAN_TOOL],
      toolChoice: PLAN_TOOL.name,
    });
    const offline = (why: string, record: ModelCallRecord): PlanAttempt => ({
      result: planOffline(request, config),
      planner: "offline",
      fallback: why,
      calls: [record],
    });
    if (!out.ok) return offline(`the model ${out.reason === "timeout" ? "timed out" : "failed"} (${out.detail})`, out.record);
    const call = out.message.tool_calls?.find((c) => c.name === PLAN_TOOL.name);
    try {
      if (!call) throw new InvalidModelAnswer("the model answered without calling submit_plan");
      const result = fromToolArgs(call.args, request, config);
      return { result, planner: "model", fallback: null, calls: [out.record] };
    } catch (e) {
      if (!(e instanceof InvalidModelAnswer)) throw e;
      return offline(`the model's answer did not validate (${e.message})`, { ...out.record, outcome: "invalid", detail: e.message.slice(0, 500) });
    }
  }
}
