import { z } from "zod";
import type { Engine, Pending, Transcript } from "../engine.js";
import { RunStatus, type DecisionRecord } from "../core/records.js";
import type { Monitoring } from "../core/monitoring.js";
import { planHash } from "../graph/gates.js";
import { PendingGate, type GatePayload } from "../graph/state.js";
import { workflowModule } from "../graph/workflows/registry.js";
import { verifyAudit, type ChainCheck } from "../store/audit.js";

/** The viewer only looks: it opens no gate's ticket (a gate's expiry starts where it is asked) and marks no run. */
const READ_ONLY = { readOnly: true } as const;

const Filter = z.string().trim().min(1).max(200).optional();

/** The runs list's filters and page, from the query string; a value that is not one of them is bad input. */
export const RunsQuery = z
  .object({
    deployment: Filter, workflow: Filter, status: RunStatus.optional(), requester: Filter,
    page: z.string().regex(/^[1-9][0-9]{0,5}$/, "a page number from 1").transform(Number).optional(),
  })
  .strict();
export type RunsQuery = z.infer<typeof RunsQuery>;

/** One row of the runs list: what `runs --json` prints, and what a waiting run waits on. */
export interface RunRowView {
  run: string;
  workflow: string;
  deployment: string;
  status: RunStatus;
  requestedBy: string;
  startedAt: string;
  waitingOn: { step: string; kind: Pending["kind"]; stage: string | null; expiresAt: string | null; approvers: string[] } | null;
}

/** Runs shown on one page of the list, newest first. */
export const RUNS_PAGE_SIZE = 100;

export interface RunsView {
  /** The matching runs on this page. */
  rows: RunRowView[];
  /** How many runs match the filters, on every page. */
  matched: number;
  /** This page (from 1), the number of pages (at least 1), and the first row's position among the matches (from 1). */
  page: number;
  pages: number;
  first: number;
  /** Every value seen, for the filter menus. */
  choices: { deployment: string[]; workflow: string[]; requester: string[] };
  total: number;
}

const uniq = (xs: string[]): string[] => [...new Set(xs)].sort();

/** The runs list, newest first, through the engine the `runs` command reads (SQLite or PostgreSQL store alike). */
export async function runsView(engine: Engine, q: RunsQuery, pageSize = RUNS_PAGE_SIZE): Promise<RunsView> {
  const all = await engine.runs(READ_ONLY);
  const matching = all.filter(
    (r) => (!q.deployment || r.deployment === q.deployment) && (!q.workflow || r.workflow === q.workflow) && (!q.status || r.status === q.status) && (!q.requester || r.requestedBy === q.requester),
  );
  const pages = Math.max(1, Math.ceil(matching.length / pageSize));
  const page = q.page ?? 1;
  // What a waiting run waits on is read for the rows shown only.
  const rows = matching.slice((page - 1) * pageSize, page * pageSize);
  const out: RunRowView[] = [];
  for (const r of rows) {
    let waitingOn: RunRowView["waitingOn"] = null;
    if (r.status === "waiting" || r.status === "paused") {
      const p = (await engine.summary(r.run, READ_ONLY)).pending;
      if (p) waitingOn = { step: p.step, kind: p.kind, stage: stageOf(p.gate), expiresAt: p.expiresAt, approvers: p.gate.approvers };
    }
    out.push({ ...r, waitingOn });
  }
  return {
    rows: out,
    matched: matching.length,
    page,
    pages,
    first: (page - 1) * pageSize + 1,
    total: all.length,
    choices: { deployment: uniq(all.map((r) => r.deployment)), workflow: uniq(all.map((r) => r.workflow)), requester: uniq(all.map((r) => r.requestedBy)) },
  };
}

export const stageOf = (g: Pick<GatePayload, "stage" | "stageValue" | "stageCount">): string | null =>
  g.stage === null ? null : `stage ${g.stage + 1}${g.stageCount ? ` of ${g.stageCount}` : ""}${g.stageValue === null || g.stageValue === undefined ? "" : ` (${g.stageValue}%)`}`;

/** A gate as the approver was asked it, with what was decided on it (null: not decided, or still waiting). */
export interface GateView {
  key: string;
  payload: GatePayload;
  /** The plan hash the card carried. */
  planHash: string;
  /** Whether the hash of the payload kept in the checkpoint is the hash the card carried (and the decision names). */
  hashVerifies: boolean;
  decision: DecisionRecord | null;
  /** The gate waiting now (with its expiry), if this is it. */
  pending: { expiresAt: string | null } | null;
}

export interface RunView {
  transcript: Transcript;
  gates: GateView[];
  /** Decisions no gate in the checkpoint history names (kept in the store; shown on their own). */
  unmatched: DecisionRecord[];
  chain: ChainCheck | null;
  report: string | null;
  /** The deployment's monitoring thresholds as configured now (null: no longer in the config), for the chart limits. */
  monitoring: Monitoring | null;
}

/**
 * Every gate the run asked, oldest first, read from its checkpoint history (the `gate` channel holds each payload,
 * exactly as shown, before its interrupt), joined to the decisions by plan hash, step and stage.
 */
async function gatesOf(engine: Engine, t: Transcript, pending: Pending | null): Promise<{ gates: GateView[]; unmatched: DecisionRecord[] }> {
  const seen = new Map<string, PendingGate>();
  const history: PendingGate[] = [];
  for await (const snap of engine.graph(t.workflow).getStateHistory({ configurable: { thread_id: t.run } })) {
    const g = PendingGate.safeParse((snap.values as { gate?: unknown }).gate);
    if (!g.success) continue;
    const id = `${g.data.key}\u0000${g.data.planHash}`;
    if (seen.has(id)) continue;
    seen.set(id, g.data);
    history.push(g.data);
  }
  history.reverse();
  if (pending && !history.some((g) => g.planHash === pending.planHash)) history.push({ key: pending.interrupt, payload: pending.gate, planHash: pending.planHash });
  const left = [...t.decisions];
  const gates = history.map((g): GateView => {
    const i = left.findIndex((d) => d.planHash === g.planHash && d.step === g.payload.step && d.stage === g.payload.stage);
    const decision = i >= 0 ? left.splice(i, 1)[0]! : null;
    return {
      key: g.key,
      payload: g.payload,
      planHash: g.planHash,
      hashVerifies: planHash(g.payload) === g.planHash,
      decision,
      pending: pending && pending.planHash === g.planHash ? { expiresAt: pending.expiresAt } : null,
    };
  });
  return { gates, unmatched: left };
}

/** Everything the run page shows, read through the engine and store the `transcript` command uses. */
export async function runView(engine: Engine, run: string): Promise<RunView> {
  const transcript = await engine.transcript(run, READ_ONLY);
  const summary = await engine.summary(run, READ_ONLY);
  const { gates, unmatched } = await gatesOf(engine, transcript, summary.pending);
  const chain = (await verifyAudit(engine.store.sql, transcript.deployment)).find((c) => c.deployment === transcript.deployment) ?? null;
  const report = workflowModule(transcript.workflow)?.facets?.report?.(transcript.steps) ?? null;
  const monitoring = engine.config.config.deployments[transcript.deployment]?.monitoring ?? null;
  return { transcript, gates, unmatched, chain, report, monitoring };
}
