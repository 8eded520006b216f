import type { z } from "zod";
import type { Deployment } from "../config.js";
import type { GateKind } from "../core/gates.js";
import type { Journal } from "../core/journal.js";
import type { DeploymentAdapters } from "../tools/types.js";
import type { GatePayload, RunStateValue, StepRecord } from "./state.js";
import type { ChangeSection, ConfigChange } from "../core/sections.js";
import type { MetricsSummary, Verdict } from "../core/metrics.js";
import type { Progress } from "../core/progress.js";

/** What a step may use: its deployment's adapters and the run's identity. Nothing else. */
export interface StepContext {
  run: string;
  workflow: string;
  deployment: string;
  deploymentConfig: Deployment;
  adapters: DeploymentAdapters;
  /** `run:step:stage[:suffix]`: the key every side-effecting call carries. */
  idempotencyKey(suffix?: string): string;
  /** The key another step of this run used (e.g. a rollback asking what a provision left behind). */
  idempotencyKeyOf(step: string, stage?: number): string;
  /**
   * The run's journal of side effects: a side effect records what it will replace before it acts, under the key it
   * then carries. The rollback restores from this alone.
   */
  journal: Journal;
  /**
   * Progress for whoever watches (terminal, Slack): a line of text, or how far a long step is
   * (`{ done, total, unit: records|bytes|objects|statements, rate }`, validated; a bad value throws). Shown, never
   * recorded: the step still leaves one record however often it reports.
   */
  progress(message: string | Progress): void;
  /** The first value ever recorded under `name` for this step and stage: survives a crash and a replay. */
  remember(name: string, value: string): Promise<string>;
  /**
   * An updatable cursor for this step and stage, durable in the agent's store (a long step's place between
   * checkpoints: a batch copy saves it after every batch). Absent where no store backs the context.
   */
  cursor?: { load(name: string): Promise<string | null>; save(name: string, value: string): Promise<void> };
  /** Keeps raw data behind a decision out of graph state; returns the key the transcript lists it under. */
  attach(name: string, body: unknown): Promise<string>;
  /** Why the run should stop what it is doing (a cancel or an approver's rollback), or null. */
  stopRequested(): Promise<string | null>;
  /**
   * Who asked to pause the run (Ctrl-C in the chat, a pause button), for a step that may stop where it is: an
   * ungated step that only watches. Null for a gated step, which always finishes (it pauses at the next boundary).
   */
  pauseRequested?(): Promise<{ by: string; reason: string } | null>;
}

/**
 * Thrown by an ungated step that left its work for a pause (a watch window): no record is written, the run holds at
 * the pause gate before this same step, and continuing runs it again; what it remembered (a window's start) is kept.
 */
export class StepPaused extends Error {
  constructor(readonly note: string) {
    super(note);
    this.name = "StepPaused";
  }
}

/** Read-only view of the run for building a step's input. */
export class RunView {
  readonly state: RunStateValue;
  /** The run's state with its whole transcript in `steps` (the builder reads the records kept beside the checkpoints first). */
  constructor(state: Omit<RunStateValue, "recorded" | "decided" | "recordsTip"> & Partial<Pick<RunStateValue, "recorded" | "decided" | "recordsTip">>) {
    this.state = { ...state, recorded: state.recorded ?? 0, decided: state.decided ?? 0, recordsTip: state.recordsTip ?? null };
  }
  get params(): Record<string, unknown> {
    return this.state.params;
  }
  /** The latest successful output of a step, parsed with that step's own output schema. */
  output<O>(step: { name: string; output: z.ZodType<O> }): O {
    const rec = this.latest(step.name);
    if (!rec) throw new Error(`step ${step.name} has not run yet`);
    return step.output.parse(rec.output);
  }
  maybeOutput<O>(step: { name: string; output: z.ZodType<O> }): O | undefined {
    const rec = this.latest(step.name);
    return rec ? step.output.parse(rec.output) : undefined;
  }
  private latest(name: string): StepRecord | undefined {
    return this.state.steps.findLast((s) => s.name === name && s.status === "done");
  }
}


export interface StepResult<O> {
  output: O;
  /** Monitoring steps judge what they saw: degraded rolls back, inconclusive pauses for a human. */
  verdict?: Verdict;
  reason?: string;
  metrics?: { before?: MetricsSummary; after?: MetricsSummary };
}

/** What a gated step tells the approver; the engine adds run, metrics, approvers and the hash. */
export type GateDescription = Pick<GatePayload, "action" | "why" | "risk"> & {
  change: { config?: ConfigChange[]; resources?: GatePayload["change"]["resources"]; traffic?: { from: number; to: number } | null; sections?: ChangeSection[] };
};

export interface StepSpec<I, O> {
  name: string;
  description: string;
  input: z.ZodType<I>;
  output: z.ZodType<O>;
  /** Build this step's input from the run so far; `stage` is the stage value (e.g. a traffic percentage) or null. */
  prepare(view: RunView, stage: number | null): I;
  run(ctx: StepContext, input: I, stage: number | null): Promise<StepResult<O>>;
  /** Stage values for a step that runs once per stage (a gate before each). */
  stages?: (view: RunView) => number[];
  /**
   * Whether stage values are traffic percentages (the default). Rounds of a retried schema change are not: their
   * values are never recorded or shown as a share ("stage 2 of 3", not "stage 2 of 3 (2%)").
   */
  stagesArePercent?: boolean;
  gate?: {
    /** Static for most steps; some depend on the plan (a DROP makes a schema change a `delete`). */
    kind: GateKind | ((view: RunView) => GateKind);
    describe(ctx: StepContext, view: RunView, stage: number | null): Promise<GateDescription>;
  };
}

/** A step with its types erased, as the builder handles it. */
export interface Step {
  name: string;
  description: string;
  output: z.ZodType<unknown>;
  /** Fixed at definition: a gated step always has an approval node in front of it (only its kind may vary). */
  gated: boolean;
  stages(view: RunView): number[] | null;
  /** The stage value as recorded and shown (a traffic percentage), or null where stages are not percentages. */
  shownStageValue(value: number | null): number | null;
  gateKind(view: RunView): GateKind | null;
  describeGate(ctx: StepContext, view: RunView, stage: number | null): Promise<GateDescription>;
  execute(ctx: StepContext, view: RunView, stage: number | null): Promise<{ input: unknown } & StepResult<unknown>>;
}

export type TypedStep<I, O> = Step & { output: z.ZodType<O>; spec: StepSpec<I, O> };

/** Validates input before and output after every run: a step is a typed tool. */
export function defineStep<I, O>(spec: StepSpec<I, O>): TypedStep<I, O> {
  return {
    spec,
    name: spec.name,
    description: spec.description,
    output: spec.output,
    gated: spec.gate !== undefined,
    stages: (view) => (spec.stages ? spec.stages(view) : null),
    shownStageValue: (value) => (spec.stagesArePercent === false ? null : value),
    gateKind: (view) => (spec.gate ? (typeof spec.gate.kind === "function" ? spec.gate.kind(view) : spec.gate.kind) : null),
    describeGate: async (ctx, view, stage) => {
      if (!spec.gate) throw new Error(`step ${spec.name} has no gate`);
      return spec.gate.describe(ctx, view, stage);
    },
    execute: async (ctx, view, stage) => {
      const input = spec.input.parse(spec.prepare(view, stage));
      const result = await spec.run(ctx, input, stage);
      return { ...result, input, output: spec.output.parse(result.output) };
    },
  };
}

/** Something a rollback left behind: deleting it is a `delete` gate. `deletes` says what the deletion destroys. */
export interface Leftover {
  id: string;
  kind: string;
  description: string;
  deletes?: string;
  /** The capability that deletes it (its adapter's `deprovision`); the cache when absent. */
  capability?: string;
}

/** Restores the last known-good state; reports what it left behind (deleting that is a `delete` gate). */
export interface RollbackResult {
  restored: string[];
  leftovers: Leftover[];
  /** What this run changed past a point of no return, which the rollback could not restore. */
  notRestored?: string[];
}

/**
 * What a request meets on the deployment before anything starts, read-only: already in place (nothing to do, with the
 * evidence), not possible as asked (why), or notes on what the change means for what is there.
 */
export interface Preflight {
  inPlace: { summary: string; evidence: string[] } | null;
  refuse: string | null;
  notes: string[];
}

export interface WorkflowDef {
  id: string;
  title: string;
  params: z.ZodType<Record<string, unknown>>;
  steps: Step[];
  /** The plan-time check against the deployment as it is; the workflow's design step makes the same decision again. */
  preflight?(deployment: string, adapters: DeploymentAdapters, params: Record<string, unknown>): Promise<Preflight>;
  /** Set when this version cannot run the workflow (it still plans it): the reason, shown to the user. */
  unavailable?: string;
  rollback(ctx: StepContext, view: RunView): Promise<RollbackResult>;
  /** Deletes what a rollback left behind; runs only after a `delete` decision. */
  cleanup?(ctx: StepContext, leftovers: RollbackResult["leftovers"]): Promise<void>;
}
