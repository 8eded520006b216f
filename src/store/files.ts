import Database from "better-sqlite3";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { z } from "zod";
import { AgentError } from "../core/errors.js";

/**
 * The agent's SQLite files, checked when opened: a file that existed is never silently recreated (a missing or
 * zero-length one is refused), a damaged one is named (integrity check, "not a database"), and one holding
 * someone else's tables is refused. Every refusal is bad input (exit 2), names the file and says what to do, and
 * changes nothing. Which files a home has held is written in `stores.json` beside them the first time each is set up.
 */

const REMEDY = "Nothing was changed. Restore it from a backup, or run `honua-agent doctor` to see the state of every store and lock";

const Manifest = z.object({ files: z.record(z.string(), z.object({ createdAt: z.string() })) });
type Manifest = z.infer<typeof Manifest>;

const manifestPath = (home: string) => join(home, "stores.json");

export function readManifest(home: string): Manifest {
  const p = manifestPath(home);
  if (!existsSync(p)) return { files: {} };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(p, "utf8"));
  } catch (e) {
    throw new AgentError("bad-input", `${p} is not valid JSON (${(e as Error).message}). ${REMEDY}.`);
  }
  const parsed = Manifest.safeParse(raw);
  if (!parsed.success) throw new AgentError("bad-input", `${p} is not the agent's list of store files. ${REMEDY}.`);
  return parsed.data;
}

/** Records that `file` now exists (atomically: a crash leaves the old list or the new one). */
export function recordStoreFile(home: string, file: string): void {
  const m = readManifest(home);
  if (m.files[file]) return;
  const path = join(home, file);
  if (!existsSync(path) || statSync(path).size === 0) return; // not made yet (opened lazily): recorded once it is
  m.files[file] = { createdAt: new Date().toISOString() };
  const p = manifestPath(home);
  writeFileSync(`${p}.tmp`, `${JSON.stringify(m, null, 2)}\n`);
  renameSync(`${p}.tmp`, p);
}

/** What one store file is like, for `doctor` and for the refusal when it cannot be opened. */
export interface FileState {
  file: string;
  path: string;
  role: string;
  /** ok; new (never created yet); or what is wrong with it. */
  state: "ok" | "new" | "missing" | "empty" | "not-a-database" | "damaged" | "foreign";
  bytes: number | null;
  detail: string;
}

const sqliteCode = (e: unknown): string => (e && typeof e === "object" && "code" in e ? String((e as { code: unknown }).code) : "");

/**
 * Checks a store file without changing it (read-only, no file created). `tables` are the tables the agent writes
 * there: a file with tables but none of these is someone else's database.
 */
export function inspectStoreFile(home: string, file: string, role: string, tables: readonly string[]): FileState {
  const path = join(home, file);
  const known = readManifest(home).files[file] !== undefined;
  const base = { file, path, role };
  if (!existsSync(path)) {
    return known
      ? { ...base, state: "missing", bytes: null, detail: `${path} (${role}) is missing; it existed (created ${readManifest(home).files[file]!.createdAt})` }
      : { ...base, state: "new", bytes: null, detail: `${path} will be created` };
  }
  const bytes = statSync(path).size;
  if (bytes === 0) {
    return known
      ? { ...base, state: "empty", bytes, detail: `${path} (${role}) is empty (0 bytes); it held the agent's records` }
      : { ...base, state: "new", bytes, detail: `${path} is empty and will be set up` };
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const check = db.pragma("quick_check", { simple: true });
    if (check !== "ok") return { ...base, state: "damaged", bytes, detail: `${path} (${role}) fails SQLite's integrity check: ${String(check)}` };
    const names = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (names.size > 0 && !tables.some((t) => names.has(t))) {
      return { ...base, state: "foreign", bytes, detail: `${path} (${role}) is a SQLite database without the agent's tables (it has ${[...names].slice(0, 5).join(", ")})` };
    }
    if (names.size === 0 && known) return { ...base, state: "empty", bytes, detail: `${path} (${role}) holds no tables; it held the agent's records` };
    return { ...base, state: "ok", bytes, detail: `${path}: ${bytes} bytes, integrity ok` };
  } catch (e) {
    const code = sqliteCode(e);
    if (code === "SQLITE_NOTADB") return { ...base, state: "not-a-database", bytes, detail: `${path} (${role}) is not a SQLite database (overwritten?)` };
    if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_IOERR_SHORT_READ") return { ...base, state: "damaged", bytes, detail: `${path} (${role}) is damaged: ${(e as Error).message}` };
    throw new AgentError("bad-input", `${path} (${role}) cannot be read: ${(e as Error).message}. ${REMEDY}.`);
  } finally {
    db?.close();
  }
}

/** Throws (exit 2) unless the file is fine or new; on success the caller opens it. */
export function checkStoreFile(home: string, file: string, role: string, tables: readonly string[]): FileState {
  const s = inspectStoreFile(home, file, role, tables);
  if (s.state === "ok" || s.state === "new") return s;
  throw new AgentError("bad-input", `${s.detail}. ${REMEDY}.`, { file: s.path, state: s.state });
}

/** The role of each of the agent's SQLite files, by name. */
export const STORE_FILES = {
  "checkpoints.sqlite": { role: "the runs' checkpoints", tables: ["checkpoints", "writes"] },
  "agent.sqlite": { role: "runs, decisions, locks and the rollback journal", tables: ["honua_runs", "honua_locks", "honua_decisions"] },
} as const;

/** The files opened when a deployment's adapters are first needed: checked then, the same way. */
export const ADAPTER_FILES = {
  "sandbox.sqlite": { role: "the simulated deployments", tables: ["sandbox_deployments"] },
  "real-adapters.sqlite": { role: "the real adapters' idempotency journal", tables: ["real_ops"] },
} as const;

/** Checks `file` (one of ADAPTER_FILES), opens it with `open`, and records that it exists. */
export function openChecked<T>(home: string, file: keyof typeof ADAPTER_FILES, open: (path: string) => T): T {
  const f = ADAPTER_FILES[file];
  checkStoreFile(home, file, f.role, f.tables);
  const out = open(join(home, file));
  recordStoreFile(home, file);
  return out;
}

export const storeFileName = (path: string): string => basename(path);
