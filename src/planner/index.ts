/**
 * Request -> typed plan. Chooses the planner before any model client exists: the model when OPENAI_API_KEY or
 * OPENAI_BASE_URL is set, else the offline rules. Both answer the same PlanResult contract.
 */
import type { AgentConfig } from "../config.js";
import { requestTooLong } from "../core/text.js";
import type { ModelCallRecord, ModelCallSink } from "./calls.js";
import { modelSettings, type ModelSettings } from "./llm.js";
import { ModelPlanner, type PlanAttempt, type Planner } from "./model.js";
import { planOffline } from "./offline.js";
import { PlanResult, isClarify, isPlan, type Clarify, type Plan, type Refuse } from "./plan.js";
import { deploymentChoices, type DeploymentChoice } from "./resolve.js";

export type { PlanAttempt, Planner } from "./model.js";
export { ModelPlanner, fromToolArgs, InvalidModelAnswer } from "./model.js";
export { modelSettings, type ModelSettings } from "./llm.js";
export { MemoryCallSink, SqlCallLog, ModelCallRecord, type ModelCallSink } from "./calls.js";
export { deploymentChoices, type DeploymentChoice } from "./resolve.js";
export { capabilities } from "./registered.js";
export { isClarify, isPlan, type Clarify, type Plan, type PlanResult, type Refuse };

export class OfflinePlanner implements Planner {
  readonly kind = "offline" as const;
  async plan(request: string, config: AgentConfig): Promise<PlanAttempt> {
    return { result: planOffline(request, config), planner: "offline", fallback: null, calls: [] };
  }
}

/** The model planner when one is configured (explicit settings win over the environment), else the offline one. */
export function createPlanner(env: NodeJS.ProcessEnv, explicit: Partial<ModelSettings> & { offline?: boolean } = {}): Planner {
  if (explicit.offline) return new OfflinePlanner();
  const settings = modelSettings(env, explicit);
  return settings ? new ModelPlanner(settings) : new OfflinePlanner();
}

export const RULES_NOTICE = "Answers are rule-based: no model is configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local OpenAI-compatible server).";

/** How the plan was made, next to the plan itself. */
export interface PlanMeta {
  planner: "model" | "offline";
  /** Why the model's answer was not used, when the offline planner answered instead; null otherwise. */
  fallback: string | null;
  /** One line for the user: the rule-based notice (once), or the fallback; null when there is nothing to say. */
  notice: string | null;
  /** Known deployments, for clarifying questions shown as buttons. */
  deployments: DeploymentChoice[];
  /** Every model call made for this plan (model, prompt version, tokens, latency, outcome). */
  calls: ModelCallRecord[];
}
export type Planned = PlanResult & PlanMeta;

export interface PlanRequestOptions {
  /** Use this planner instead of choosing one from the environment. */
  planner?: Planner;
  /** Model settings that win over OPENAI_* variables. */
  model?: Partial<ModelSettings>;
  /** Where model calls are recorded (the agent's database, or memory). */
  sink?: ModelCallSink;
  /** Whether to add the rule-based notice; by default it is said once per process. */
  announceRules?: boolean;
}

let rulesAnnounced = false;

export async function planRequest(text: string, config: AgentConfig, env: NodeJS.ProcessEnv, opts: PlanRequestOptions = {}): Promise<Planned> {
  const planner = opts.planner ?? createPlanner(env, opts.model);
  // Too long for any planner: refused before a pattern runs over it or a model is paid to read it.
  const tooLong = requestTooLong(text);
  const attempt: PlanAttempt = tooLong ? { result: { refuse: tooLong }, planner: planner.kind, fallback: null, calls: [] } : await planner.plan(text, config);
  for (const c of attempt.calls) await opts.sink?.record(c);
  let notice: string | null = null;
  if (attempt.fallback) {
    notice = `The model's answer was not used: ${attempt.fallback}. This answer comes from the rule-based planner.`;
  } else if (planner.kind === "offline") {
    const announce = opts.announceRules ?? !rulesAnnounced;
    if (announce) notice = RULES_NOTICE;
    rulesAnnounced = true;
  }
  return { ...attempt.result, planner: attempt.planner, fallback: attempt.fallback, notice, deployments: deploymentChoices(config), calls: attempt.calls };
}

/** The plan without its metadata: what `plan --json` prints and what the contract tests compare. */
export function planOnly(p: Planned | PlanResult): PlanResult {
  const schema = PlanResult();
  if (isPlan(p)) return schema.parse({ workflow: p.workflow, deployment: p.deployment, params: p.params });
  if (isClarify(p)) return schema.parse({ clarify: p.clarify, missing: p.missing, ...(p.unknownDeployment ? { unknownDeployment: p.unknownDeployment } : {}) });
  return schema.parse({ refuse: p.refuse });
}
