import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Command } from "@langchain/langgraph";
import { z } from "zod";
import { loadConfig, requireDeployment, type LoadedConfig } from "./config.js";
import { AgentError, describeIssues } from "./core/errors.js";
import { CLEANUP, buildWorkflowGraph, graphSteps, routeTo, withRecords, type WorkflowGraph } from "./graph/builder.js";
import { openPersistence, agentHome, savedState, type Persistence } from "./graph/checkpointer.js";
import type { EventSink } from "./graph/events.js";
import { identity, isApprover, approverList, mayDecide, type Actor, type Identity } from "./graph/gates.js";
import type { GateTicket, RunRow } from "./store/store.js";
import { GatePayload, type RunStateValue, type StepRecord } from "./graph/state.js";
import { TERMINAL, type DecisionRecord, type RunStatus } from "./core/records.js";
import { type MetricsSummary } from "./core/metrics.js";
import { type DecisionKind } from "./core/gates.js";
import { isBuiltInWorkflow, workflowDef, workflowDefs, workflowModule } from "./graph/workflows/registry.js";
import { planRevert, type RevertPlan } from "./graph/revert/check.js";
import { requireSections } from "./tools/sections.js";
import type { Preflight, WorkflowDef } from "./graph/step.js";
import { SqlCallLog, type ModelCallRecord } from "./planner/calls.js";
import { adapterFactory } from "./sandbox/provider.js";

const PendingValue = GatePayload.extend({ planHash: z.string() });

export interface Pending {
  step: string;
  kind: GatePayload["kind"];
  interrupt: string;
  planHash: string;
  gate: GatePayload;
  /** Wall-clock time after which a decision is refused (null: a pause, which holds until someone acts). */
  expiresAt: string | null;
}

export type { Actor, GateTicket };

/**
 * How a reader looks at a run. A summary is also where a gate is first asked (its ticket opens and its expiry starts)
 * and where a run that never started is marked failed; `readOnly` (the web viewer) leaves both to the fronts that ask:
 * a gate never shown has no expiry yet, and the run is reported as it will be marked.
 */
export interface Look {
  readOnly?: boolean;
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
  /** Raw data behind decisions (metric queries and values), by the key a step output names. */
  evidence: Record<string, unknown>;
  /** Every model call made for this run (planning, thread answers): model, prompt version, tokens, latency, outcome. */
  modelCalls: ModelCallRecord[];
}

export interface EngineOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  config?: LoadedConfig;
  onEvent?: EventSink;
  /** The workflows this engine runs instead of the registry's (tests); by default every registered workflow. */
  workflows?: Record<string, WorkflowDef>;
  /** Wall clock for approval expiry (tests inject a simulated one). */
  now?: () => Date;
  /** Awaited after each step of a run has started, before it acts (a scheduler's yield point; see GraphDeps.stepStarted). */
  stepStarted?: (run: string) => Promise<void>;
}

const LeaseEnv = z.object({
  HONUA_AGENT_HEARTBEAT_MS: z.coerce.number().int().min(100).max(3_600_000).optional(),
  HONUA_AGENT_LEASE_MS: z.coerce.number().int().min(200).max(24 * 3_600_000).optional(),
  HONUA_AGENT_REPLICA: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, '.', '_' or '-', at most 64").optional(),
});

/** How a driver's claim on a run is kept (heartbeat) and when it counts as gone (lease), and the name it claims under. */
export interface LeaseSettings {
  heartbeatMs: number;
  leaseMs: number;
  /** The first part of this process's claims: the host name, or HONUA_AGENT_REPLICA. */
  host: string;
}

/**
 * HONUA_AGENT_HEARTBEAT_MS (default 30 s) and HONUA_AGENT_LEASE_MS (default 4 heartbeats): a claim is renewed every
 * heartbeat and one not renewed for a lease belongs to a driver that is gone. HONUA_AGENT_REPLICA names this process in
 * its claims instead of the host name (replicas sharing a host then judge each other by the lease alone).
 */
export function leaseSettings(env: NodeJS.ProcessEnv): LeaseSettings {
  const parsed = LeaseEnv.safeParse({
    HONUA_AGENT_HEARTBEAT_MS: env.HONUA_AGENT_HEARTBEAT_MS || undefined,
    HONUA_AGENT_LEASE_MS: env.HONUA_AGENT_LEASE_MS || undefined,
    HONUA_AGENT_REPLICA: env.HONUA_AGENT_REPLICA || undefined,
  });
  if (!parsed.success) throw new AgentError("bad-input", `lease settings: ${describeIssues(parsed.error, "env")}; nothing was started`);
  const heartbeatMs = parsed.data.HONUA_AGENT_HEARTBEAT_MS ?? HEARTBEAT_MS;
  const leaseMs = parsed.data.HONUA_AGENT_LEASE_MS ?? (parsed.data.HONUA_AGENT_HEARTBEAT_MS ? 4 * heartbeatMs : CLAIM_LEASE_MS);
  if (leaseMs < 2 * heartbeatMs) {
    throw new AgentError("bad-input", `HONUA_AGENT_LEASE_MS (${leaseMs}) must be at least twice HONUA_AGENT_HEARTBEAT_MS (${heartbeatMs}), or a live driver's claim could lapse between two heartbeats; nothing was started`);
  }
  return { heartbeatMs, leaseMs, host: parsed.data.HONUA_AGENT_REPLICA ?? hostname() };
}

// 40 random bits: with 3 bytes, 1000 runs on one day already collided about once in 30 (seen in the benchmark).
const newRunId = (): string => `run-${new Date().toISOString().slice(0, 10).replaceAll("-", "")}-${randomBytes(5).toString("hex")}`;

const NEVER_STARTED = "never started: interrupted before it took the deployment lock; nothing ran";
const interruptedOutcome = (run: string): string =>
  `its process stopped before the run finished (nothing is driving it); continue it with: honua-agent resume ${run}`;

/** Drives runs: start, decide, resume after a crash, list, transcript. One per process. */
export class Engine {
  private readonly graphs = new Map<string, WorkflowGraph>();
  private readonly owner: string;
  /** Calls of this engine driving (or about to drive) each run: a decision claims a run early only when none does. */
  private readonly driving = new Map<string, number>();

  private constructor(
    readonly config: LoadedConfig,
    readonly persistence: Persistence,
    private readonly adapters: Awaited<ReturnType<typeof adapterFactory>>,
    private readonly env: NodeJS.ProcessEnv,
    private readonly onEvent: EventSink | undefined,
    private readonly only: Record<string, WorkflowDef> | null,
    private readonly clock: () => Date,
    readonly lease: LeaseSettings = leaseSettings({}),
    private readonly stepStarted?: (run: string) => Promise<void>,
  ) {
    this.owner = `${lease.host}:${process.pid}:${randomBytes(3).toString("hex")}`;
  }

  static async open(opts: EngineOptions = {}): Promise<Engine> {
    const env = opts.env ?? process.env;
    const cwd = opts.cwd ?? process.cwd();
    const config = opts.config ?? loadConfig(env, cwd);
    const lease = leaseSettings(env);
    const persistence = await openPersistence(env, cwd);
    return new Engine(config, persistence, await adapterFactory(config.config, agentHome(env, cwd), env), env, opts.onEvent, opts.workflows ?? null, opts.now ?? (() => new Date()), lease, opts.stepStarted);
  }

  get store() {
    return this.persistence.store;
  }

  sandbox() {
    return this.adapters.world();
  }

  /**
   * Puts simulated deployments back to their initial state (all of them, or one), refusing while a run holds one.
   * The runs' records stay: they are history; the deployment is what is reset.
   */
  async resetSandbox(only?: string): Promise<{ deployment: string; rows: number }[]> {
    const names = only ? [requireDeployment(this.config.config, only)[0]] : Object.keys(this.config.config.deployments);
    const sandboxes = names.filter((n) => this.config.config.deployments[n]!.provider === "sandbox");
    if (only && sandboxes.length === 0) throw new AgentError("bad-input", `${names[0]} is not a sandbox deployment (provider ${this.config.config.deployments[names[0]!]!.provider}); only simulated deployments can be reset`);
    for (const n of sandboxes) {
      const holder = await this.store.lockHolder(n);
      const held = holder ? await this.store.getRun(holder) : undefined;
      if (held && !TERMINAL.includes(held.status)) throw new AgentError("conflict", `${n} is held by run ${holder} (${held.status}); cancel it or let it finish before resetting; nothing was reset`);
    }
    const world = this.adapters.world();
    return sandboxes.map((n) => ({ deployment: n, rows: world.reset(n).rows }));
  }

  workflow(id: string): WorkflowDef {
    const def = this.only ? this.only[id] : workflowDef(id);
    if (!def) throw new AgentError("bad-input", `unknown workflow ${id}; known: ${Object.keys(this.only ?? workflowDefs()).join(", ")}`);
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
        ...(this.stepStarted ? { stepStarted: this.stepStarted } : {}),
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

  /**
   * What a plan meets on its deployment, read-only and before anything starts: already in place, not possible as asked,
   * or notes for the plan and the gates. Every front asks this before `start` (which asks again).
   */
  async preflight(planInput: { workflow: string; deployment: string; params: unknown }): Promise<Preflight> {
    const def = this.workflow(planInput.workflow);
    const [deployment] = requireDeployment(this.config.config, planInput.deployment);
    const parsed = def.params.safeParse(planInput.params);
    if (!parsed.success) throw new AgentError("bad-input", `invalid params for ${planInput.workflow}: ${describeIssues(parsed.error, "params")}`);
    this.requireSectionsFor(planInput.workflow, deployment);
    if (def.unavailable || !def.preflight) return { inPlace: null, refuse: null, notes: [] };
    return def.preflight(deployment, this.adapters.adaptersFor(deployment), parsed.data);
  }

  /** A `local`/`aws` deployment must have the sections the workflow uses: each missing one is named with an example. */
  private requireSectionsFor(workflow: string, deployment: string): void {
    const m = this.only ? undefined : workflowModule(workflow);
    const d = this.config.config.deployments[deployment];
    if (m && d) requireSections(deployment, d, m.capabilities, m.summary);
  }

  /** Validates the plan, takes the deployment's lock, and runs to the first gate or the end. */
  async start(planInput: { workflow: string; deployment: string; params: unknown }, requestedBy: string, request: string): Promise<RunSummary> {
    if (isBuiltInWorkflow(planInput.workflow)) throw new AgentError("bad-input", `${planInput.workflow} is not started from a plan: use honua-agent revert RUN; nothing started`);
    return this.startPlan(planInput, requestedBy, request);
  }

  /**
   * What reverting a finished run would put back, checked against the store and the deployment as it is now; throws
   * with the reason when it cannot be reverted (see planRevert). Read-only.
   */
  revertPlan(run: string, actor: Actor): Promise<RevertPlan> {
    return planRevert({ config: this.config.config, store: this.store, adaptersFor: (d) => this.adapters.adaptersFor(d), statusOf: (r) => this.summary(r) }, run, actor);
  }

  /**
   * Starts a revert of a finished run: a new run of its deployment (its own id, lock, checkpoints and decisions) that
   * undoes the run from its journal, each part behind its gate. Runs to its first gate.
   */
  async revert(run: string, actor: Actor): Promise<RunSummary> {
    const { plan } = await this.revertPlan(run, actor);
    return this.startPlan(plan, identity(actor).user, `revert ${run}`);
  }

  private async startPlan(planInput: { workflow: string; deployment: string; params: unknown }, requestedBy: string, request: string): Promise<RunSummary> {
    const plan = planInput;
    const def = this.workflow(plan.workflow);
    const [deployment] = requireDeployment(this.config.config, plan.deployment);
    if (def.unavailable) throw new AgentError("bad-input", `${plan.workflow} cannot run in this version: ${def.unavailable}`);
    const parsed = def.params.safeParse(plan.params);
    if (!parsed.success) throw new AgentError("bad-input", `invalid params for ${plan.workflow}: ${describeIssues(parsed.error, "params")}`);
    const params = parsed.data;
    this.requireSectionsFor(plan.workflow, deployment);
    this.adapters.adaptersFor(deployment); // fails here, before any lock, when the provider cannot run
    // What is already in place starts nothing; a lock held by another run is named below, so a busy deployment is not read.
    if (!(await this.store.lockHolder(deployment))) {
      const pre = await this.preflight({ workflow: plan.workflow, deployment, params });
      if (pre.inPlace) throw new AgentError("in-place", `already in place: ${pre.inPlace.summary} (${pre.inPlace.evidence.join("; ")}); nothing started`, { evidence: pre.inPlace.evidence });
      if (pre.refuse) throw new AgentError("conflict", `${pre.refuse}; nothing started`);
    }
    const run = newRunId();
    const startedAt = this.clock().toISOString();
    // The params are kept with the run, so a run killed before its first checkpoint can start again from its beginning;
    // the row is claimed by this driver from the start, so no one else starts it meanwhile.
    await this.store.createRun({ run, workflow: plan.workflow, deployment, status: "running", requestedBy, startedAt, request, params, owner: this.owner });
    try {
      await this.store.acquireLock(deployment, run, startedAt);
    } catch (e) {
      await this.store.deleteUnstartedRun(run);
      throw e;
    }
    return this.begin({ run, workflow: plan.workflow, deployment, requestedBy, request, params });
  }

  /** Runs a run from its beginning (its lock is held). */
  private begin(r: { run: string; workflow: string; deployment: string; requestedBy: string; request: string; params: Record<string, unknown> }): Promise<RunSummary> {
    return this.drive(r.run, () =>
      this.graph(r.workflow).invoke({ run: r.run, workflow: r.workflow, deployment: r.deployment, requestedBy: r.requestedBy, request: r.request, params: r.params }, this.cfg(r.run)),
    );
  }

  /**
   * Runs `step` while this process owns the run (claimed here, or already by `claimFirst`), then records where the run
   * stands. `waitForClaim`: a decision that won its gate while another click held the run's claim to check the same gate
   * waits (a few seconds at most) for that claim to be given back, since that click has lost and lets go.
   */
  private async drive(run: string, step: () => Promise<unknown>, o: { claimed?: boolean; waitForClaim?: boolean } = {}): Promise<RunSummary> {
    if (!o.claimed) {
      this.enter(run);
      try {
        await this.claimWaiting(run, o.waitForClaim ? CLAIM_WAIT_MS : 0);
      } catch (e) {
        this.leave(run);
        throw e;
      }
    }
    // The claim is a lease: renewed while this process drives the run (a monitoring window can take an hour),
    // so another host can tell a crashed driver from a busy one.
    const beat = setInterval(() => void this.store.heartbeat(run, this.owner, this.clock().toISOString()).catch(() => undefined), this.lease.heartbeatMs);
    beat.unref();
    try {
      await step();
    } finally {
      clearInterval(beat);
      if (this.leave(run)) await this.store.release(run, this.owner);
    }
    const summary = await this.summary(run);
    if (summary.status === "waiting" || summary.status === "paused" || summary.status === "running") await this.store.setStatus(run, summary.status, this.clock().toISOString());
    return summary;
  }

  private enter(run: string): void {
    this.driving.set(run, (this.driving.get(run) ?? 0) + 1);
  }

  /** True when no other call of this engine still drives the run (its claim may then be given back). */
  private leave(run: string): boolean {
    const n = (this.driving.get(run) ?? 1) - 1;
    if (n > 0) this.driving.set(run, n);
    else this.driving.delete(run);
    return n <= 0;
  }

  /** Claims the run, trying again for up to `waitMs` while another live driver holds it. */
  private async claimWaiting(run: string, waitMs: number): Promise<void> {
    for (let waited = 0; ; waited += CLAIM_RETRY_MS) {
      try {
        await this.store.claim(run, this.owner, this.clock().toISOString(), (owner, claimedAt) => this.alive(owner, claimedAt));
        return;
      } catch (e) {
        if (!(e instanceof AgentError && e.code === "conflict") || waited >= waitMs) throw e;
        await new Promise((r) => setTimeout(r, CLAIM_RETRY_MS));
      }
    }
  }

  /**
   * Claims a run before its state is read for a decision, when no other call of this engine drives it and no other live
   * process does (false otherwise: the decision then goes the way it always did, claiming in `drive`). While the claim
   * is held no one else writes the run's checkpoints, so the state read to check the gate is the one the resume starts
   * from, and is read once.
   */
  private async claimFirst(row: RunRow): Promise<boolean> {
    const run = row.run;
    if (this.driving.has(run)) return false;
    this.enter(run);
    try {
      await this.store.claim(run, this.owner, this.clock().toISOString(), (owner, claimedAt) => this.alive(owner, claimedAt), row);
      return true;
    } catch (e) {
      this.leave(run);
      if (e instanceof AgentError && e.code === "conflict") return false;
      throw e;
    }
  }

  /** Gives back a claim `claimFirst` took when the decision stopped before driving the run. */
  private async unclaim(run: string): Promise<void> {
    if (this.leave(run)) await this.store.release(run, this.owner);
  }

  /**
   * Where a run stands. A run that is neither finished nor waiting for a decision, and that no live process drives
   * (its driver was killed), is `interrupted`: `resume` continues it. `status`, `runs` and `resume` all say so.
   */
  async summary(run: string, look: Look = {}): Promise<RunSummary> {
    return this.summaryOf(await this.requireRun(run), look);
  }

  /** The summary of a run whose row was just read (a decision reads it once). */
  private async summaryOf(row: RunRow, look: Look = {}): Promise<RunSummary> {
    const run = row.run;
    const saved = await savedState(this.persistence.checkpointer, { configurable: { thread_id: run } });
    const values = saved.values as Partial<RunStateValue>;
    const found = this.pendingOf(saved.interrupts);
    const pending = found ? await (look.readOnly ? this.ticketed(run, found) : this.withTicket(run, found)) : null;
    const base = { run, workflow: row.workflow, deployment: row.deployment };
    if (!saved.createdAt) {
      if (TERMINAL.includes(row.status)) return { ...base, status: row.status, outcome: row.status === "failed" ? NEVER_STARTED : null, pending: null };
      if (await this.neverStarted(row, look)) return { ...base, status: "failed", outcome: NEVER_STARTED, pending: null };
      // An earlier version's start may still be under way (it names its driver only once it has the lock).
      if (row.params === null) return { ...base, status: "running", outcome: null, pending: null };
    }
    if (pending) return { ...base, status: pending.kind === "paused" ? "paused" : "waiting", outcome: values.outcome ?? null, pending };
    if (values.status && TERMINAL.includes(values.status)) return { ...base, status: values.status, outcome: values.outcome ?? null, pending: null };
    if (TERMINAL.includes(row.status)) return { ...base, status: row.status, outcome: values.outcome ?? null, pending: null };
    if (!(await this.driven(run))) return { ...base, status: "interrupted", outcome: interruptedOutcome(run), pending: null };
    return { ...base, status: "running", outcome: values.outcome ?? null, pending: null };
  }

  /** Whether a live process holds the run's claim (same host: its process exists; another host: its lease is fresh). */
  private async driven(run: string): Promise<boolean> {
    const claim = await this.store.claimOf(run);
    return claim !== undefined && claim.owner !== null && this.alive(claim.owner, claim.claimedAt);
  }

  /** Whether the driver named by a claim is there, judged now by this engine's lease. */
  private alive(owner: string, claimedAt: string | null): boolean {
    return isAlive(owner, claimedAt, this.clock().getTime(), { host: this.lease.host, leaseMs: this.lease.leaseMs });
  }

  /**
   * Runs whose driver is gone (its process is not there, or its claim was not renewed for a lease) and that have
   * something to drive: steps to run (`interrupted`), or a decision recorded at the gate they wait at but not yet
   * applied. Another replica takes each over with `resume`; the claim is a compare-and-swap, so only one does.
   */
  async orphans(): Promise<string[]> {
    const out: string[] = [];
    for (const c of await this.store.claimedRuns()) {
      if (c.owner === this.owner || this.alive(c.owner, c.claimedAt)) continue;
      const s = await this.summary(c.run).catch(() => null);
      if (!s) continue;
      if (s.status === "interrupted") out.push(c.run);
      else if (s.pending && (await this.store.getDecision(c.run, s.pending.interrupt))) out.push(c.run);
    }
    return out;
  }

  /**
   * A run with no checkpoint was interrupted before its first step (the first checkpoint is written before any step
   * runs): nothing ran. It can start again from its beginning when its params were kept and its deployment is free
   * or already its own. It never will when another run holds the deployment now, or when it was recorded by an
   * earlier version, without its params, and no live process is starting it (such a row names no driver until it
   * took its lock: it counts as being started for a minute). Then it is marked failed, and gives back the
   * deployment if it took it, so it neither stays "running" nor holds the deployment forever.
   */
  private async neverStarted(row: RunRow, look: Look = {}): Promise<boolean> {
    if (await this.driven(row.run)) return false;
    const holder = await this.store.lockHolder(row.deployment);
    // A lock left by a run that has ended is taken over by the next one (acquireLock): the deployment is free.
    const free = holder === undefined || holder === row.run || TERMINAL.includes((await this.store.getRun(holder))?.status ?? "running");
    if (row.params !== null ? free : this.clock().getTime() - Date.parse(row.startedAt) < 60_000) return false;
    // Only looking: the run is shown as it will be marked, and the next summary that may write marks it.
    if (look.readOnly) return true;
    await this.store.setStatus(row.run, "failed", this.clock().toISOString());
    await this.store.releaseLock(row.deployment, row.run);
    return true;
  }

  /** The gate a run waits at: the first of its waiting interrupts that carries a gate payload. */
  private pendingOf(interrupts: readonly { id?: string; value?: unknown }[]): Omit<Pending, "expiresAt"> | null {
    for (const i of interrupts) {
      const v = PendingValue.safeParse(i.value);
      if (i.id && v.success) {
        const { planHash, ...gate } = v.data;
        return { step: gate.step, kind: gate.kind, interrupt: i.id, planHash, gate };
      }
    }
    return null;
  }

  private expiryFor(deployment: string, kind: DecisionKind, from: Date): string | null {
    if (kind === "paused") return null;
    const ttl = this.config.config.deployments[deployment]?.policy.approvalTtlMinutes;
    const minutes = ttl ? ttl[kind] : 60;
    return new Date(from.getTime() + minutes * 60_000).toISOString();
  }

  /** The first time a gate is seen its ticket opens: that wall-clock moment starts its expiry. */
  private async withTicket(run: string, p: Omit<Pending, "expiresAt">): Promise<Pending> {
    const asked = this.clock();
    const ticket = await this.store.openTicket({
      run, interrupt: p.interrupt, step: p.step, kind: p.kind, planHash: p.planHash,
      askedAt: asked.toISOString(), expiresAt: this.expiryFor(p.gate.deployment, p.kind, asked),
    });
    return { ...p, expiresAt: ticket.expiresAt };
  }

  /** The gate as already asked, without asking it: its ticket's expiry, or none when no one has been shown it yet. */
  private async ticketed(run: string, p: Omit<Pending, "expiresAt">): Promise<Pending> {
    return { ...p, expiresAt: (await this.store.getTicket(run, p.interrupt))?.expiresAt ?? null };
  }

  private expired(p: Pending): boolean {
    return p.expiresAt !== null && this.clock().getTime() >= Date.parse(p.expiresAt);
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
  async decide(run: string, actor: Actor, decision: "approve" | "reject", opts: { planHash?: string; comment?: string } = {}): Promise<RunSummary> {
    const who = identity(actor);
    const row = await this.requireRun(run);
    // Claimed before the state is read when it can be: the read that checks the gate is then the one the resume starts from.
    let claimed = await this.claimFirst(row);
    const disarm = claimed ? this.persistence.carry.hold(run) : undefined;
    const giveBack = async () => {
      if (!claimed) return;
      claimed = false;
      disarm?.(); // without the claim, a read kept for the resume could be outdated by another process
      await this.unclaim(run);
    };
    try {
      let current = await this.summaryOf(row);
      // A run with nothing waiting is told as it stands, not as driven by this call.
      if (!current.pending && claimed) {
        await giveBack();
        current = await this.summary(run);
      }
      if (!current.pending) {
        const last = (await this.store.listDecisions(run)).at(-1);
        // A second click that lost to one whose run already went on is told who decided (the gate is already gone).
        const verb = last ? (last.decision === "approve" ? "approved" : last.decision === "reject" ? "rejected" : "decided") : "";
        const who = last ? `; last decision: ${last.step} already ${verb} by ${last.by} at ${last.wallAt ?? last.at}` : "";
        throw new AgentError("stale", `run ${run} has no decision waiting (status ${current.status})${who}`);
      }
      const p = current.pending;
      if (opts.planHash && opts.planHash !== p.planHash) {
        const prior = await this.store.listDecisions(run);
        const decided = prior.find((d) => d.planHash === opts.planHash);
        throw new AgentError("stale", decided
          ? `that gate was already decided: ${decided.decision} by ${decided.by} at ${decided.wallAt ?? decided.at}`
          : `the plan changed since it was shown (shown ${opts.planHash}, now ${p.planHash} for ${p.step}); nothing was decided`);
      }
      const policy = mayDecide(this.config.config, row.deployment, { kind: p.kind, requestedBy: row.requestedBy }, who, decision);
      if (!policy.ok) throw new AgentError("forbidden", policy.reason);
      // Rejecting never moves a run forward (it restores), so only an approval needs a request that is still open.
      if (decision === "approve" && this.expired(p)) {
        throw new AgentError("stale", `the approval request for ${p.step} expired at ${p.expiresAt}; nothing proceeds on expiry. Ask again (honua-agent request-again ${run}, or "request again" in Slack), then decide`);
      }
      const rec = await this.store.recordDecision({
        run, interrupt: p.interrupt, step: p.step, stage: p.gate.stage, kind: p.kind, decision, by: who.user,
        ...this.decisionTimes(row.deployment), planHash: p.planHash, comment: opts.comment ?? null, groups: who.groups,
      }, { closeTicketAt: this.clock().toISOString(), deployment: row.deployment });
      if (!rec.won) {
        const d = rec.decision;
        throw new AgentError("stale", `${p.step} was already ${d.decision === "approve" ? "approved" : d.decision === "reject" ? "rejected" : "decided"} by ${d.by} at ${d.wallAt ?? d.at}; nothing changed`);
      }
      const held = claimed;
      claimed = false; // from here `drive` gives the claim back
      return await this.drive(run, () => this.graph(row.workflow).invoke(new Command({ resume: { interrupt: p.interrupt, planHash: p.planHash } }), this.cfg(run)).finally(() => disarm?.()), { claimed: held, waitForClaim: !held });
    } finally {
      disarm?.();
      await giveBack();
    }
  }

  /**
   * A decision is stamped on the run's clock, as its steps are (simulated in the sandbox), so the transcript reads in
   * one order; the wall-clock time goes beside it where the two differ.
   */
  private decisionTimes(deployment: string): { at: string; wallAt?: string } {
    const wall = this.clock();
    const run = this.adapters.adaptersFor(deployment).clock.now();
    return Math.abs(run.getTime() - wall.getTime()) > 1000 ? { at: run.toISOString(), wallAt: wall.toISOString() } : { at: run.toISOString() };
  }

  /**
   * Continues a run after a crash, from what is on disk:
   * - no checkpoint: the process died before the run's first step; it starts again from its beginning (its lock
   *   is taken if it did not get it), with the params recorded when it was started;
   * - waiting at a gate whose decision was recorded but not applied: the decision is applied;
   * - steps still to run, or a step that finished whose checkpoint was not written (the checkpoint shows no next
   *   task, but the step's writes are saved with it): LangGraph's own resume (`invoke(null)`) applies the saved
   *   writes without running the step again and goes on where they lead;
   * - a checkpoint with nothing left to run that never finished (e.g. written by a graph whose nodes have changed
   *   since): driven on from the state's own `next`, through the node whose edge routes by it.
   * Another live process driving the run is refused (conflict); a run that never took its deployment's lock and lost
   * it to another run meanwhile ends failed (never started). `status` and `runs` agree with what this answers.
   */
  async resume(run: string): Promise<RunSummary> {
    const row = await this.requireRun(run);
    const g = this.graph(row.workflow);
    const snap = await g.getState(this.cfg(run));
    if (!snap.createdAt) return this.restart(row);
    const pending = this.pendingOf(snap.tasks.flatMap((t) => t.interrupts));
    if (pending) {
      const d = await this.store.getDecision(run, pending.interrupt);
      if (!d) return this.summary(run);
      return this.drive(run, () => g.invoke(new Command({ resume: { interrupt: pending.interrupt, planHash: pending.planHash } }), this.cfg(run)));
    }
    const values = snap.values as Partial<RunStateValue>;
    if (values.status && TERMINAL.includes(values.status)) return this.summary(run);
    const saved = snap.tasks.some((t) => t.result !== undefined);
    if (snap.next.length > 0 || saved) return this.drive(run, () => g.invoke(null, this.cfg(run)));
    return this.drive(run, () => g.invoke(new Command({ goto: this.stalledTarget(row.workflow, values) }), this.cfg(run)));
  }

  /**
   * Where a stalled run goes on, by its state's `next` alone, as every node routes. After a gate was answered (its
   * prepared gate cleared) the way on is that gate's own way out, into the step it guards, which re-reads the recorded
   * decision before it acts. Nothing here can skip a gate.
   */
  private stalledTarget(workflow: string, values: Partial<RunStateValue>): string {
    const next = values.next ?? { to: "step" as const, index: 0, stage: 0 };
    const steps = graphSteps(this.workflow(workflow));
    if (next.to === "step" && values.gate === null && steps[next.index]?.gated) return steps[next.index]!.name;
    return routeTo(steps, next);
  }

  /** A run with no checkpoint starts again from its beginning; nothing of it ran. */
  private async restart(row: RunRow): Promise<RunSummary> {
    if (TERMINAL.includes(row.status) || row.params === null || (await this.neverStarted(row))) return this.summary(row.run);
    await this.store.acquireLock(row.deployment, row.run, this.clock().toISOString());
    return this.begin({ ...row, params: row.params });
  }

  /** The requester or an approver may pause, continue or cancel a run. */
  private async controllable(run: string, actor: Actor, what: string) {
    const row = await this.requireRun(run);
    const who = identity(actor);
    if (who.user !== row.requestedBy && !isApprover(this.config.config, row.deployment, who)) {
      throw new AgentError("forbidden", `${who.user} may not ${what} run ${run}: only its requester (${row.requestedBy}) or an approver of ${row.deployment} (${approverList(this.config.config, row.deployment)})`);
    }
    const current = await this.summary(run);
    if (TERMINAL.includes(current.status)) throw new AgentError("stale", `run ${run} already ended (${current.status}${current.outcome ? `: ${current.outcome}` : ""}); nothing to ${what}`);
    return { row, who, current };
  }

  private async addControl(run: string, kind: "pause" | "cancel" | "rollback" | "rollback-request", by: string, reason: string): Promise<void> {
    const at = this.clock().toISOString();
    await this.store.addControl({ run, id: `${kind}:${at}:${randomBytes(3).toString("hex")}`, kind, by, reason, at });
  }

  /**
   * A cancel or rollback recorded as the answer to the gate the run waits at. When someone else decided that
   * gate first, the control is already recorded and acts before the next step: that is not an error.
   */
  private async answerForControl(run: string, who: Identity, decision: "approve" | "reject", p: Pending, comment: string): Promise<RunSummary> {
    try {
      return await this.decide(run, who, decision, { planHash: p.planHash, comment });
    } catch (e) {
      if (e instanceof AgentError && e.code === "stale") return this.summary(run);
      throw e;
    }
  }

  /** Once a run has rolled back, what is left is a delete decision; a cancel or rollback must not answer it. */
  private refuseAtCleanup(current: RunSummary): void {
    if (current.pending?.step === CLEANUP) {
      throw new AgentError("conflict", `run ${current.run} has already rolled back; what it left waits at ${CLEANUP} (delete): decide it with the card's buttons or honua-agent approve|reject`);
    }
  }

  /** Holds the run before its next step (a running step finishes first; a watch window is left at once and continued from its start). A run waiting at a gate stays there. */
  async pause(run: string, actor: Actor, reason = ""): Promise<RunSummary> {
    const { who, current } = await this.controllable(run, actor, "pause");
    if (current.status === "paused") return current;
    const open = await this.store.openControls(run);
    if (!open.some((c) => c.kind === "pause")) await this.addControl(run, "pause", who.user, reason);
    return this.summary(run);
  }

  /** Continues a paused run (each later gate is still asked); a pause that has not taken effect yet is withdrawn. */
  async unpause(run: string, actor: Actor): Promise<RunSummary> {
    const { who, current } = await this.controllable(run, actor, "resume");
    if (current.pending?.kind === "paused") return this.decide(run, who, "approve", { planHash: current.pending.planHash, comment: "continue" });
    await this.store.resolveControls(run, ["pause"], this.clock().toISOString());
    return current;
  }

  /**
   * Cancels a run: what it changed is restored (the same rollback as a rejection), and it ends "cancelled".
   * At a gate the cancel is recorded as that gate's rejection; otherwise it acts before the next step.
   */
  async cancel(run: string, actor: Actor, reason = ""): Promise<RunSummary> {
    const { who, current } = await this.controllable(run, actor, "cancel");
    this.refuseAtCleanup(current);
    if (current.pending?.kind === "rollback") {
      throw new AgentError("conflict", `run ${run} is waiting for an approver to decide a rollback request; an approver (${approverList(this.config.config, current.deployment)}) can approve it`);
    }
    await this.addControl(run, "cancel", who.user, reason);
    if (current.pending) return this.answerForControl(run, who, "reject", current.pending, `cancelled${reason ? `: ${reason}` : ""}`);
    return this.summary(run);
  }

  /**
   * An approver's rollback acts now (at a gate) or before the next step. Anyone else's becomes a `rollback`
   * gate that an approver must approve: a request, never an action.
   */
  async requestRollback(run: string, actor: Actor, reason: string): Promise<{ acted: boolean; summary: RunSummary; message: string }> {
    const row = await this.requireRun(run);
    const who = identity(actor);
    const current = await this.summary(run);
    if (TERMINAL.includes(current.status)) {
      throw new AgentError("stale", `run ${run} already ended (${current.status}); ${current.status === "done" ? `its change is in place: revert it instead (honua-agent revert ${run}, or "revert it" in its thread), a new run behind the same gates` : "there is nothing left to roll back"}`);
    }
    this.refuseAtCleanup(current);
    const approvers = approverList(this.config.config, row.deployment);
    if (isApprover(this.config.config, row.deployment, who)) {
      await this.addControl(run, "rollback", who.user, reason);
      const p = current.pending;
      if (p) {
        const summary = await this.answerForControl(run, who, p.kind === "rollback" ? "approve" : "reject", p, `rollback${reason ? `: ${reason}` : ""}`);
        return { acted: true, summary, message: `rolling back run ${run} (requested by ${who.user})` };
      }
      return { acted: true, summary: await this.summary(run), message: `run ${run} will roll back before its next step (requested by ${who.user})` };
    }
    await this.addControl(run, "rollback-request", who.user, reason);
    const where = current.pending ? `it is waiting at ${current.pending.step} (${current.pending.kind}); an approver can reject that gate to roll back now, or ` : "";
    return {
      acted: false,
      summary: await this.summary(run),
      message: `${who.user} may not roll back ${row.deployment} alone: ${where}the request will be put to the approvers (${approvers}) before the next step`,
    };
  }

  /** Gates waiting for a decision, with their wall-clock expiry and which notices went out. */
  async pendingGates(): Promise<GateTicket[]> {
    const out: GateTicket[] = [];
    for (const t of await this.store.openTickets()) {
      const s = await this.summary(t.run).catch(() => null);
      if (s?.pending?.interrupt === t.interrupt) out.push((await this.store.getTicket(t.run, t.interrupt)) ?? t);
      else await this.store.closeTicket(t.run, t.interrupt, this.clock().toISOString());
    }
    return out;
  }

  /** Records that a warning or expiry notice went out; true only the first time, so each is sent once. */
  noteGate(run: string, interrupt: string, notice: "warned" | "expired"): Promise<boolean> {
    return this.store.noteTicket(run, interrupt, notice, this.clock().toISOString());
  }

  /** Re-opens an expired approval request with a fresh expiry; the gate itself (and its plan hash) is unchanged. */
  async requestAgain(run: string, actor: Actor): Promise<RunSummary> {
    const { current } = await this.controllable(run, actor, "re-request approval for");
    const p = current.pending;
    if (!p) throw new AgentError("stale", `run ${run} has no decision waiting (status ${current.status})`);
    if (!this.expired(p)) throw new AgentError("conflict", `the approval request for ${p.step} has not expired (expires ${p.expiresAt})`);
    const asked = this.clock();
    await this.store.renewTicket(run, p.interrupt, asked.toISOString(), this.expiryFor(current.deployment, p.kind, asked));
    const renewed = await this.summary(run);
    if (renewed.pending) this.onEvent?.({ type: "gate", run, payload: renewed.pending.gate, planHash: renewed.pending.planHash });
    return renewed;
  }

  /** A deployment's adapters, for read-only uses (the conversation's metrics and cost now). */
  adaptersFor(deployment: string) {
    return this.adapters.adaptersFor(deployment);
  }

  async runs(look: Look = {}) {
    const rows = await this.store.listRuns();
    for (const r of rows) if (!TERMINAL.includes(r.status)) r.status = (await this.summary(r.run, look)).status;
    return rows.map(({ run, workflow, deployment, status, requestedBy, startedAt }) => ({ run, workflow, deployment, status, requestedBy, startedAt }));
  }

  /** A run's state values as its latest checkpoint saved them (empty before its first checkpoint). */
  async values(run: string): Promise<Partial<RunStateValue>> {
    return (await savedState(this.persistence.checkpointer, { configurable: { thread_id: run } })).values as Partial<RunStateValue>;
  }

  async transcript(run: string, look: Look = {}): Promise<Transcript> {
    const row = await this.requireRun(run);
    const v = await this.values(run);
    const s = await this.summaryOf(row, look);
    return {
      run, workflow: row.workflow, deployment: row.deployment, status: s.status, requestedBy: row.requestedBy, request: row.request,
      ...(await this.recordsOf(run, v)), metrics: v.metrics ?? { before: null, after: null }, outcome: v.outcome ?? null,
      evidence: await this.store.evidence(run),
      modelCalls: await (await SqlCallLog.open(this.store.sql)).forRun(run),
    };
  }

  /**
   * The run's step records and applied decisions, from one state snapshot (or `values` already read): those an earlier
   * version kept in the state, then those kept in the agent's store that the snapshot counts.
   */
  async recordsOf(run: string, values?: Partial<RunStateValue>): Promise<{ steps: StepRecord[]; decisions: DecisionRecord[] }> {
    const v = values ?? (await this.values(run));
    const { steps, decisions } = await withRecords(this.store, { run, steps: v.steps ?? [], decisions: v.decisions ?? [], recorded: v.recorded, decided: v.decided });
    return { steps, decisions };
  }

  async close(): Promise<void> {
    this.adapters.close();
    await this.persistence.close();
  }
}

const HEARTBEAT_MS = 30_000;
/** How long a decision that won its gate waits for a losing click to give the run's claim back, and how often it asks. */
const CLAIM_WAIT_MS = 5_000;
const CLAIM_RETRY_MS = 25;
/** A claim not renewed for this long belongs to a driver that is gone. */
export const CLAIM_LEASE_MS = 4 * HEARTBEAT_MS;

/**
 * Same host: is the process there. Another host (or another replica name): was the claim renewed within the lease.
 * `self` is this process's claim name and lease (default: the host name and CLAIM_LEASE_MS).
 */
export function isAlive(owner: string, claimedAt: string | null, now: number, self: { host: string; leaseMs: number } = { host: hostname(), leaseMs: CLAIM_LEASE_MS }): boolean {
  const [host, pid] = owner.split(":");
  if (host !== self.host || host !== hostname()) return claimedAt === null ? true : now - Date.parse(claimedAt) < self.leaseMs;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}
