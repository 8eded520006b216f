/**
 * Executors for the conversation's tools. A factory receives only what the tools may touch (the engine's read
 * and control API, the actor, the environment for the sandbox's faults) and never the approval path.
 */
import type { Actor, Engine, Transcript } from "../engine.js";
import { AgentError } from "../core/errors.js";
import type { StepRecord } from "../graph/state.js";
import type { MetricsSummary } from "../core/metrics.js";
import { snapshot } from "../tools/metrics/observe.js";
import type { DeploymentAdapters } from "../tools/types.js";
import { TOOL_DEFS, type ToolCall, type ToolName, type ToolResult } from "./tools.js";
import { workflowModule } from "../graph/workflows/registry.js";
import { renderDiff } from "../tools/config/diff.js";

export interface ExecutorDeps {
  engine: Engine;
  run: string;
  actor: Exclude<Actor, string>;
  env: NodeJS.ProcessEnv;
}

type Executor = (args: never) => Promise<Record<string, unknown>>;

interface Window {
  /** Position of the step record in the transcript. */
  index: number;
  step: string;
  stage: number | null;
  endedAt: string;
  window: MetricsSummary;
}

/** Metrics windows recorded by steps (baseline, each rollout stage, the monitoring window), in run order. */
function windows(steps: readonly StepRecord[]): Window[] {
  const out: Window[] = [];
  for (const [index, s] of steps.entries()) {
    if (s.status !== "done" || !s.output || typeof s.output !== "object") continue;
    const o = s.output as { baseline?: MetricsSummary; window?: MetricsSummary };
    const w = o.window ?? o.baseline;
    if (w && typeof w === "object" && "samples" in w) out.push({ index, step: s.name, stage: s.stage, endedAt: s.endedAt, window: w });
  }
  return out;
}

const GATE_KINDS = new Set(["provision", "traffic", "delete"]);

/**
 * What was known when each decision was made. Decision times are wall clock and step times are the deployment's
 * (simulated in the sandbox), so they are matched by order instead: the n-th decision of a kind on a step belongs
 * to the n-th run of that step; a gate is decided before its step runs, any other decision after it.
 */
function atDecisions(t: Transcript, ws: readonly Window[]) {
  return t.decisions.map((d, i) => {
    const nth = t.decisions.slice(0, i).filter((x) => x.step === d.step && x.kind === d.kind).length;
    const record = t.steps.flatMap((s, idx) => (s.name === d.step ? [idx] : []))[nth];
    const limit = record === undefined ? t.steps.length : GATE_KINDS.has(d.kind) ? record : record + 1;
    return {
      step: d.step, stage: d.stage, kind: d.kind, decision: d.decision, by: d.by, at: d.at,
      metrics: ws.filter((w) => w.index < limit).at(-1)?.window ?? null,
    };
  });
}


/** Adapters to read a deployment now; null when its provider cannot be reached from here (the answer says so). */
function liveAdapters(deps: ExecutorDeps, deployment: string): DeploymentAdapters | null {
  try {
    return deps.engine.adaptersFor(deployment);
  } catch {
    return null;
  }
}

export function makeExecutors(deps: ExecutorDeps): { [N in ToolName]: (args: Extract<ToolCall, { tool: N }>["args"]) => Promise<Record<string, unknown>> } {
  const { engine, run, actor } = deps;
  const status = async () => {
    const s = await engine.summary(run);
    const t = await engine.transcript(run);
    const p = s.pending;
    return {
      run, workflow: s.workflow, deployment: s.deployment, status: s.status, outcome: s.outcome, requestedBy: t.requestedBy,
      pending: p
        ? { step: p.step, stage: p.gate.stage, kind: p.kind, action: p.gate.action, why: p.gate.why, risk: p.gate.risk, approvers: p.gate.approvers, expiresAt: p.expiresAt ?? null }
        : null,
      lastStep: t.steps.at(-1) ? { name: t.steps.at(-1)!.name, status: t.steps.at(-1)!.status, error: t.steps.at(-1)!.error ?? null } : null,
    };
  };
  return {
    run_status: status,
    async metrics() {
      const t = await engine.transcript(run);
      const s = await engine.summary(run);
      const dep = engine.config.config.deployments[t.deployment];
      const adapters = liveAdapters(deps, t.deployment);
      const now = adapters && dep ? await snapshot(adapters, dep.monitoring.stageMinutes, dep.monitoring.sampleEveryMinutes) : null;
      const ws = windows(t.steps);
      const atDecision = atDecisions(t, ws);
      return {
        deployment: t.deployment,
        now,
        nowNote: now ? null : "the deployment's metrics could not be read now; showing what the run recorded",
        atPendingGate: s.pending?.gate.metricsNow ?? null,
        before: t.metrics.before,
        after: t.metrics.after,
        windows: ws.map((w) => ({ step: w.step, stage: w.stage, ...w.window, endedAt: w.endedAt })),
        atDecision,
      };
    },
    async plan_and_diff() {
      const t = await engine.transcript(run);
      const s = await engine.summary(run);
      // What the run changed in Honua's config, as its journal recorded it (the rollback restores exactly this).
      const applied = (await engine.store.journal(run)).flatMap((e) => e.effects.flatMap((f) => (f.kind === "config" ? [{ key: f.key, before: f.before, after: f.after }] : [])));
      return {
        request: t.request, workflow: t.workflow, deployment: t.deployment, requestedBy: t.requestedBy,
        steps: engine.workflow(t.workflow).steps.map((st) => ({ name: st.name, gated: st.gated })),
        design: workflowModule(t.workflow)?.facets?.design?.(t.steps) ?? null,
        appliedDiff: applied.length ? renderDiff(applied) : null,
        pendingChange: s.pending ? s.pending.gate.change : null,
      };
    },
    async transcript_excerpt(args) {
      const t = await engine.transcript(run);
      const last = args.last ?? 8;
      return {
        status: t.status, outcome: t.outcome, totalSteps: t.steps.length,
        steps: t.steps.slice(-last).map((s) => ({ name: s.name, stage: s.stage, stageValue: s.stageValue ?? null, status: s.status, endedAt: s.endedAt, error: s.error ?? null })),
        decisions: t.decisions.map((d) => ({ step: d.step, stage: d.stage, kind: d.kind, decision: d.decision, by: d.by, at: d.at, comment: d.comment })),
      };
    },
    async deployments() {
      const cfg = engine.config.config;
      const out = [];
      for (const [name, d] of Object.entries(cfg.deployments)) {
        out.push({ name, aliases: d.aliases, provider: d.provider, approvers: d.approvers, lockedBy: (await engine.store.lockHolder(name)) ?? null });
      }
      return { deployments: out };
    },
    async cost() {
      const t = await engine.transcript(run);
      const adapters = liveAdapters(deps, t.deployment);
      const monthlyNow = adapters ? await adapters.cost.monthly() : null;
      return {
        estimate: workflowModule(t.workflow)?.facets?.cost?.(t.steps) ?? null,
        monthlyNow,
        monthlyTotalNow: monthlyNow ? Number(Object.values(monthlyNow).reduce((a, b) => a + b, 0).toFixed(2)) : null,
        before: t.metrics.before?.monthlyCostUsd ?? null,
        after: t.metrics.after?.monthlyCostUsd ?? null,
      };
    },
    async pause_run(args) {
      const s = await engine.pause(run, actor, args.reason ?? "");
      return { status: s.status, pending: s.pending ? { step: s.pending.step, kind: s.pending.kind } : null };
    },
    async resume_run() {
      const s = await engine.unpause(run, actor);
      return { status: s.status, pending: s.pending ? { step: s.pending.step, kind: s.pending.kind } : null };
    },
    async cancel_run(args) {
      const s = await engine.cancel(run, actor, args.reason ?? "");
      return { status: s.status, outcome: s.outcome, pending: s.pending ? { step: s.pending.step, kind: s.pending.kind } : null };
    },
    async request_rollback(args) {
      const r = await engine.requestRollback(run, actor, args.reason ?? "requested in the thread");
      return { acted: r.acted, message: r.message, status: r.summary.status, pending: r.summary.pending ? { step: r.summary.pending.step, kind: r.summary.pending.kind } : null };
    },
    async revert_run(args) {
      const target = args.run ?? run;
      const s = await engine.revert(target, actor);
      return { target, revert: s.run, status: s.status, pending: s.pending ? { step: s.pending.step, kind: s.pending.kind } : null };
    },
  };
}

/** Validates a call against its schema, runs it, and turns any error into a readable result. */
export async function execute(deps: ExecutorDeps, call: { tool: string; args: unknown }): Promise<{ call: ToolCall | null; result: ToolResult }> {
  if (!(call.tool in TOOL_DEFS)) {
    return { call: null, result: { ok: false, code: "bad-input", error: `no tool named ${call.tool}; gates are decided only by approvers through the approval buttons or honua-agent approve|reject` } };
  }
  const name = call.tool as ToolName;
  const parsed = TOOL_DEFS[name].schema.safeParse(call.args ?? {});
  if (!parsed.success) return { call: null, result: { ok: false, code: "bad-input", error: `${name}: ${parsed.error.issues.map((i) => i.message).join("; ")}` } };
  const typed = { tool: name, args: parsed.data } as ToolCall;
  const executors = makeExecutors(deps) as Record<ToolName, Executor>;
  try {
    const data = await executors[name](typed.args as never);
    return { call: typed, result: { ok: true, data } };
  } catch (e) {
    if (e instanceof AgentError) return { call: typed, result: { ok: false, code: e.code, error: e.message } };
    return { call: typed, result: { ok: false, code: "failed", error: e instanceof Error ? e.message : String(e) } };
  }
}
