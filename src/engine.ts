import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Command } from "@langchain/langgraph";
import { z } from "zod";
import { loadConfig, requireDeployment, type LoadedConfig } from "./config.js";
import { AgentError } from "./errors.js";
import { buildWorkflowGraph, type WorkflowGraph } from "./graph/builder.js";
import { openPersistence, agentHome, type Persistence } from "./graph/checkpointer.js";
import type { EventSink } from "./graph/events.js";
import { mayDecide } from "./graph/gates.js";
import { GatePayload, TERMINAL, type DecisionRecord, type MetricsSummary, type RunStateValue, type RunStatus, type StepRecord } from "./graph/state.js";
import { WORKFLOWS } from "./graph/workflows/index.js";
import type { WorkflowDef } from "./graph/step.js";
import { adapterFactory } from "./sandbox/provider.js";

const PendingValue = GatePayload.extend({ planHash: z.string() });

export interface Pending {
  step: string;
  kind: GatePayload["kind"];
  interrupt: string;
  planHash: string;
  gate: GatePayload;
}

/** What `run`, `approve`, `reject` and `resume` report (DESIGN.md shape plus the gate for humans). */
export interface RunSummary {
  run: string;
  workflow: string;
  deployment: string;
  status: RunStatus;
  outcome: string | null;
  pending: Pending | null;
}

export interface Transcript {
  run: string;
  workflow: string;
  deployment: string;
  status: RunStatus;
  requestedBy: string;
  request: string;
  steps: StepRecord[];
  decisions: DecisionRecord[];
  metrics: { before: MetricsSummary | null; after: MetricsSummary | null };
  outcome: string | null;
}

export interface EngineOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  config?: LoadedConfig;
  onEvent?: EventSink;
  /** The workflows this engine can run; the five built-in ones by default. */
  workflows?: Record<string, WorkflowDef>;
}

const newRunId = (): string => `run-${new Date().toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(3).toString("hex")}`;

/** Drives runs: start, decide, resume after a crash, list, transcript. One per process. */
export class Engine {
  private readonly graphs = new Map<string, WorkflowGraph>();
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;

  private constructor(
    readonly config: LoadedConfig,
    readonly persistence: Persistence,
    private readonly adapters: ReturnType<typeof adapterFactory>,
    private readonly env: NodeJS.ProcessEnv,
    private readonly onEvent: EventSink | undefined,
    private readonly workflows: Record<string, WorkflowDef>,
  ) {}

  static async open(opts: EngineOptions = {}): Promise<Engine> {
    const env = opts.env ?? process.env;
    const cwd = opts.cwd ?? process.cwd();
    const config = opts.config ?? loadConfig(env, cwd);
    const persistence = await openPersistence(env, cwd);
    return new Engine(config, persistence, adapterFactory(config.config, agentHome(env, cwd), env), env, opts.onEvent, opts.workflows ?? WORKFLOWS);
  }

  get store() {
    return this.persistence.store;
  }

  sandbox() {
    return this.adapters.world();
  }

  workflow(id: string): WorkflowDef {
    const def = this.workflows[id];
    if (!def) throw new AgentError("bad-input", `unknown workflow ${id}; known: ${Object.keys(this.workflows).join(", ")}`);
    return def;
  }

  graph(workflow: string): WorkflowGraph {
    let g = this.graphs.get(workflow);
    if (!g) {
      g = buildWorkflowGraph(this.workflow(workflow), {
        config: this.config.config,
        store: this.store,
        checkpointer: this.persistence.checkpointer,
        adaptersFor: (d) => this.adapters.adaptersFor(d),
        onEvent: this.onEvent,
        failpoint: (name) => {
          if (this.env.HONUA_AGENT_FAILPOINT === name) process.kill(process.pid, "SIGKILL");
        },
      });
      this.graphs.set(workflow, g);
    }
    return g;
  }

  private cfg(run: string) {
    return { configurable: { thread_id: run }, durability: "sync" as const, recursionLimit: 500 };
  }

  /** Validates the plan, takes the deployment's lock, and runs to the first gate or the end. */
  async start(planInput: { workflow: string; deployment: string; params: unknown }, requestedBy: string, request: string): Promise<RunSummary> {
    const plan = planInput;
    const def = this.workflow(plan.workflow);
    const [deployment] = requireDeployment(this.config.config, plan.deployment);
    if (def.unavailable) throw new AgentError("bad-input", `${plan.workflow} cannot run in this version: ${def.unavailable}`);
    const parsed = def.params.safeParse(plan.params);
    if (!parsed.success) throw new AgentError("bad-input", `invalid params for ${plan.workflow}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "params"}: ${i.message}`).join("; ")}`);
    const params = parsed.data;
    this.adapters.adaptersFor(deployment); // fails here, before any lock, when the provider cannot run
    const run = newRunId();
    const startedAt = new Date().toISOString();
    await this.store.createRun({ run, workflow: plan.workflow, deployment, status: "running", requestedBy, startedAt, request });
    try {
      await this.store.acquireLock(deployment, run, startedAt);
    } catch (e) {
      await this.store.deleteUnstartedRun(run);
      throw e;
    }
    return this.drive(run, plan.workflow, () =>
      this.graph(plan.workflow).invoke({ run, workflow: plan.workflow, deployment, requestedBy, request, params }, this.cfg(run)),
    );
  }

  /** Runs `step` while this process owns the run, then records where the run stands. */
  private async drive(run: string, workflow: string, step: () => Promise<unknown>): Promise<RunSummary> {
    await this.store.claim(run, this.owner, (owner) => isAlive(owner));
    try {
      await step();
    } finally {
      await this.store.release(run, this.owner);
    }
    const summary = await this.summary(run, workflow);
    if (summary.status === "waiting" || summary.status === "running") await this.store.setStatus(run, summary.status, new Date().toISOString());
    return summary;
  }

  async summary(run: string, workflowHint?: string): Promise<RunSummary> {
    const row = await this.requireRun(run);
    const snap = await this.graph(workflowHint ?? row.workflow).getState(this.cfg(run));
    const values = snap.values as Partial<RunStateValue>;
    const pending = this.pendingOf(snap.tasks);
    const status: RunStatus = pending ? "waiting" : values.status && TERMINAL.includes(values.status) ? values.status : row.status === "waiting" ? "running" : row.status;
    return { run, workflow: row.workflow, deployment: row.deployment, status, outcome: values.outcome ?? null, pending };
  }

  private pendingOf(tasks: readonly { interrupts: readonly { id?: string; value?: unknown }[] }[]): Pending | null {
    for (const t of tasks) {
      for (const i of t.interrupts) {
        const v = PendingValue.safeParse(i.value);
        if (i.id && v.success) {
          const { planHash, ...gate } = v.data;
          return { step: gate.step, kind: gate.kind, interrupt: i.id, planHash, gate };
        }
      }
    }
    return null;
  }

  private async requireRun(run: string) {
    const row = await this.store.getRun(run);
    if (!row) throw new AgentError("not-found", `unknown run ${run}`);
    return row;
  }

  /**
   * Records a decision once, bound to the plan hash shown, then resumes. A second click on the same gate,
   * a click on a stale card, or a click from someone the policy does not allow changes nothing.
   */
  async decide(run: string, user: string, decision: "approve" | "reject", opts: { planHash?: string; comment?: string } = {}): Promise<RunSummary> {
    const row = await this.requireRun(run);
    const current = await this.summary(run);
    if (!current.pending) {
      const last = (await this.store.listDecisions(run)).at(-1);
      const who = last ? `; last decision: ${last.decision} of ${last.step} by ${last.by} at ${last.at}` : "";
      throw new AgentError("stale", `run ${run} has no decision waiting (status ${current.status})${who}`);
    }
    const p = current.pending;
    if (opts.planHash && opts.planHash !== p.planHash) {
      const prior = await this.store.listDecisions(run);
      const decided = prior.find((d) => d.planHash === opts.planHash);
      throw new AgentError("stale", decided
        ? `that gate was already decided: ${decided.decision} by ${decided.by} at ${decided.at}`
        : `the plan changed since it was shown (shown ${opts.planHash}, now ${p.planHash} for ${p.step}); nothing was decided`);
    }
    const policy = mayDecide(this.config.config, row.deployment, { kind: p.kind, requestedBy: row.requestedBy }, user, decision);
    if (!policy.ok) throw new AgentError("forbidden", policy.reason);
    const rec = await this.store.recordDecision({
      run, interrupt: p.interrupt, step: p.step, stage: p.gate.stage, kind: p.kind, decision, by: user,
      at: new Date().toISOString(), planHash: p.planHash, comment: opts.comment ?? null,
    });
    if (!rec.won) {
      const d = rec.decision;
      throw new AgentError("stale", `${p.step} was already ${d.decision === "approve" ? "approved" : d.decision === "reject" ? "rejected" : "decided"} by ${d.by} at ${d.at}; nothing changed`);
    }
    return this.drive(run, row.workflow, () => this.graph(row.workflow).invoke(new Command({ resume: { interrupt: p.interrupt, planHash: p.planHash } }), this.cfg(run)));
  }

  /** Continues a run after a crash: a recorded but unapplied decision is applied; an interrupted step re-runs. */
  async resume(run: string): Promise<RunSummary> {
    const row = await this.requireRun(run);
    const g = this.graph(row.workflow);
    const snap = await g.getState(this.cfg(run));
    const pending = this.pendingOf(snap.tasks);
    if (pending) {
      const d = await this.store.getDecision(run, pending.interrupt);
      if (!d) return this.summary(run);
      return this.drive(run, row.workflow, () => g.invoke(new Command({ resume: { interrupt: pending.interrupt, planHash: pending.planHash } }), this.cfg(run)));
    }
    if (snap.next.length === 0) return this.summary(run);
    return this.drive(run, row.workflow, () => g.invoke(null, this.cfg(run)));
  }

  async runs() {
    return (await this.store.listRuns()).map(({ run, workflow, deployment, status, requestedBy, startedAt }) => ({ run, workflow, deployment, status, requestedBy, startedAt }));
  }

  async transcript(run: string): Promise<Transcript> {
    const row = await this.requireRun(run);
    const snap = await this.graph(row.workflow).getState(this.cfg(run));
    const v = snap.values as Partial<RunStateValue>;
    const s = await this.summary(run);
    return {
      run, workflow: row.workflow, deployment: row.deployment, status: s.status, requestedBy: row.requestedBy, request: row.request,
      steps: v.steps ?? [], decisions: v.decisions ?? [], metrics: v.metrics ?? { before: null, after: null }, outcome: v.outcome ?? null,
    };
  }

  async close(): Promise<void> {
    this.adapters.close();
    await this.persistence.close();
  }
}

function isAlive(owner: string): boolean {
  const [host, pid] = owner.split(":");
  if (host !== hostname()) return true; // another host: assume alive (no liveness check across hosts)
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}
