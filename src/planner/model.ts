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
import { planOffline } from "./offline.js";
import { Plan, PlanResult, WORKFLOW_IDS, isPlan, type WorkflowId } from "./plan.js";
import { DETAIL_QUESTIONS, REFUSAL_TEXT, WORKFLOW_TITLES, clarify, deploymentChoices, mentioned, resolveAsWritten } from "./resolve.js";
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

/** True when any object inside `v` has an `lc` key: LangChain's serialization envelope, revived when a checkpoint loads. */
const hasEnvelope = (v: unknown): boolean =>
  !!v && typeof v === "object" && (Array.isArray(v) ? v.some(hasEnvelope) : "lc" in v || Object.values(v).some(hasEnvelope));

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
          // Plan params go into checkpointed state; an envelope-shaped object would be revived (or dropped) on load.
          if (hasEnvelope(spec)) throw new InvalidModelAnswer("specJson holds an object with an lc key");
        }
        return dropNulls({ kind: c.kind, action: c.action, name: c.name, spec: spec ?? null });
      }),
    };
  }
  return dropNulls(raw);
}

const lower = (s: string): string => s.toLowerCase().replace(/\s+/g, " ");
/** SQL compared as typed: case, spacing, backticks and semicolons aside. */
const sqlText = (s: string): string => s.toLowerCase().replace(/[`;]+/g, " ").replace(/\s+/g, " ").trim();
const numberIn = (request: string, n: number): boolean => new RegExp(`(?<![\\d.])${n}(?![\\d]|\\.\\d)`).test(request);

/** Words that name each enum value; a value whose words are not in the request is the model's invention. */
const NAMED_BY: Record<string, Record<string, RegExp>> = {
  cacheType: { redis: /redis|elasti-?cache|valkey/, varnish: /varnish/, cloudfront: /cloud ?front|\bcdns?\b|\bedge\b/ },
  backend: {
    s3: /\bs3\b|\baws\b|amazon|minio/, "azure-blob": /azure|\bblob/, gcs: /\bgcs\b|google|\bgcp\b|\bgs:\/\//,
    filesystem: /file ?system|\bdisk\b|\bnfs\b|\befs\b|volume|\bmount|\blocal\b|(?:^|\s)\.?\/\w/,
  },
  store: {
    postgres: /postgres|\bpg\b|psql/, sqlite: /sqlite/, files: /\bfiles?\b|file[- ]based|file ?system|\bdisk\b|\bjson\b|\bflat\b/,
    elasticsearch: /elastic|\bes\b/, opensearch: /open ?search/,
  },
};
/** Edit distance counting a swap of neighbours as one edit ("varnsih" is one away from "varnish"). */
function typoDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

const TTL_UNITS = [0.001, 1, 60, 3600, 86_400, 604_800, 2_592_000, 31_536_000];

function ttlGiven(request: string, ttl: number): boolean {
  const ns = [...request.matchAll(/(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
  if (/\b(?:an?|one)\s+(?:ms|millisecond|sec|second|min|minute|hr|hour|day|week|month|year)\b/.test(request)) ns.push(1);
  if (/\bhalf\s+(?:an?\s+)?(?:hour|day|minute)\b/.test(request)) ns.push(0.5);
  return ns.some((n) => TTL_UNITS.some((u) => Math.abs(n * u - ttl) < 1e-6));
}

function batchGiven(request: string, size: number): boolean {
  return [...request.matchAll(/(\d[\d,_]*(?:\.\d+)?)\s*(k)?\b/g)].some((m) => Number((m[1] ?? "").replace(/[,_]/g, "")) * (m[2] ? 1000 : 1) === size);
}

/**
 * Why a value in the model's params is not something the user said, or null. Values are checked against the
 * request itself: enum values need a word that names them, numbers and names must be there as typed, SQL must be
 * the user's SQL. An answer that fails is not used (the rules answer instead).
 */
function inventedDetail(workflow: WorkflowId, params: Record<string, unknown>, request: string): string | null {
  const text = lower(request);
  // A typo of the value's own name counts ("varnsih"): the rules correct the same typos.
  const typo = (value: string) => value.length >= 5 && (text.match(/[a-z][a-z-]{3,}/g) ?? []).some((w) => w[0] === value[0] && typoDistance(w, value) <= (value.length >= 8 ? 2 : 1));
  const named = (table: Record<string, RegExp>, value: unknown) => typeof value !== "string" || (table[value]?.test(text) ?? false) || typo(value);
  const verbatim = (value: unknown) => typeof value !== "string" || text.includes(lower(value.trim()));
  if (workflow === "add-caching-layer") {
    if (!named(NAMED_BY.cacheType!, params.cacheType)) return `cacheType ${String(params.cacheType)} is not named in the request`;
    if (typeof params.ttlSeconds === "number" && !ttlGiven(text, params.ttlSeconds)) return `ttlSeconds ${params.ttlSeconds} is not in the request`;
    const steps = params.rolloutSteps as number[] | undefined;
    const given = steps && steps.at(-1) === 100 ? steps.slice(0, -1) : steps;
    const extra = given?.find((v) => !numberIn(text, v));
    if (extra !== undefined) return `rollout step ${extra} is not in the request`;
  } else if (workflow === "modify-metadata-storage") {
    for (const k of ["fromStore", "toStore"]) if (!named(NAMED_BY.store!, params[k])) return `${k} ${String(params[k])} is not named in the request`;
    if (typeof params.batchSize === "number" && !batchGiven(text, params.batchSize)) return `batchSize ${params.batchSize} is not in the request`;
  } else if (workflow === "add-storage-backend") {
    const url = /\b(s3|gs):\/\//.exec(text)?.[1];
    const byUrl = (url === "s3" && params.backend === "s3") || (url === "gs" && params.backend === "gcs");
    if (!byUrl && !named(NAMED_BY.backend!, params.backend)) return `backend ${String(params.backend)} is not named in the request`;
    for (const k of ["region", "bucket", "path"]) if (!verbatim(params[k])) return `${k} ${JSON.stringify(params[k])} is not in the request`;
  } else if (workflow === "upgrade-database-schema" && Array.isArray(params.changes)) {
    const sql = sqlText(request);
    const foreign = (params.changes as string[]).find((st) => !sql.includes(sqlText(st)));
    if (foreign !== undefined) return `SQL not in the request: ${foreign.slice(0, 80)}`;
  }
  return null;
}

/** A required detail the model left out: asked, as the offline planner asks, never left for the design step to invent. */
function missingDetail(workflow: WorkflowId, params: Record<string, unknown>): { param: string; question: string } | null {
  if (workflow === "modify-metadata-storage") {
    if (params.toStore === undefined) return { param: "toStore", question: DETAIL_QUESTIONS.toStore };
    if (params.fromStore === params.toStore) return { param: "toStore", question: `The metadata is already on ${String(params.toStore)}. ${DETAIL_QUESTIONS.toStore}` };
  }
  if (workflow === "upgrade-database-schema" && params.changes === undefined) return { param: "changes", question: DETAIL_QUESTIONS.schemaChanges };
  if (workflow === "modify-observability" && params.changes === undefined) return { param: "changes", question: DETAIL_QUESTIONS.observabilityChanges };
  return null;
}

/** Known deployments the request names by a name or alias. */
const namedDeployments = (request: string, config: AgentConfig): string[] =>
  Object.entries(config.deployments).filter(([n, d]) => [n, ...d.aliases].some((w) => mentioned(request, w))).map(([n]) => n);

/** Maps the tool call onto a PlanResult; throws InvalidModelAnswer when it does not fit the contract. */
export function fromToolArgs(rawArgs: unknown, request: string, config: AgentConfig): PlanResult {
  const parsed = PlanToolArgs.safeParse(rawArgs);
  if (!parsed.success) throw new InvalidModelAnswer(`tool arguments: ${describeIssues(parsed.error)}`);
  const r = parsed.data.result;
  if (r.kind === "refuse") return PlanResult.parse({ refuse: REFUSAL_TEXT[r.reason] });
  if (r.kind === "clarify" && printable(r.question).trim() === "") throw new InvalidModelAnswer("clarify has an empty question");
  if (r.kind === "clarify") {
    r.question = printable(r.question).trim();
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
  const detail = missingDetail(workflow, params);
  const dep = resolveAsWritten(request, r.deploymentAsWritten, config);
  if (dep.kind !== "known") return clarify(config, workflow, dep, detail ? [detail] : []);
  // The rules are the floor: what they refuse as destructive is not planned, and when the request names several
  // deployments the model may only pick the one the rules pick (text steering it to another one is not a choice).
  const rules = planOffline(request, config);
  if ("refuse" in rules && rules.refuse === REFUSAL_TEXT.destructive) throw new InvalidModelAnswer("the request is destructive; it is refused, not planned");
  // Two changes in one request: the model may not pick one of them silently (the rules ask which comes first).
  if ("missing" in rules && rules.missing.includes("workflow")) throw new InvalidModelAnswer("the request asks for more than one change; the model planned one of them");
  if (namedDeployments(request, config).length > 1 && !(isPlan(rules) && rules.deployment === dep.name)) {
    return clarify(config, workflow, { kind: "none" }, detail ? [detail] : []);
  }
  const invented = inventedDetail(workflow, params, request);
  if (invented) throw new InvalidModelAnswer(invented);
  if (detail) return clarify(config, workflow, dep, [detail]);
  const plan = Plan.safeParse({ workflow, deployment: dep.name, params });
  if (!plan.success) throw new InvalidModelAnswer(`plan: ${describeIssues(plan.error)}`);
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
      // The reason can quote the model's answer: shown to people, so without control characters.
      fallback: printable(why),
      calls: [record],
    });
    if (!out.ok) return offline(`the model ${out.reason === "timeout" ? "timed out" : "failed"} (${out.detail})`, out.record);
    const call = out.message.tool_calls?.find((c) => c.name === PLAN_TOOL.name);
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
