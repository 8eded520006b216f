import { AgentError } from "./core/errors.js";
import { TERMINAL, type RunStatus } from "./core/records.js";
import { agentHome, openPersistence, redactUrl } from "./graph/checkpointer.js";
import { ADAPTER_FILES, STORE_FILES, inspectStoreFile, type FileState } from "./store/files.js";

/** One deployment lock and what is known of the run holding it. */
export interface LockState {
  deployment: string;
  run: string;
  acquiredAt: string;
  /** The holder's status, or null when the agent's records do not know it. */
  status: RunStatus | null;
  hasCheckpoints: boolean;
  /** Whether `doctor --release` may free it, and why (or why not). */
  releasable: boolean;
  why: string;
}

export interface DoctorReport {
  location: string;
  files: FileState[];
  /** Null when the store could not be opened (see files). */
  locks: LockState[] | null;
  orphanCheckpoints: string[];
  healthy: boolean;
  released: LockState | null;
}

/**
 * The state of every store and lock, read without changing anything; with `release`, frees one deployment's lock
 * when its run is provably dead (it ended, or neither records nor checkpoints of it exist), recording who did it.
 * A lock held by a run that may still be part-way through a change is never released here.
 */
export async function doctor(env: NodeJS.ProcessEnv, cwd: string, release?: { deployment: string; by: string; at: string }): Promise<DoctorReport> {
  const url = env.HONUA_AGENT_DATABASE_URL;
  const home = agentHome(env, cwd);
  const files = [
    ...(url ? [] : Object.entries(STORE_FILES)),
    ...Object.entries(ADAPTER_FILES),
  ].map(([f, d]) => inspectStoreFile(home, f, d.role, d.tables));
  const location = url ? redactUrl(url) : home;
  if (files.some((f) => f.state !== "ok" && f.state !== "new")) {
    if (release) throw new AgentError("bad-input", `no lock is released while a store file is damaged or missing: ${files.filter((f) => f.state !== "ok" && f.state !== "new").map((f) => f.detail).join("; ")}`);
    return { location, files, locks: null, orphanCheckpoints: [], healthy: false, released: null };
  }
  const p = await openPersistence(env, cwd, { checkPairing: false });
  try {
    const sql = p.store.sql;
    const runs = new Set(await p.checkpointRuns());
    const known = new Map((await p.store.listRuns()).map((r) => [r.run, r]));
    const rows = await sql.query<{ deployment: string; run: string; acquired_at: string }>(`SELECT deployment, run, acquired_at FROM honua_locks ORDER BY deployment`);
    const locks: LockState[] = rows.map((l) => {
      const r = known.get(String(l.run));
      const hasCheckpoints = runs.has(String(l.run));
      const status = r ? r.status : null;
      const [releasable, why] =
        status && TERMINAL.includes(status) ? [true, `run ${l.run} ended (${status}); the next run takes this lock over anyway`]
        : !r && !hasCheckpoints ? [true, `run ${l.run} has neither records nor checkpoints: it never started`]
        : !r ? [false, `run ${l.run} has checkpoints but no records: it may be part-way through a change. Restore agent records from a backup`]
        : [false, `run ${l.run} is ${status}: continue it (honua-agent resume ${l.run}) or cancel it (honua-agent cancel ${l.run}), which restores what it changed`];
      return { deployment: String(l.deployment), run: String(l.run), acquiredAt: String(l.acquired_at), status, hasCheckpoints, releasable, why };
    });
    const orphanCheckpoints = [...runs].filter((r) => !known.has(r));
    let released: LockState | null = null;
    if (release) {
      const lock = locks.find((l) => l.deployment === release.deployment);
      if (!lock) throw new AgentError("not-found", `${release.deployment} holds no lock`);
      if (!lock.releasable) throw new AgentError("conflict", `the lock on ${release.deployment} is not released: ${lock.why}`);
      await sql.exclusive(`lock:${release.deployment}`, async () => {
        await sql.query(`DELETE FROM honua_locks WHERE deployment = ? AND run = ?`, [lock.deployment, lock.run]);
        await p.store.recordOperatorAction({ at: release.at, actor: release.by, action: "release-lock", deployment: lock.deployment, run: lock.run, detail: lock.why });
      });
      released = lock;
    }
    return { location, files, locks, orphanCheckpoints, healthy: orphanCheckpoints.length === 0, released };
  } finally {
    await p.close();
  }
}

export function renderDoctor(r: DoctorReport): string {
  const lines = [`store: ${r.location}`];
  for (const f of r.files) lines.push(`  ${f.file}: ${f.state} — ${f.detail}`);
  if (r.locks === null) lines.push("locks: not read (a store file above cannot be opened)");
  else if (r.locks.length === 0) lines.push("locks: none");
  else for (const l of r.locks) lines.push(`lock ${l.deployment}: run ${l.run} (${l.status ?? "no record"}) since ${l.acquiredAt} — ${l.releasable ? "releasable" : "kept"}: ${l.why}`);
  if (r.orphanCheckpoints.length) lines.push(`checkpoints without records: ${r.orphanCheckpoints.join(", ")} — restore the agent's records from a backup`);
  if (r.released) lines.push(`released the lock on ${r.released.deployment} (run ${r.released.run}); recorded`);
  lines.push(r.healthy ? "healthy" : "NOT healthy: see above");
  return lines.join("\n");
}
