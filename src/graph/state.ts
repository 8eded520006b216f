import { ReducedValue, StateSchema } from "@langchain/langgraph";
import { z } from "zod";
import { DecisionKind } from "../core/gates.js";
import { DecisionRecord, RunStatus } from "../core/records.js";
import { MetricsSummary, Verdict } from "../core/metrics.js";
import { ChangeSection, ConfigChange } from "../core/sections.js";




/**
 * One executed step (or one stage of a staged step): the transcript is the list of these. Times are on the run's
 * clock (the deployment's; simulated in the sandbox), with the wall-clock times beside them when the two differ.
 */
export const StepRecord = z.object({
  name: z.string(),
  /** Stage index (0-based) for a staged step, as in decisions and gates; null otherwise. */
  stage: z.number().int().nullable(),
  /** The stage's value (e.g. the traffic percentage); null for an unstaged step. */
  stageValue: z.number().nullable().optional(),
  status: z.enum(["done", "failed"]),
  /** What a monitoring step judged: a `degraded` stage is the one that triggered a rollback. */
  verdict: Verdict.nullable().optional(),
  startedAt: z.string(),
  endedAt: z.string(),
  wall: z.object({ startedAt: z.string(), endedAt: z.string() }).optional(),
  input: z.unknown(),
  output: z.unknown(),
  error: z.string().optional(),
});
export type StepRecord = z.infer<typeof StepRecord>;



/** What an approver sees; the plan hash is computed over exactly this. */
export const GatePayload = z.object({
  run: z.string(),
  workflow: z.string(),
  deployment: z.string(),
  step: z.string(),
  /** Stage index (0-based) of a staged step; null otherwise. */
  stage: z.number().int().nullable(),
  /** The stage's value (e.g. the traffic percentage), shown with the index as one name: "stage 1 of 3 (10%)". */
  stageValue: z.number().nullable().optional(),
  /** How many stages the step has (null: unstaged). */
  stageCount: z.number().int().nullable().optional(),
  kind: DecisionKind,
  /** What will happen if approved. */
  action: z.string(),
  why: z.string(),
  risk: z.string(),
  change: z.object({
    config: z.array(ConfigChange).default([]),
    resources: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()]))).default([]),
    traffic: z.object({ from: z.number(), to: z.number() }).nullable().default(null),
    /** SQL, mappings, tables, file diffs: what else the approver is shown, each a typed section. */
    sections: z.array(ChangeSection).optional(),
  }),
  metricsNow: MetricsSummary.nullable(),
  approvers: z.array(z.string()),
  requestedBy: z.string(),
  askedAt: z.string(),
});
export type GatePayload = z.infer<typeof GatePayload>;

export const PendingGate = z.object({ key: z.string(), payload: GatePayload, planHash: z.string() });
export type PendingGate = z.infer<typeof PendingGate>;


/** The resume value of an approval interrupt: it names the decision row, which is the source of truth. */
export const GateResume = z.object({ interrupt: z.string().min(1), planHash: z.string().min(1) }).strict();
export type GateResume = z.infer<typeof GateResume>;

/** Where the run goes next; set by every node, read by the routers. */
export const Next = z.discriminatedUnion("to", [
  z.object({ to: z.literal("step"), index: z.number().int().min(0), stage: z.number().int().min(0) }),
  z.object({ to: z.literal("inconclusive"), index: z.number().int().min(0), stage: z.number().int().min(0), reason: z.string() }),
  z.object({
    to: z.literal("rollback"),
    reason: z.string(),
    then: z.enum(["failed", "rolled-back", "rejected", "cancelled"]),
    /** Set when the agent rolls back on its own (degradation, a failed step), not because someone asked. */
    automatic: z.boolean().optional(),
  }),
  /** Held at a step boundary by a pause or a rollback request; `resume` is where the run goes if it continues. */
  z.object({
    to: z.literal("hold"),
    kind: z.enum(["paused", "rollback"]),
    by: z.string(),
    reason: z.string(),
    resume: z.object({ index: z.number().int().min(0), stage: z.number().int().min(0) }),
  }),
  z.object({ to: z.literal("finish"), status: RunStatus, reason: z.string() }),
]);
export type Next = z.infer<typeof Next>;

const append = <T extends z.ZodType>(item: T) =>
  new ReducedValue(z.array(item).default(() => []), {
    inputSchema: z.array(item),
    reducer: (current: z.infer<T>[], next: z.infer<T>[]) => [...current, ...next],
  });

/** The graph state of one run. JSON-plain: strings, numbers, booleans, arrays, plain objects. */
export const RunState = new StateSchema({
  /** Run id (also the checkpoint thread id). */
  run: z.string(),
  workflow: z.string(),
  /** Canonical deployment name. */
  deployment: z.string(),
  requestedBy: z.string(),
  /** The request as typed by the user: untrusted text, kept as a string. */
  request: z.string(),
  /** Plan params as validated by the workflow's param schema. */
  params: z.record(z.string(), z.unknown()),
  /**
   * Executed steps in order, as runs started by earlier versions kept them (the whole transcript in every checkpoint).
   * A run now keeps them in the agent's store beside the checkpoints and counts them in `recorded` (each checkpoint
   * copying the whole transcript made a run's checkpoint bytes grow with the square of its stages); its transcript is
   * these followed by the `recorded` records at places `steps.length ...` in the store.
   */
  steps: append(StepRecord),
  /** How many step records this run keeps in the agent's store (places `steps.length` onwards); absent: none. */
  recorded: z.number().int().min(0).optional(),
  /** Every gate decision, human or policy, as applied: as runs started by earlier versions kept them (see `steps`). */
  decisions: append(DecisionRecord),
  /** How many applied decisions this run keeps in the agent's store (places `decisions.length` onwards); absent: none. */
  decided: z.number().int().min(0).optional(),
  /**
   * Names the last write of records beside the checkpoints (a fresh random token each time): a process that cached the
   * records it wrote uses the cache only while the state it reads carries the same token, so a write whose checkpoint
   * never committed, or one another process made since, is read again from the store.
   */
  recordsTip: z.string().optional(),
  /** The gate currently being asked, prepared before the interrupt so the interrupt node is deterministic. */
  gate: PendingGate.nullable().default(null),
  next: Next.default({ to: "step", index: 0, stage: 0 }),
  status: RunStatus.default("running"),
  /** Set by a rollback: how the run ends once cleanup (if any) is decided. */
  ending: z.object({ status: RunStatus, reason: z.string() }).nullable().default(null),
  /** Why the run ended (or null while it runs). */
  outcome: z.string().nullable().default(null),
  /** Before/after metrics for the report. */
  metrics: z
    .object({ before: MetricsSummary.nullable(), after: MetricsSummary.nullable() })
    .default({ before: null, after: null }),
});
export type RunStateValue = typeof RunState.State;
export type RunStateUpdate = typeof RunState.Update;
