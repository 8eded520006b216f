import { writeFileSync } from "node:fs";
import { loadConfig, resolveDeployment } from "./config.js";
import { AgentError } from "./core/errors.js";
import { openPersistence } from "./graph/checkpointer.js";
import { exportAudit, knownDeployments, verifyAudit, type AuditEntry, type ChainCheck } from "./store/audit.js";
import type { Sql } from "./store/sql.js";

/**
 * The deployment named on the command line: a configured name or alias, or a name the store's records know (a
 * deployment since removed from the config); anything else is bad input.
 */
async function chainName(sql: Sql, env: NodeJS.ProcessEnv, cwd: string, given: string | undefined): Promise<string | undefined> {
  if (given === undefined) return undefined;
  const known = await knownDeployments(sql);
  if (known.includes(given)) return given;
  let configured: string | undefined;
  try {
    configured = resolveDeployment(loadConfig(env, cwd).config, given);
  } catch {
    configured = undefined;
  }
  if (configured) return configured;
  throw new AgentError("bad-input", `unknown deployment "${given}": the agent's store has no audit chain or runs for it (known: ${known.join(", ") || "none"})`);
}

async function withStore<T>(env: NodeJS.ProcessEnv, cwd: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const p = await openPersistence(env, cwd, { checkPairing: false });
  try {
    return await fn(p.store.sql);
  } finally {
    await p.close();
  }
}

/** `audit verify [DEPLOYMENT]`: each chain checked; `ok` only when every one verifies. */
export function auditVerify(env: NodeJS.ProcessEnv, cwd: string, deployment?: string): Promise<{ checks: ChainCheck[]; ok: boolean }> {
  return withStore(env, cwd, async (sql) => {
    const checks = await verifyAudit(sql, await chainName(sql, env, cwd, deployment));
    return { checks, ok: checks.every((c) => c.broken === null) };
  });
}

/** `audit export [DEPLOYMENT] [--out FILE]`: the entries as JSONL, to `out` or returned for stdout. */
export function auditExport(env: NodeJS.ProcessEnv, cwd: string, deployment?: string, out?: string): Promise<{ entries: AuditEntry[]; jsonl: string }> {
  return withStore(env, cwd, async (sql) => {
    const entries = await exportAudit(sql, await chainName(sql, env, cwd, deployment));
    const jsonl = entries.map((e) => `${JSON.stringify(e)}\n`).join("");
    if (out !== undefined) {
      try {
        writeFileSync(out, jsonl, { flag: "wx" });
      } catch (e) {
        throw new AgentError("bad-input", `cannot write ${out}: ${(e as Error).message} (an existing file is never overwritten)`);
      }
    }
    return { entries, jsonl };
  });
}
