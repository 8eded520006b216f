import { randomBytes } from "node:crypto";
import { Command, END, START, StateGraph, interrupt, type BaseCheckpointSaver } from "@langchain/langgraph";
import { z } from "zod";
import { expandApprovers, type AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { parseProgress, renderProgress } from "../core/progress.js";
import type { AgentStore, StoredDecision } from "../store/store.js";
import { snapshot } from "../tools/metrics/observe.js";
import type { DeploymentAdapters } from "../tools/types.js";
import type { EventSink } from "./events.js";
import { autoApproves, mayDecide, planHash } from "./gates.js";
import { GatePayload, GateResume, RunState, StepRecord, type Next, type PendingGate, type RunStateUpdate, type RunStateValue } from "./state.js";
import { type DecisionKind } from "../core/gates.js";
import { DecisionRecord } from "../core/records.js";
import { RunView, StepPaused, defineStep, type RollbackResult, type Step, type StepContext, type WorkflowDef } from "./step.js";

export interface GraphDeps {
  config: AgentConfig;
  store: AgentStore;
  checkpointer: BaseCheckpointSaver;
  adaptersFor(deployment: string): DeploymentAdapters;
  onEvent?: EventSink;
  /** Test seam: called at named points (e.g. `after:ProvisionCacheInfrastructure`) so a test can crash there. */
  failpoint?(name: string): void;
  /** The wall clock, recorded beside the run's own clock (simulated in the sandbox) where the two differ. */
  wallClock?: () => Date;
  /** Test seam: every routing decision, as it is taken (from node, to node). */
  onRoute?(from: string, to: string): void;
  /**
   * Awaited once a step has started (its start announced) and before it acts: where a scheduler lets other work run
   * (the Slack front hands the event loop to the next click here). Nothing about the run depends on what it awaits.
   */
  stepStarted?(run: string): Promise<void>;
}

export const ROLLBACK = "Rollback";
export const CLEANUP = "CleanupAfterRollback";
const INCONCLUSIVE_GATE = "approve_inconclusive";
const HOLD_GATE = "approve_hold";
export const gateNode = (step: string): string => `approve_${step}`;

const RollbackOutput = z.object({
  restored: z.array(z.string()),
  leftovers: z.array(z.object({ id: z.string(), kind: z.string(), description: z.string(), deletes: z.string().optional(), capability: z.string().optional() })),
  notRestored: z.array(z.string()).optional(),
});
const rollbackStep = { name: ROLLBACK, output: RollbackOutput };

/** Deleting what a rollback left behind is a step like any other, behind a `delete` gate. */
function cleanupStep(def: WorkflowDef): Step {
  return defineStep({
    name: CLEANUP,
    description: "Delete the resources the rollback left behind",
    input: RollbackOutput.shape.leftovers,
    output: z.object({ deleted: z.array(z.string()) }),
    prepare: (view) => view.output(rollbackStep).leftovers,
    run: async (ctx, leftovers) => {
      if (!def.cleanup) throw new Error(`${def.id} has nothing to clean up`);
      await def.cleanup(ctx, leftovers);
      return { output: { deleted: leftovers.map((l) => l.id) } };
    },
    gate: {
      kind: "delete",
      describe: async (_ctx, view) => {
        const leftovers = view.output(rollbackStep).leftovers;
        // Each leftover says what deleting it destroys: a created node goes with its contents, keys written into a
        // cache the run only adopted go one by one and nothing else in that cache is touched.
        const destroys = leftovers.map((l) => l.deletes ?? `${l.description} and everything in it`);
        return {
          action: `Delete ${leftovers.length} thing(s) this run created and the rollback left behind: ${leftovers.map((l) => l.description).join("; ")}`,
          why: "The change was rolled back; what it created is no longer used but still costs money or memory.",
          risk: `Irreversible: deletes ${destroys.join("; ")}. Nothing the run did not create is touched. Reject to keep them for investigation.`,
          change: { resources: leftovers.map((l) => ({ id: l.id, kind: l.kind, action: "delete" })) },
        };
      },
    },
  });
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Rethrows LangGraph's control-flow exceptions (interrupts) that must never be caught as failures. */
function isControlFlow(e: unknown): boolean {
  return e instanceof Error && (e.name === "GraphInterrupt" || e.name === "NodeInterrupt" || e.name === "GraphBubbleUp" || e.name === "ParentCommand");
}

/**
 * Turns a declarative step list into a LangGraph StateGraph. Every gated step gets an approval node in
 * front of it, and the only edge into a gated step comes from its approval node: no router, model output
 * or user text can reach it another way. The step node checks the recorded decision again before acting.
 */
export function buildWorkflowGraph(def: WorkflowDef, deps: GraphDeps) {
  const steps: Step[] = graphSteps(def);
  const coreCount = def.steps.length;
  const names = new Set<string>();
  for (const s of steps) {
    if (names.has(s.name) || [ROLLBACK, "finish", "init"].includes(s.name)) throw new Error(`duplicate or reserved step name ${s.name} in ${def.id}`);
    names.add(s.name);
  }
  const emit: EventSink = (e) => deps.onEvent?.(e);
  const fail = (name: string) => deps.failpoint?.(name);

  const ctxFor = (state: RunStateValue, step: string, stage: number | null): StepContext => {
    const deploymentConfig = deps.config.deployments[state.deployment];
    if (!deploymentConfig) throw new AgentError("bad-input", `deployment ${state.deployment} is no longer in the config`);
    const keyOf = (name: string | null) => [state.run, step, stage ?? 0, ...(name === null ? [] : [name])].join(":");
    return {
      run: state.run,
      workflow: state.workflow,
      deployment: state.deployment,
      deploymentConfig,
      adapters: deps.adaptersFor(state.deployment),
      idempotencyKey: (suffix) => keyOf(suffix ?? null),
      idempotencyKeyOf: (other, otherStage) => [state.run, other, otherStage ?? 0].join(":"),
      journal: {
        intend: async (name, effects) => {
          const e = await deps.store.journalIntend({ run: state.run, key: keyOf(name), step, stage, effects, at: now(state) });
          return { key: e.key, effects: e.effects };
        },
        done: (name, effects = []) => deps.store.journalDone(state.run, keyOf(name), effects, now(state)),
        entries: () => deps.store.journal(state.run),
      },
      progress: (message) => {
        if (typeof message === "string") return emit({ type: "progress", run: state.run, step, message });
        const progress = parseProgress(step, message);
        emit({ type: "progress", run: state.run, step, message: renderProgress(progress), progress });
      },
      remember: (name, value) => deps.store.remember(state.run, [step, stage ?? 0, name].join(":"), value),
      cursor: {
        load: (name) => deps.store.cursor(state.run, [step, stage ?? 0, name].join(":")),
        save: (name, value) => deps.store.saveCursor(state.run, [step, stage ?? 0, name].join(":"), value, now(state)),
      },
      attach: async (name, body) => {
        const key = [step, stage ?? 0, name].join(":");
        await deps.store.putEvidence(state.run, key, body);
        return key;
      },
      stopRequested: async () => {
        const stop = (await deps.store.openControls(state.run)).find((c) => c.kind === "cancel" || c.kind === "rollback");
        return stop ? `${stop.kind === "cancel" ? "cancel" : "rollback"} requested by ${stop.by}` : null;
      },
      pauseRequested: async () => {
        if (steps.find((s) => s.name === step)?.gated !== false) return null;
        const pause = (await deps.store.openControls(state.run)).find((c) => c.kind === "pause");
        return pause ? { by: pause.by, reason: pause.reason } : null;
      },
    };
  };
  const now = (state: RunStateValue) => deps.adaptersFor(state.deployment).clock.now().toISOString();
  /** Wall-clock times beside the run's clock, only where they differ by more than a second. */
  const wallBeside = (runStart: string, runEnd: string, wallStart: Date): StepRecord["wall"] => {
    if (!deps.wallClock) return undefined;
    const wallEnd = deps.wallClock();
    const apart = Math.abs(Date.parse(runStart) - wallStart.getTime()) > 1000 || Math.abs(Date.parse(runEnd) - wallEnd.getTime()) > 1000;
    return apart ? { startedAt: wallStart.toISOString(), endedAt: wallEnd.toISOString() } : undefined;
  };

  const approversOf = (deployment: string): string[] => [...expandApprovers(deps.config, deps.config.deployments[deployment]?.approvers ?? [])].sort();

  async function buildGate(state: RunStateValue, step: string, stage: number | null, kind: DecisionKind, key: string, d: Omit<GatePayload, "run" | "workflow" | "deployment" | "step" | "stage" | "kind" | "metricsNow" | "approvers" | "requestedBy" | "askedAt">): Promise<PendingGate> {
    const dep = deps.config.deployments[state.deployment]!;
    let metricsNow = null;
    try {
      metricsNow = await snapshot(deps.adaptersFor(state.deployment), dep.monitoring.stageMinutes, dep.monitoring.sampleEveryMinutes);
      // The figures apply to the traffic as it is now: the share this gate would move from.
      if (d.change.traffic) metricsNow = { ...metricsNow, trafficShare: d.change.traffic.from };
    } catch {
      metricsNow = null; // the card says "no metrics" rather than the gate failing
    }
    const payload = GatePayload.parse({
      run: state.run, workflow: state.workflow, deployment: state.deployment, step, stage, kind, ...d,
      metricsNow, approvers: approversOf(state.deployment), requestedBy: state.requestedBy, askedAt: now(state),
    });
    return { key, payload, planHash: planHash(payload) };
  }

  /**
   * Pause, cancel and rollback requests act at step boundaries: between two steps, never inside one. A cancel
   * or an approver's rollback rolls back now; a pause or someone else's rollback request holds the run at a gate.
   */
  async function controlled(state: RunStateValue, next: Next): Promise<Next> {
    if (next.to !== "step" || state.ending || next.index >= coreCount) return next;
    const open = await deps.store.openControls(state.run);
    const why = (c: { by: string; reason: string }, what: string) => `${what} by ${c.by}${c.reason ? `: ${c.reason}` : ""}`;
    const cancel = open.find((c) => c.kind === "cancel");
    if (cancel) return { to: "rollback", reason: why(cancel, "cancelled"), then: "cancelled" };
    const rollback = open.find((c) => c.kind === "rollback");
    if (rollback) return { to: "rollback", reason: why(rollback, "rollback requested"), then: "rolled-back" };
    const request = open.find((c) => c.kind === "rollback-request");
    if (request) return { to: "hold", kind: "rollback", by: request.by, reason: request.reason, resume: { index: next.index, stage: next.stage } };
    const pause = open.find((c) => c.kind === "pause");
    if (pause) return { to: "hold", kind: "paused", by: pause.by, reason: pause.reason, resume: { index: next.index, stage: next.stage } };
    return next;
  }

  /** Sets where to go next and, when that is a gate, prepares what its approver will see. */
  async function advance(state: RunStateValue, requested: Next): Promise<Pick<RunStateUpdate, "next" | "gate">> {
    const next = await controlled(state, requested);
    if (next.to === "hold") {
      const before = steps[next.resume.index]!.name;
      const dep = deps.config.deployments[state.deployment]!;
      const gate = await buildGate(state, before, null, next.kind, `hold:${next.kind}:${state.steps.length}:${state.decisions.length}`,
        next.kind === "paused"
          ? {
              action: `Continue the run with ${before}`,
              why: `Paused by ${next.by}${next.reason ? `: ${next.reason}` : ""}`,
              risk: "Continuing runs the remaining steps (each gate is still asked). Rejecting cancels the run and restores what it changed.",
              change: { config: [], resources: [], traffic: null },
            }
          : {
              action: "Roll back this run now: restore the configuration and traffic it changed",
              why: `${next.by} asked for a rollback${next.reason ? `: ${next.reason}` : ""}`,
              risk: `Approving stops the change and restores the last known-good state. Rejecting continues with ${before}. Approvers: ${approversOf(state.deployment).join(", ")}; thresholds for automatic rollback stay in force (errors > ${dep.monitoring.errorRateThreshold * 100}%, p95 > baseline x ${dep.monitoring.latencyFactor} and +${dep.monitoring.latencyMinDeltaMs} ms).`,
              change: { config: [], resources: [], traffic: null },
            });
      emit({ type: "gate", run: state.run, payload: gate.payload, planHash: gate.planHash });
      return { next, gate };
    }
    // Only a gated step has a gate to prepare (its kind may depend on the run; an ungated step's is always null).
    if (next.to === "step" && steps[next.index]!.gated) {
      const step = steps[next.index]!;
      const view = new RunView(state);
      const kind = step.gateKind(view);
      if (kind) {
        const stages = step.stages(view);
        const stageValue = stages ? stages[next.stage]! : null;
        const described = await step.describeGate(ctxFor(state, step.name, next.stage), view, stageValue);
        const gate = await buildGate(state, step.name, stages ? next.stage : null, kind, `${step.name}#${next.stage}`, {
          stageValue: step.shownStageValue(stageValue), stageCount: stages ? stages.length : null,
          action: described.action, why: described.why, risk: described.risk,
          change: { config: described.change.config ?? [], resources: described.change.resources ?? [], traffic: described.change.traffic ?? null, ...(described.change.sections?.length ? { sections: described.change.sections } : {}) },
        });
        emit({ type: "gate", run: state.run, payload: gate.payload, planHash: gate.planHash });
        return { next, gate };
      }
    }
    // Only a gate that was set is cleared: every channel a node writes is one more validation, write and version per step.
    return state.gate ? { next, gate: null } : { next };
  }

  const afterStep = (state: RunStateValue, index: number, stageIdx: number, stageCount: number): Next => {
    if (stageIdx + 1 < stageCount) return { to: "step", index, stage: stageIdx + 1 };
    if (index < coreCount - 1) return { to: "step", index: index + 1, stage: 0 };
    if (index === coreCount - 1) return { to: "finish", status: "done", reason: "all steps completed" };
    return { to: "finish", status: state.ending?.status ?? "rolled-back", reason: state.ending?.reason ?? "rolled back" };
  };

  /** The decision that lets a gated step run: the last one recorded for its own gate kind, re-read from the store. */
  async function decisionFor(state: RunStateValue, step: string, stage: number | null, kind: DecisionKind): Promise<StoredDecision | undefined> {
    // Only a decision on the step's own gate kind counts: an answer to an inconclusive, pause or rollback gate never does.
    const last = state.decisions.findLast((d) => d.step === step && d.stage === stage && d.kind === kind);
    if (!last || last.decision === "reject") return undefined;
    const stored = await deps.store.getDecision(state.run, last.interrupt);
    // The stored row must be this gate's own: a state edited to name another gate's decision (Studio's "edit state", a
    // goto into the step) finds that row, and it answers a different question.
    if (!stored || stored.step !== step || stored.stage !== stage || stored.kind !== kind || stored.planHash !== last.planHash) return undefined;
    return stored;
  }

  function stepNode(index: number) {
    const step = steps[index]!;
    return async (state: RunStateValue): Promise<RunStateUpdate> => {
      const next = state.next;
      if (next.to !== "step" || next.index !== index) throw new Error(`step ${step.name} entered with next=${JSON.stringify(next)}`);
      const view = new RunView(state);
      const stages = step.stages(view);
      const stageValue = stages ? stages[next.stage]! : null;
      const stageTag = stages ? next.stage : null;
      if (step.gated) {
        const kind = step.gateKind(view);
        const d = kind ? await decisionFor(state, step.name, stageTag, kind) : undefined;
        if (!d || d.decision === "reject") throw new AgentError("forbidden", `gated step ${step.name} reached without a recorded approval`);
      }
      const ctx = ctxFor(state, step.name, next.stage);
      const startedAt = now(state);
      const wallStart = deps.wallClock?.() ?? new Date(startedAt);
      const tag = { stage: stageTag, stageValue: step.shownStageValue(stageValue) };
      emit({ type: "step-start", run: state.run, step: step.name, ...tag });
      if (deps.stepStarted) await deps.stepStarted(state.run);
      let record: StepRecord;
      let upcoming: Next;
      let metrics = state.metrics;
      try {
        const res = await step.execute(ctx, view, stageValue);
        fail(`after:${step.name}`);
        const endedAt = now(state);
        record = { name: step.name, ...tag, status: "done", verdict: res.verdict ?? null, startedAt, endedAt, wall: wallBeside(startedAt, endedAt, wallStart), input: res.input, output: res.output };
        if (res.metrics) metrics = { before: res.metrics.before ?? metrics.before, after: res.metrics.after ?? metrics.after };
        if (res.verdict === "degraded") upcoming = { to: "rollback", reason: `${step.name}: ${res.reason ?? "degraded"}`, then: "rolled-back", automatic: true };
        else if (res.verdict === "inconclusive") upcoming = { to: "inconclusive", index, stage: next.stage, reason: `${step.name}: ${res.reason ?? "inconclusive"}` };
        else upcoming = afterStep(state, index, next.stage, stages?.length ?? 1);
        emit({ type: "step-end", run: state.run, step: step.name, ...tag, status: "done", note: res.reason ?? "", verdict: res.verdict ?? null });
      } catch (e) {
        if (isControlFlow(e)) throw e;
        if (e instanceof StepPaused) {
          // Left for a pause: nothing recorded, the run holds before this same step and runs it again on continue.
          emit({ type: "progress", run: state.run, step: step.name, message: e.note });
          return advance(state, { to: "step", index, stage: next.stage });
        }
        const endedAt = now(state);
        record = { name: step.name, ...tag, status: "failed", startedAt, endedAt, wall: wallBeside(startedAt, endedAt, wallStart), input: null, output: null, error: errorText(e) };
        upcoming = index >= coreCount
          ? { to: "finish", status: state.ending?.status ?? "failed", reason: `${step.name} failed: ${errorText(e)}` }
          : { to: "rollback", reason: `${step.name} failed: ${errorText(e)}`, then: "failed", automatic: true };
        emit({ type: "step-end", run: state.run, step: step.name, ...tag, status: "failed", note: errorText(e) });
      }
      const withRecord: RunStateValue = { ...state, steps: [...state.steps, record], metrics };
      if (upcoming.to === "inconclusive") {
        // A cancel or rollback asked for while the window ran wins over asking whether to continue.
        const stop = await controlled(withRecord, { to: "step", index: upcoming.index, stage: upcoming.stage });
        if (stop.to === "rollback") upcoming = stop;
      }
      if (upcoming.to === "inconclusive") {
        const dep = deps.config.deployments[state.deployment]!;
        const gate = await buildGate(withRecord, step.name, null, "inconclusive", `inconclusive:${step.name}:${state.steps.length}`, {
          action: "Continue the workflow with the change in place, although monitoring could not confirm it is healthy",
          why: upcoming.reason,
          risk: `Approving keeps the change without evidence it is healthy. Rejecting rolls back (auto-rollback thresholds: errors > ${dep.monitoring.errorRateThreshold * 100}%, p95 > baseline x ${dep.monitoring.latencyFactor} and +${dep.monitoring.latencyMinDeltaMs} ms).`,
          change: { config: [], resources: [], traffic: null },
        });
        emit({ type: "gate", run: state.run, payload: gate.payload, planHash: gate.planHash });
        return { steps: [record], metrics, next: upcoming, gate };
      }
      // The metrics channel is written only when this step changed them (most steps leave them as they were).
      return { steps: [record], ...(metrics !== state.metrics ? { metrics } : {}), ...(await advance(withRecord, upcoming)) };
    };
  }

  /** Interrupt-only node: asks, then reads the decision row (the source of truth) and checks it again. */
  function approvalNode(step: string) {
    return async (state: RunStateValue): Promise<RunStateUpdate> => {
      const gate = state.gate;
      if (!gate || gate.payload.step !== step) throw new Error(`approval for ${step} has no prepared gate`);
      const { payload } = gate;
      let decision: StoredDecision;
      if (autoApproves(deps.config, state.deployment, payload.kind)) {
        const rec = await deps.store.recordDecision({
          run: state.run, interrupt: `auto:${gate.key}`, step, stage: payload.stage, kind: payload.kind, decision: "auto",
          by: `policy:${state.deployment}`, at: now(state), planHash: gate.planHash, comment: `autoApprove: [${payload.kind}]`, groups: [],
        });
        decision = rec.decision;
      } else {
        const resume = GateResume.parse(interrupt({ ...payload, planHash: gate.planHash }, { responseSchema: GateResume }));
        const stored = await deps.store.getDecision(state.run, resume.interrupt);
        if (!stored) throw new AgentError("forbidden", `no recorded decision for ${step} (interrupt ${resume.interrupt})`);
        if (stored.planHash !== gate.planHash || resume.planHash !== gate.planHash || stored.step !== step) {
          throw new AgentError("stale", `decision ${resume.interrupt} was made on a different plan (${stored.planHash}, now ${gate.planHash})`);
        }
        if (stored.decision === "auto") throw new AgentError("forbidden", "an automatic decision cannot answer a human gate");
        const policy = mayDecide(deps.config, state.deployment, payload, { user: stored.by, groups: stored.groups }, stored.decision);
        if (!policy.ok) throw new AgentError("forbidden", policy.reason);
        decision = stored;
      }
      const { run: _run, groups: _groups, ...record } = decision;
      emit({ type: "decision", run: state.run, step, decision: decision.decision, by: decision.by });
      const base: RunStateUpdate = { decisions: [record], gate: null };
      const withDecision: RunStateValue = { ...state, decisions: [...state.decisions, record], gate: null };
      const at = now(state);
      const n = state.next;
      if (n.to === "hold") {
        await deps.store.resolveControls(state.run, n.kind === "paused" ? ["pause"] : ["rollback-request"], at);
        const by = `${decision.by}${decision.comment ? `: ${decision.comment}` : ""}`;
        if (n.kind === "paused" && decision.decision === "reject") return { ...base, next: { to: "rollback", reason: `cancelled by ${by}`, then: "cancelled" } };
        if (n.kind === "rollback" && decision.decision !== "reject") {
          return { ...base, next: { to: "rollback", reason: `rollback requested by ${n.by}${n.reason ? ` (${n.reason})` : ""}, approved by ${by}`, then: "rolled-back" } };
        }
        return { ...base, ...(await advance(withDecision, { to: "step", ...n.resume })) };
      }
      if (decision.decision === "reject") {
        const reason = `${step} rejected by ${decision.by}${decision.comment ? `: ${decision.comment}` : ""}`;
        if (state.ending) return { ...base, next: { to: "finish", status: state.ending.status, reason: `${state.ending.reason}; ${reason}` } };
        // A reject that answers a cancel or an approver's rollback ends the run as that, not as a rejection.
        const open = await deps.store.openControls(state.run);
        const control = open.find((c) => c.kind === "cancel") ?? open.find((c) => c.kind === "rollback");
        if (!control) return { ...base, next: { to: "rollback", reason, then: "rejected" } };
        const what = control.kind === "cancel" ? "cancelled" : "rollback requested";
        return { ...base, next: { to: "rollback", reason: `${what} by ${control.by} at ${step}${control.reason ? `: ${control.reason}` : ""}`, then: control.kind === "cancel" ? "cancelled" : "rolled-back" } };
      }
      if (payload.kind === "inconclusive") {
        if (n.to !== "inconclusive") throw new Error("inconclusive gate without an inconclusive next");
        const stageCount = steps[n.index]!.stages(new RunView(state))?.length ?? 1;
        return { ...base, ...(await advance(withDecision, afterStep(state, n.index, n.stage, stageCount))) };
      }
      return base;
    };
  }

  async function rollbackNode(state: RunStateValue): Promise<RunStateUpdate> {
    const next = state.next;
    if (next.to !== "rollback") throw new Error("rollback entered without a rollback");
    const ctx = ctxFor(state, ROLLBACK, 0);
    const startedAt = now(state);
    if (next.then !== "rejected") emit({ type: "rollback", run: state.run, reason: next.reason, automatic: next.automatic ?? false });
    let record: StepRecord;
    let result: RollbackResult = { restored: [], leftovers: [] };
    try {
      result = await def.rollback(ctx, new RunView(state));
      record = { name: ROLLBACK, stage: null, status: "done", startedAt, endedAt: now(state), input: { reason: next.reason }, output: result };
    } catch (e) {
      record = { name: ROLLBACK, stage: null, status: "failed", startedAt, endedAt: now(state), input: { reason: next.reason }, output: null, error: errorText(e) };
    }
    const ending = { status: record.status === "done" ? next.then : ("failed" as const), reason: record.status === "done" ? next.reason : `${next.reason}; rollback failed: ${record.error}` };
    const withRecord: RunStateValue = { ...state, steps: [...state.steps, record], ending };
    const upcoming: Next = result.leftovers.length > 0 && def.cleanup
      ? { to: "step", index: coreCount, stage: 0 }
      : { to: "finish", ...ending };
    return { steps: [record], ending, ...(await advance(withRecord, upcoming)) };
  }

  async function finishNode(state: RunStateValue): Promise<RunStateUpdate> {
    const next = state.next;
    if (next.to !== "finish") throw new Error("finish entered without a finish");
    await deps.store.releaseLock(state.deployment, state.run);
    await deps.store.setStatus(state.run, next.status, now(state));
    emit({ type: "finish", run: state.run, status: next.status, reason: next.reason });
    return { status: next.status, outcome: next.reason, gate: null };
  }

  const init = async (state: RunStateValue): Promise<RunStateUpdate> => advance(state, { to: "step", index: 0, stage: 0 });

  /** Where `next` leads. A gated step is only ever reached through its approval node. */
  const route = (n: Next): string => routeTo(steps, n);
  /**
   * From a step's approval node: into that step (the one way in), or to the rollback or the end; null for a `next` that
   * node never sets (a hold or an inconclusive gate is asked by its own node), refused if it ever came.
   */
  const routeFromGate = (step: string) => (n: Next): string | null => (n.to === "step" ? step : n.to === "rollback" || n.to === "finish" ? route(n) : null);

  // Every node routes itself by returning `Command({ goto })` (no conditional edge after each node: one runnable, one
  // config merge and one channel read less per step). The targets each node may go to are declared as its `ends`, and
  // checked here, at build time, against everything its router can answer, so the gates stay structure: a gated step
  // is among the ends of its own approval node only.
  const targets = [
    ...steps.map((s) => (s.gated ? gateNode(s.name) : s.name)),
    INCONCLUSIVE_GATE,
    HOLD_GATE,
    ROLLBACK,
    "finish",
  ];
  type Router = (n: Next) => string | null;
  const routed: { name: string; run: (state: RunStateValue) => Promise<RunStateUpdate>; router: Router; ends: string[] }[] = [
    { name: "init", run: init, router: route, ends: targets },
    { name: ROLLBACK, run: rollbackNode, router: route, ends: targets },
    { name: INCONCLUSIVE_GATE, run: approvalNodeForPrepared("inconclusive"), router: route, ends: targets },
    { name: HOLD_GATE, run: approvalNodeForPrepared("hold"), router: route, ends: targets },
  ];
  for (const [i, s] of steps.entries()) {
    routed.push({ name: s.name, run: stepNode(i), router: route, ends: targets });
    if (s.gated) routed.push({ name: gateNode(s.name), run: approvalNode(s.name), router: routeFromGate(s.name), ends: [s.name, ROLLBACK, "finish"] });
  }
  assertRoutes(def.id, routed, steps);

  const records = recordsBeside(deps.store);
  const graph = new StateGraph<typeof RunState, RunStateValue, RunStateUpdate, string>(RunState).addNode("finish", finishNode);
  for (const r of routed) {
    const ends = new Set(r.ends);
    graph.addNode(
      r.name,
      async (stored: RunStateValue) => {
        const read = records.read(stored);
        const state = read instanceof Promise ? await read : read;
        const update = await records.keep(state, await r.run(state));
        const goto = r.router(update.next ?? state.next);
        // Unreachable after the build-time check; kept because it costs one Set lookup and a wrong edge would skip a gate.
        if (goto === null || !ends.has(goto)) throw new AgentError("forbidden", `${r.name} tried to go to ${goto}, which is not one of its declared ends (${r.ends.join(", ")})`);
        deps.onRoute?.(r.name, goto);
        return new Command({ update, goto });
      },
      { ends: r.ends },
    );
  }
  graph.addEdge(START, "init");
  graph.addEdge("finish", END);
  return graph.compile({ checkpointer: deps.checkpointer });

  /** The gates that are not in front of a step (inconclusive, pause, rollback request) ask what `advance` prepared. */
  function approvalNodeForPrepared(which: "inconclusive" | "hold") {
    return async (state: RunStateValue): Promise<RunStateUpdate> => {
      const gate = state.gate;
      const ok = which === "inconclusive" ? gate?.payload.kind === "inconclusive" : state.next.to === "hold" && gate?.payload.kind === state.next.kind;
      if (!gate || !ok) throw new Error(`${which} gate without a prepared gate`);
      return approvalNode(gate.payload.step)(state);
    };
  }
}

export type WorkflowGraph = ReturnType<typeof buildWorkflowGraph>;

type Transcribed = Pick<RunStateValue, "run" | "steps" | "decisions"> & { recorded?: number; decided?: number };

/**
 * The run's state with its whole transcript in `steps` and `decisions`: the records an earlier version kept in the state,
 * then the `recorded` and `decided` ones kept in the agent's store. Nodes see the transcript as before; checkpoints
 * hold only the counts.
 */
export async function withRecords<S extends Transcribed>(store: AgentStore, state: S): Promise<S> {
  const recorded = state.recorded ?? 0;
  const decided = state.decided ?? 0;
  if (recorded === 0 && decided === 0) return state;
  const steps = state.steps ?? [];
  const decisions = state.decisions ?? [];
  const [moreSteps, moreDecisions] = await Promise.all([
    store.records(state.run, "steps", steps.length, steps.length + recorded),
    store.records(state.run, "decisions", decisions.length, decisions.length + decided),
  ]);
  return {
    ...state,
    steps: moreSteps.length ? [...steps, ...moreSteps.map((r) => StepRecord.parse(r))] : steps,
    decisions: moreDecisions.length ? [...decisions, ...moreDecisions.map((r) => DecisionRecord.parse(r))] : decisions,
  };
}

/** What a node appended to one list, or nothing; a node never overwrites a list. */
function appended<T>(value: T[] | { value: T[] } | undefined, list: string): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`a node may only append to ${list}, not overwrite it`);
  return value;
}

/** Write tokens: unique to this process (a random prefix) and to each write in it (a counter). */
const TIP_PREFIX = randomBytes(6).toString("hex");
let tips = 0;

/** Runs whose records one graph keeps in memory (most recently used); older ones are read from the store again. */
const CACHED_RUNS = 64;

/**
 * The transcript kept beside the checkpoints, for the nodes of one graph: `read` gives a node the state with its whole
 * transcript, `keep` sends what a node appended to the agent's store (at the places after the records the node saw)
 * and leaves only the new counts in the update, so a checkpoint's size no longer grows with the transcript. What this
 * process wrote is cached under the write's token and used only for a state that carries that token.
 */
function recordsBeside(store: AgentStore) {
  const cache = new Map<string, { tip: string; steps: StepRecord[]; decisions: DecisionRecord[] }>();
  const remember = (run: string, entry: { tip: string; steps: StepRecord[]; decisions: DecisionRecord[] }) => {
    cache.delete(run);
    cache.set(run, entry);
    if (cache.size > CACHED_RUNS) cache.delete(cache.keys().next().value!);
  };
  return {
    /** Synchronous when nothing has to be read from the store (a new run, or the records this process cached). */
    read(state: RunStateValue): RunStateValue | Promise<RunStateValue> {
      if ((state.recorded ?? 0) === 0 && (state.decided ?? 0) === 0) return state;
      const hit = state.recordsTip ? cache.get(state.run) : undefined;
      if (hit && hit.tip === state.recordsTip && hit.steps.length === state.recorded && hit.decisions.length === state.decided) {
        // The cached lists are never changed once made (a write makes new ones), so a run with no records in its state
        // (every run this version started) is given them as they are: no copy of the whole transcript per step.
        return {
          ...state,
          steps: state.steps.length ? [...state.steps, ...hit.steps] : hit.steps,
          decisions: state.decisions.length ? [...state.decisions, ...hit.decisions] : hit.decisions,
        };
      }
      return withRecords(store, state).then((full) => {
        if (state.recordsTip) remember(state.run, { tip: state.recordsTip, steps: full.steps.slice(state.steps.length), decisions: full.decisions.slice(state.decisions.length) });
        return full;
      });
    },
    /** `state` is what `read` gave the node: its lists hold the whole transcript. */
    async keep(state: RunStateValue, update: RunStateUpdate): Promise<RunStateUpdate> {
      if (update.steps === undefined && update.decisions === undefined) return update;
      const steps = appended(update.steps as StepRecord[] | { value: StepRecord[] } | undefined, "steps");
      const decisions = appended(update.decisions as DecisionRecord[] | { value: DecisionRecord[] } | undefined, "decisions");
      const { steps: _steps, decisions: _decisions, ...rest } = update;
      if (steps.length === 0 && decisions.length === 0) return rest;
      for (const [i, r] of steps.entries()) await store.putRecord(state.run, "steps", state.steps.length + i, r.name, r);
      for (const [i, d] of decisions.entries()) await store.putRecord(state.run, "decisions", state.decisions.length + i, d.step, d);
      const legacy = { steps: state.steps.length - (state.recorded ?? 0), decisions: state.decisions.length - (state.decided ?? 0) };
      const tip = `${TIP_PREFIX}-${++tips}`;
      remember(state.run, { tip, steps: [...state.steps.slice(legacy.steps), ...steps], decisions: [...state.decisions.slice(legacy.decisions), ...decisions] });
      // Only the counts that changed: every channel written is one more pending-write row per step.
      return {
        ...rest,
        ...(steps.length ? { recorded: (state.recorded ?? 0) + steps.length } : {}),
        ...(decisions.length ? { decided: (state.decided ?? 0) + decisions.length } : {}),
        recordsTip: tip,
      };
    },
  };
}

/** The steps a workflow's graph runs: its own, then the cleanup after a rollback when it has one. */
export function graphSteps(def: WorkflowDef): Step[] {
  return [...def.steps, ...(def.cleanup ? [cleanupStep(def)] : [])];
}

/** The node `next` leads to from any node but a step's approval node: a gated step's own approval node, never the step. */
export function routeTo(steps: readonly Pick<Step, "name" | "gated">[], n: Next): string {
  switch (n.to) {
    case "step": {
      const step = steps[n.index];
      if (!step) throw new Error(`no step at index ${n.index}`);
      return step.gated ? gateNode(step.name) : step.name;
    }
    case "inconclusive":
      return INCONCLUSIVE_GATE;
    case "hold":
      return HOLD_GATE;
    case "rollback":
      return ROLLBACK;
    case "finish":
      return "finish";
  }
}

/** Every `Next` a node can set, as the routers see it (they read only `to` and `index`). */
function everyNext(stepCount: number): Next[] {
  const out: Next[] = [];
  for (let index = 0; index < stepCount; index++) {
    out.push({ to: "step", index, stage: 0 }, { to: "inconclusive", index, stage: 0, reason: "" });
    out.push({ to: "hold", kind: "paused", by: "", reason: "", resume: { index, stage: 0 } });
  }
  out.push({ to: "rollback", reason: "", then: "failed" }, { to: "finish", status: "done", reason: "" });
  return out;
}

/**
 * The build-time check behind routing with `Command({ goto })`: every target any node's router can answer is one of
 * that node's declared ends and a node of the graph, and a gated step is an end of its own approval node and of no
 * other node, so no route, model output or user text reaches a gated step except through its gate.
 */
export function assertRoutes(workflow: string, routed: readonly { name: string; router: (n: Next) => string | null; ends: readonly string[] }[], steps: readonly Pick<Step, "name" | "gated">[]): void {
  const nodes = new Set([...routed.map((r) => r.name), "finish"]);
  for (const r of routed) {
    for (const end of r.ends) if (!nodes.has(end)) throw new Error(`${workflow}: ${r.name} declares end ${end}, which is not a node`);
    for (const n of everyNext(steps.length)) {
      const to = r.router(n);
      if (to !== null && !r.ends.includes(to)) throw new Error(`${workflow}: ${r.name} can go to ${to} (next ${JSON.stringify(n)}), which is not among its declared ends`);
    }
  }
  for (const s of steps.filter((x) => x.gated)) {
    const into = routed.filter((r) => r.ends.includes(s.name)).map((r) => r.name);
    if (into.length !== 1 || into[0] !== gateNode(s.name)) throw new Error(`${workflow}: gated step ${s.name} is reachable from ${into.join(", ") || "nothing"}, not only from ${gateNode(s.name)}`);
  }
}
