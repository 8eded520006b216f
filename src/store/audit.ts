import { createHash } from "node:crypto";
import { z } from "zod";
import { canonicalJson } from "../core/canonical.js";
import type { Sql } from "./sql.js";

/**
 * The tamper-evident audit chain: one chain per deployment, appended in the same transaction as the record each entry
 * describes. An entry's body is the canonical JSON of its envelope (deployment, seq, kind, ref, at) and a snapshot of
 * the record as written; `hash = sha256(prev_hash || body)` (hex text concatenated with the body's UTF-8), the first
 * entry's prev_hash being GENESIS. `verify` walks the links and also recomputes each record's snapshot from the row as
 * it is now, so editing or deleting a decision or journal row is caught as surely as editing the chain.
 *
 * Anyone who can write the database can also rebuild the whole chain: keep the head hash `verify` prints (or the
 * exported JSONL) somewhere else to detect that.
 */

export const GENESIS = "0".repeat(64);

/** The chain of records whose run is not in the agent's records (and operator actions naming no deployment). */
export const UNASSIGNED = "*";

export const AuditKind = z.enum(["baseline", "decision", "control", "control-resolved", "journal-intend", "journal-done", "operator-action"]);
export type AuditKind = z.infer<typeof AuditKind>;

type RecordType = "decision" | "control" | "journal" | "operator-action";
type Row = Record<string, unknown>;

const RECORD_OF: Record<Exclude<AuditKind, "baseline">, RecordType> = {
  decision: "decision",
  control: "control",
  "control-resolved": "control",
  "journal-intend": "journal",
  "journal-done": "journal",
  "operator-action": "operator-action",
};

const text = (v: unknown): string => String(v);
const optText = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const optInt = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** A JSON column's value; a column edited into something that is not JSON still compares (and differs) as text. */
const jsonOf = (v: unknown): unknown => {
  try {
    return JSON.parse(String(v)) as unknown;
  } catch {
    return String(v);
  }
};

/** Each audited table: where it lives, how an entry names a row, and the fields of a row that matter. */
const RECORDS: Record<RecordType, { table: string; ref(r: Row): string; snapshot(r: Row): Record<string, unknown> }> = {
  decision: {
    table: "honua_decisions",
    ref: (r) => `${text(r.run)}/${text(r.interrupt)}`,
    snapshot: (r) => ({
      run: text(r.run), interrupt: text(r.interrupt), step: text(r.step), stage: optInt(r.stage), kind: text(r.kind),
      decision: text(r.decision), by: text(r.by_user), at: text(r.at), wallAt: optText(r.wall_at), planHash: text(r.plan_hash),
      comment: optText(r.comment), groups: jsonOf(r.member_of ?? "[]"),
    }),
  },
  control: {
    table: "honua_controls",
    ref: (r) => `${text(r.run)}/${text(r.id)}`,
    snapshot: (r) => ({ run: text(r.run), id: text(r.id), kind: text(r.kind), by: text(r.by_user), reason: text(r.reason), at: text(r.at), resolvedAt: optText(r.resolved_at) }),
  },
  journal: {
    table: "honua_journal",
    ref: (r) => `${text(r.run)}/${text(r.key)}`,
    snapshot: (r) => ({
      run: text(r.run), key: text(r.key), step: text(r.step), stage: optInt(r.stage), seq: Number(r.seq),
      effects: jsonOf(r.effects), done: Number(r.done) === 1, at: text(r.at),
    }),
  },
  "operator-action": {
    table: "honua_operator_actions",
    ref: (r) => text(r.id),
    snapshot: (r) => ({ id: text(r.id), at: text(r.at), actor: text(r.actor), action: text(r.action), deployment: optText(r.deployment), run: optText(r.run), detail: text(r.detail) }),
  },
};

/** The name of the lock that serialises appends to one deployment's chain (take it last: it is the innermost lock). */
export const auditLock = (deployment: string): string => `honua-audit:${deployment}`;

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export const AuditEntry = z.object({
  deployment: z.string(),
  seq: z.number().int().positive(),
  /** An AuditKind as written; as stored, whatever the row now says. */
  kind: z.string(),
  ref: z.string(),
  at: z.string(),
  /** The canonical JSON that was hashed. */
  body: z.string(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

const toEntry = (r: Row): AuditEntry => ({
  deployment: text(r.deployment), seq: Number(r.seq), kind: text(r.kind), ref: text(r.ref), at: text(r.at), body: text(r.body), prevHash: text(r.prev_hash), hash: text(r.hash),
});

/**
 * Appends one entry at the head of `deployment`'s chain. The caller holds `auditLock(deployment)` in the transaction that
 * wrote the record, so the entry commits with it or not at all and two appenders cannot fork the chain (the primary key
 * on (deployment, seq) refuses a fork that slipped past the lock).
 */
export async function appendAudit(sql: Sql, e: { deployment: string; kind: AuditKind; ref: string; at: string; record: unknown }): Promise<AuditEntry> {
  const head = await sql.query(`SELECT seq, hash FROM honua_audit WHERE deployment = ? ORDER BY seq DESC LIMIT 1`, [e.deployment]);
  const seq = head[0] ? Number(head[0].seq) + 1 : 1;
  const prevHash = head[0] ? text(head[0].hash) : GENESIS;
  const body = canonicalJson({ v: 1, deployment: e.deployment, seq, kind: e.kind, ref: e.ref, at: e.at, record: e.record });
  const hash = sha256(prevHash + body);
  await sql.query(`INSERT INTO honua_audit (deployment, seq, kind, ref, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [e.deployment, seq, e.kind, e.ref, e.at, body, prevHash, hash]);
  return { deployment: e.deployment, seq, kind: e.kind, ref: e.ref, at: e.at, body, prevHash, hash };
}

/** Appends the entry describing `row` (as read back from its table in the same transaction). */
export function appendRecord(sql: Sql, deployment: string, kind: Exclude<AuditKind, "baseline">, row: Row, at: string): Promise<AuditEntry> {
  const rec = RECORDS[RECORD_OF[kind]];
  return appendAudit(sql, { deployment, kind, ref: rec.ref(row), at, record: rec.snapshot(row) });
}

/** The deployment a run's records are chained under. */
export async function deploymentOfRun(sql: Sql, run: string): Promise<string> {
  const rows = await sql.query(`SELECT deployment FROM honua_runs WHERE run = ?`, [run]);
  return rows[0] ? text(rows[0].deployment) : UNASSIGNED;
}

interface CurrentRecord {
  type: RecordType;
  ref: string;
  deployment: string;
  at: string;
  snapshot: Record<string, unknown>;
}

/** Every audited record as it is now, and per deployment how many operator actions carry no id (written before ids). */
async function currentRecords(sql: Sql): Promise<{ records: CurrentRecord[]; unnamedActions: Map<string, number> }> {
  const runs = new Map((await sql.query(`SELECT run, deployment FROM honua_runs`)).map((r) => [text(r.run), text(r.deployment)]));
  const records: CurrentRecord[] = [];
  const unnamedActions = new Map<string, number>();
  for (const type of Object.keys(RECORDS) as RecordType[]) {
    const rec = RECORDS[type];
    for (const r of await sql.query(`SELECT * FROM ${rec.table}`)) {
      const deployment = type === "operator-action" ? optText(r.deployment) ?? UNASSIGNED : runs.get(text(r.run)) ?? UNASSIGNED;
      if (type === "operator-action" && (r.id === null || r.id === undefined)) {
        unnamedActions.set(deployment, (unnamedActions.get(deployment) ?? 0) + 1);
        continue;
      }
      records.push({ type, ref: rec.ref(r), deployment, at: text(r.at), snapshot: rec.snapshot(r) });
    }
  }
  return { records, unnamedActions };
}

const Baseline = z.object({ refs: z.record(z.string(), z.array(z.string())), unnamedOperatorActions: z.number().int() });

/**
 * When the chain is added to a store that already holds records: one `baseline` entry per deployment naming the records
 * that predate the chain (no entry is invented for them), so verify can tell them from a record whose entry was removed.
 * Runs inside the setup transaction.
 */
export async function baselineAudit(sql: Sql): Promise<number> {
  const { records, unnamedActions } = await currentRecords(sql);
  const deployments = new Set([...records.map((r) => r.deployment), ...unnamedActions.keys()]);
  for (const deployment of [...deployments].sort()) {
    const mine = records.filter((r) => r.deployment === deployment);
    const refs: Record<string, string[]> = {};
    for (const r of mine) (refs[r.type] ??= []).push(r.ref);
    for (const list of Object.values(refs)) list.sort();
    const at = mine.map((r) => r.at).sort().at(-1) ?? "";
    await sql.exclusive(auditLock(deployment), () =>
      appendAudit(sql, { deployment, kind: "baseline", ref: "", at, record: { refs, unnamedOperatorActions: unnamedActions.get(deployment) ?? 0 } }),
    );
  }
  return deployments.size;
}

export interface AuditProblem {
  seq: number;
  kind: string;
  ref: string;
  why: string;
}

export interface ChainCheck {
  deployment: string;
  entries: number;
  /** Records written before the chain was added to this store (named by its baseline entry): not audited, not an error. */
  predating: number;
  /** The hash of the last entry: keep it elsewhere to detect a rewrite of the whole chain. */
  head: string | null;
  /** The first broken entry (lowest seq), or null when the chain verifies. */
  broken: AuditProblem | null;
  problems: number;
}

/** Top-level fields that differ between what was audited and the record now. */
function differences(audited: unknown, now: Record<string, unknown>): string {
  const was = audited && typeof audited === "object" ? (audited as Record<string, unknown>) : {};
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
  return keys
    .filter((k) => canonicalJson(was[k]) !== canonicalJson(now[k]))
    .map((k) => `${k} was ${canonicalJson(was[k])}, now ${canonicalJson(now[k])}`)
    .join("; ");
}

/** Checks every chain (or one deployment's): links, hashes, order, and each described record against the row as it is now. */
export async function verifyAudit(sql: Sql, deployment?: string): Promise<ChainCheck[]> {
  const rows = (await sql.query(`SELECT * FROM honua_audit ORDER BY deployment, seq`)).map(toEntry);
  const { records, unnamedActions } = await currentRecords(sql);
  const byRef = new Map(records.map((r) => [`${r.type}\u0000${r.ref}`, r]));
  const names = new Set([...rows.map((r) => r.deployment), ...records.map((r) => r.deployment), ...unnamedActions.keys()]);
  if (deployment !== undefined) {
    for (const n of [...names]) if (n !== deployment) names.delete(n);
    names.add(deployment);
  }
  const out: ChainCheck[] = [];
  for (const name of [...names].sort()) {
    const chain = rows.filter((r) => r.deployment === name);
    const problems: AuditProblem[] = [];
    const latest = new Map<string, { seq: number; kind: string; ref: string; record: unknown }>();
    const baseline = new Set<string>();
    let unnamedAllowed = 0;
    let expected = 1;
    let prev = GENESIS;
    for (const e of chain) {
      const problem = (why: string) => problems.push({ seq: e.seq, kind: e.kind, ref: e.ref, why });
      if (e.seq !== expected) problems.push({ seq: expected, kind: e.kind, ref: e.ref, why: `entry ${expected} is missing: the chain goes from ${expected - 1} to ${e.seq} (an entry was deleted)` });
      expected = e.seq + 1;
      const linkedTo = prev;
      prev = e.hash;
      let body: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(e.body);
        if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
        body = parsed as Record<string, unknown>;
      } catch {
        problem("its body is not a JSON object (the entry was edited)");
        continue;
      }
      const envelope: [string, unknown][] = [["seq", e.seq], ["deployment", e.deployment], ["kind", e.kind], ["ref", e.ref], ["at", e.at]];
      const moved = envelope.find(([k, v]) => body[k] !== v);
      if (moved) {
        problem(`its ${moved[0]} column is ${JSON.stringify(moved[1])} but the body it was hashed with says ${JSON.stringify(body[moved[0]])} (the entry was edited or moved)`);
        continue;
      }
      if (sha256(e.prevHash + e.body) !== e.hash) {
        problem("its hash does not match its body (the entry was edited)");
        continue;
      }
      if (e.prevHash !== linkedTo) {
        problem(`its prev_hash is not the hash of entry ${e.seq - 1} (an entry before it was edited, deleted or moved)`);
        continue;
      }
      if (e.kind === "baseline") {
        const b = Baseline.safeParse(body.record);
        if (!b.success) {
          problem("its baseline record is malformed");
          continue;
        }
        for (const [type, refs] of Object.entries(b.data.refs)) for (const ref of refs) baseline.add(`${type}\u0000${ref}`);
        unnamedAllowed += b.data.unnamedOperatorActions;
        continue;
      }
      const kind = AuditKind.safeParse(e.kind);
      if (!kind.success || kind.data === "baseline") {
        problem(`its kind ${JSON.stringify(e.kind)} is not one the agent writes`);
        continue;
      }
      latest.set(`${RECORD_OF[kind.data]}\u0000${e.ref}`, { seq: e.seq, kind: e.kind, ref: e.ref, record: body.record });
    }
    // Each record against the last entry that describes it.
    for (const [key, entry] of latest) {
      const type = key.split("\u0000")[0]!;
      const now = byRef.get(key);
      if (!now) problems.push({ seq: entry.seq, kind: entry.kind, ref: entry.ref, why: `the ${type} record it describes is gone (deleted)` });
      else {
        const diff = differences(entry.record, now.snapshot);
        if (diff) problems.push({ seq: entry.seq, kind: entry.kind, ref: entry.ref, why: `the ${type} record differs from what was audited: ${diff}` });
      }
    }
    let predating = 0;
    const after = (chain.at(-1)?.seq ?? 0) + 1;
    for (const r of records.filter((x) => x.deployment === name)) {
      const key = `${r.type}\u0000${r.ref}`;
      if (latest.has(key)) continue;
      if (baseline.has(key)) predating++;
      else problems.push({ seq: after, kind: r.type, ref: r.ref, why: `this ${r.type} record has no audit entry (its entry was deleted, or it was written around the agent)` });
    }
    const unnamed = unnamedActions.get(name) ?? 0;
    predating += Math.min(unnamed, unnamedAllowed);
    if (unnamed > unnamedAllowed) problems.push({ seq: after, kind: "operator-action", ref: "", why: `${unnamed - unnamedAllowed} operator action(s) carry no id and predate nothing (written around the agent)` });
    problems.sort((a, b) => a.seq - b.seq);
    out.push({ deployment: name, entries: chain.length, predating, head: chain.at(-1)?.hash ?? null, broken: problems[0] ?? null, problems: problems.length });
  }
  return out;
}

export function renderVerify(checks: ChainCheck[]): string {
  return checks
    .map((c) => {
      if (c.broken) {
        const b = c.broken;
        const more = c.problems > 1 ? ` (${c.problems - 1} more problem${c.problems > 2 ? "s" : ""} after it)` : "";
        return `${c.deployment}: chain broken at seq ${b.seq} (${b.kind}${b.ref ? ` ${b.ref}` : ""}): ${b.why}${more}`;
      }
      const pre = c.predating ? `; ${c.predating} record${c.predating === 1 ? "" : "s"} predate the chain (not audited)` : "";
      return `${c.deployment}: chain verifies: ${c.entries} entries${pre}${c.head ? ` (head ${c.head})` : ""}`;
    })
    .join("\n");
}

/** The chain (or one deployment's) as stored, in order: one object per entry, for JSONL. */
export async function exportAudit(sql: Sql, deployment?: string): Promise<AuditEntry[]> {
  const rows = deployment === undefined
    ? await sql.query(`SELECT * FROM honua_audit ORDER BY deployment, seq`)
    : await sql.query(`SELECT * FROM honua_audit WHERE deployment = ? ORDER BY seq`, [deployment]);
  // Exported as stored, even an edited entry: export is for review, verify is for judgement.
  return rows.map(toEntry);
}

/** Deployments the store knows of: those with a chain, and those with runs. */
export async function knownDeployments(sql: Sql): Promise<string[]> {
  const rows = await sql.query(`SELECT deployment FROM honua_audit UNION SELECT deployment FROM honua_runs`);
  return [...new Set(rows.map((r) => text(r.deployment)))].sort();
}
