/**
 * The model planner: one strict tool call (`submit_plan`) per request, validated with the same zod Plan schemas
 * and deployment resolution as the offline planner. Anything that does not validate, times out or errors is
 * answered by the offline planner instead, and the answer says so.
 */
import { describeIssues } from "../core/errors.js";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import type { ChatOpenAI } from "@langchain/openai";
import { planSystemPrompt, planUserMessage, version as PLAN_PROMPT_VERSION } from "../../prompts/plan.js";
import type { AgentConfig } from "../config.js";
import type { ModelCallRecord } from "./calls.js";
import { callModel, createChatModel, printable, type ModelSettings } from "./llm.js";
import { InvalidModelAnswer } from "../core/evidence.js";
import { planOffline } from "./offline.js";
import { Clarify, Plan, isPlan, type PlanResult, type WorkflowId } from "./plan.js";
import { listed, plannableWorkflow, refusalText } from "./registered.js";
import { clarify, deploymentChoices, mentioned, resolveAsWritten } from "./resolve.js";
import { PLAN_TOOL_NAME, PlanToolArgs, planTool } from "./tool.js";

export { InvalidModelAnswer };

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

/** Known deployments the request names by a name or alias. */
const namedDeployments = (request: string, config: AgentConfig): string[] =>
  Object.entries(config.deployments).filter(([n, d]) => [n, ...d.aliases].some((w) => mentioned(request, w))).map(([n]) => n);

/** Maps the tool call onto a PlanResult; throws InvalidModelAnswer when it does not fit the contract. */
export function fromToolArgs(rawArgs: unknown, request: string, config: AgentConfig): PlanResult {
  const parsed = PlanToolArgs().safeParse(rawArgs);
  if (!parsed.success) throw new InvalidModelAnswer(`tool arguments: ${describeIssues(parsed.error)}`);
  const r = parsed.data.result;
  if (r.kind === "refuse") return { refuse: refusalText(r.reason) };
  if (r.kind === "clarify" && printable(r.question).trim() === "") throw new InvalidModelAnswer("clarify has an empty question");
  if (r.kind === "clarify") {
    r.question = printable(r.question).trim();
    const workflow = r.workflow;
    const allowed = new Set(["deployment", "workflow", ...(workflow ? paramNames(workflow) : [])]);
    const unknownParams = r.missing.filter((m) => !allowed.has(m));
    if (r.missing.length === 0 || unknownParams.length > 0) throw new InvalidModelAnswer(`clarify names no known param: ${JSON.stringify(r.missing)}`);
    if (r.missing.includes("workflow")) {
      return Clarify.parse({ clarify: r.question, missing: ["workflow"] });
    }
    const dep = resolveAsWritten(request, r.deploymentAsWritten, config);
    const others = r.missing.filter((m) => m !== "deployment").map((param) => ({ param, question: r.question }));
    // The model may ask for a param while the deployment is fine; only a missing or unknown deployment adds that question.
    return clarify(config, workflow, r.missing.includes("deployment") && dep.kind === "known" ? { kind: "none" } : dep, others);
  }
  const workflow = r.workflow;
  const { params, missing: detail, invented } = plannableWorkflow(workflow).tool.read(r.params, request);
  const dep = resolveAsWritten(request, r.deploymentAsWritten, config);
  if (dep.kind !== "known") return clarify(config, workflow, dep, detail ? [detail] : []);
  // The rules are the floor: what they refuse as destructive is not planned, and when the request names several
  // deployments the model may only pick the one the rules pick (text steering it to another one is not a choice).
  const rules = planOffline(request, config);
  if ("refuse" in rules && rules.refuse === refusalText("destructive")) throw new InvalidModelAnswer("the request is destructive; it is refused, not planned");
  // Two changes in one request: the model may not pick one of them silently (the rules ask which comes first).
  if ("missing" in rules && rules.missing.includes("workflow")) throw new InvalidModelAnswer("the request asks for more than one change; the model planned one of them");
  if (namedDeployments(request, config).length > 1 && !(isPlan(rules) && rules.deployment === dep.name)) {
    return clarify(config, workflow, { kind: "none" }, detail ? [detail] : []);
  }
  if (invented) throw new InvalidModelAnswer(invented);
  if (detail) return clarify(config, workflow, dep, [detail]);
  const plan = Plan().safeParse({ workflow, deployment: dep.name, params });
  if (!plan.success) throw new InvalidModelAnswer(`plan: ${describeIssues(plan.error)}`);
  return plan.data;
}

export const paramNames = (w: WorkflowId): readonly string[] => plannableWorkflow(w).tool.paramNames;

/** The workflows and their argument rules as the planning prompt lists them. */
export const planPromptArgs = (config: AgentConfig) => ({
  deployments: deploymentChoices(config),
  workflows: listed().map((p) => ({ id: p.id, title: p.title, rule: p.tool.promptRule })),
});

export class ModelPlanner implements Planner {
  readonly kind = "model" as const;
  private chat: Promise<ChatOpenAI> | undefined;

  constructor(private readonly settings: ModelSettings) {}

  async plan(request: string, config: AgentConfig): Promise<PlanAttempt> {
    const out = await callModel({
      chat: (this.chat ??= createChatModel(this.settings)),
      settings: this.settings,
      task: "plan",
      promptVersion: PLAN_PROMPT_VERSION,
      messages: [new SystemMessage(planSystemPrompt(planPromptArgs(config))), new HumanMessage(planUserMessage(request))],
      tools: [planTool()],
      toolChoice: PLAN_TOOL_NAME,
    });
    const offline = (why: string, record: ModelCallRecord): PlanAttempt => ({
      result: planOffline(request, config),
      planner: "offline",
      // The reason can quote the model's answer: shown to people, so without control characters.
      fallback: printable(why),
      calls: [record],
    });
    if (!out.ok) return offline(`the model ${out.reason === "timeout" ? "timed out" : "failed"} (${out.detail})`, out.record);
    const call = out.message.tool_calls?.find((c) => c.name === PLAN_TOOL_NAME);
    try {
      if (!call) throw new InvalidModelAnswer("the model answered without calling submit_plan");
      const result = fromToolArgs(call.args, request, config);
      return { result, planner: "model", fallback: null, calls: [out.record] };
    } catch (e) {
      // Whatever the answer holds, it never crashes planning: anything that does not map onto the contract
      // (including a schema error from deep inside) is an invalid answer, recorded, and the rules answer instead.
      const message = e instanceof Error ? e.message : String(e);
      return offline(`the model's answer did not validate (${message.slice(0, 300)})`, { ...out.record, outcome: "invalid", detail: message.slice(0, 500) });
    }
  }
}
