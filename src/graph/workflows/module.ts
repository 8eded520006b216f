import type { z } from "zod";
import type { CapabilityId } from "../../core/capabilities.js";
import type { Text } from "../../core/text.js";
import type { StepRecord } from "../state.js";
import type { WorkflowDef } from "../step.js";


/** A cost estimate as every front shows it: what is added, what it saves, the net. */
export interface CostEstimate {
  addedMonthlyUsd: number;
  savingsMonthlyUsd: number;
  netMonthlyUsd: number;
  /** What the savings are ("origin requests", "storage tier"), for "-$x/month <what>". */
  savingsOf: string;
  /** One line on how it was estimated (assumptions, price source). */
  basis: string;
}

/**
 * What a workflow's runs look like to the fronts (plan card, progress, conversation, report), read from the recorded
 * steps so nothing outside the workflow's folder needs to know its step names or output shapes.
 */
export interface WorkflowFacets {
  /** The cost estimate once the workflow has made one. */
  cost?(steps: readonly StepRecord[]): CostEstimate | null;
  /** The design the run settled on, in one line, once it has one. */
  design?(steps: readonly StepRecord[]): string | null;
  /** The finished run's report, as Markdown. */
  report?(steps: readonly StepRecord[]): string | null;
}

/** The latest successful output of `step` among `steps`, parsed with the step's own schema, or null. */
export function latestOutput<O>(steps: readonly StepRecord[], step: { name: string; output: z.ZodType<O> }): O | null {
  const rec = steps.findLast((s) => s.name === step.name && s.status === "done");
  if (!rec) return null;
  const parsed = step.output.safeParse(rec.output);
  return parsed.success ? parsed.data : null;
}

/** A detail the planner must ask for, with the question it asks. */
export interface Missing {
  param: string;
  question: string;
}

/** What an intent read from a request. */
export interface Extraction {
  /** Params the user gave; one they did not give is absent. */
  params: Record<string, unknown>;
  /** Details that are needed, or were given but cannot be used, each with its question. */
  missing: Missing[];
  /** Words the params used (receivers, buckets, regions, tables), so they are never taken for a deployment name. */
  claimed: string[];
}

/**
 * How the offline planner recognises and reads a request for this workflow. Regexes see the request lower-cased,
 * after typo correction, with manipulation, SQL and (for `extract`) the deployment cut out.
 */
export interface WorkflowIntent {
  /** Each regex that matches adds its weight; the best score of at least 3 picks the workflow (ties: `priority`). */
  signals: readonly (readonly [RegExp, number])[];
  /** Added to the score when the request carries SQL statements (0 when SQL says nothing about this workflow). */
  sqlScore: number;
  vocabulary: {
    /** Words worth correcting a typo toward ("cahce" -> cache). */
    triggers: readonly string[];
    /** Real words one edit from a trigger word, never corrected ("vanish", "scheme"). */
    notTypos: readonly string[];
    /** Words that are never deployment names, even after "on" or "to" ("on features", "to grafana"). */
    notDeployments: readonly string[];
    /** Nouns after which a word names a thing of this workflow, not a deployment ("to items table", "on cold bucket"). */
    things: readonly string[];
    /** What a destructive-sounding verb may act on here (gated inside the workflow, not refused): regex fragments. */
    safeObjects: readonly string[];
  };
  /** What the workflow can do, in refusal texts: "add a caching layer (redis, varnish, cloudfront)". */
  capability: string;
  /** Where the workflow is listed when every workflow is named (capabilities, the model's prompt): lower first. */
  listed: number;
  /** Params, missing details and claimed words from the request (the deployment cut out) and its SQL statements. */
  extract(text: Text, statements: readonly string[]): Extraction;
}

/** The model's arguments for one workflow, read against the request. */
export interface ToolReading {
  /** The params the arguments map to, nulls dropped (not yet validated against the workflow's params). */
  params: Record<string, unknown>;
  /** A required detail the model left out, asked as the offline planner asks it, or null. */
  missing: Missing | null;
  /** Why a value is not something the user said, or null: such an answer is not used. */
  invented: string | null;
}

/** How the model planner plans this workflow: its part of the `submit_plan` tool and how an answer becomes params. */
export interface WorkflowTool {
  /** Strict-compatible argument schema: every field required and `.nullable()`, every object closed. */
  args: z.ZodType<Record<string, unknown>>;
  /** The param names a clarifying answer may list as missing. */
  paramNames: readonly string[];
  /** A rule for the model's prompt about these arguments, or null. */
  promptRule: string | null;
  /** Maps arguments that passed `args`; throws when they cannot be params (malformed JSON inside, say). */
  read(args: Record<string, unknown>, request: string): ToolReading;
}

/** A workflow tool with its arguments and params typed. */
export interface ToolSpec<A extends Record<string, unknown>, P extends Record<string, unknown>> {
  args: z.ZodType<A>;
  paramNames: readonly (keyof P & string)[];
  promptRule?: string;
  toParams(args: A): P;
  /** Why a value in `params` is not something the user said: enum values need a word naming them, numbers and names as typed. */
  invented(params: P, request: string): string | null;
  /** A required detail left out. */
  missing?(params: P): Missing | null;
}

export function defineTool<A extends Record<string, unknown>, P extends Record<string, unknown>>(spec: ToolSpec<A, P>): WorkflowTool {
  return {
    args: spec.args,
    paramNames: spec.paramNames,
    promptRule: spec.promptRule ?? null,
    read(raw, request) {
      const params = spec.toParams(spec.args.parse(raw));
      return { params, missing: spec.missing?.(params) ?? null, invented: spec.invented(params, request) };
    },
  };
}

/**
 * One workflow, as its folder declares it: the engine's definition and everything the planner, the model, the fronts
 * and the config check derive from it. A workflow is its folder; nothing elsewhere names it.
 */
export interface WorkflowModule {
  def: WorkflowDef;
  /** How the planner says what it does: "add a caching layer". */
  summary: string;
  /** What a `local`/`aws` deployment must configure for it (checked when it is planned there). */
  capabilities: readonly CapabilityId[];
  /** Order among workflows when a request's words score a tie: lower goes first. */
  priority: number;
  facets?: WorkflowFacets;
  /** How the offline planner recognises and reads a request for it. */
  intent: WorkflowIntent;
  /** How the model planner plans it. */
  tool: WorkflowTool;
}
