import { randomBytes } from "node:crypto";
import { open, readFile, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { isReference, isSecretLiteral, maskSecretLine, secretMarker, sha256 } from "../../core/secrets.js";
import { AgentError } from "../../core/errors.js";
import type { ConfigChange } from "../../core/sections.js";
import type { OpLog } from "../../store/oplog.js";
import type { ConfigStore } from "../types.js";
import { inverse } from "./diff.js";
import { canonicalKey, findSettings } from "./keys.js";


/** Writes `path` so a reader sees the old or the new content, never half: temp file in the same folder, fsync, rename. */
export async function atomicWrite(link: string, content: string): Promise<void> {
  // Through a symlink to a file beside it (honua.env -> honua.prod.env) the file pointed at is replaced, not the
  // link. A link that leads out of the folder is refused: the agent writes the configured file and nothing else.
  const path = await realpath(link).catch(() => link);
  if (path !== link && dirname(path) !== (await realpath(dirname(link)).catch(() => dirname(link)))) {
    throw new AgentError("conflict", `${link} is a symlink to ${path}, outside its folder; honua-agent writes only the configured file, nothing was written (configure ${path} itself)`);
  }
  let mode = 0o644;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch {
    // a new file gets the default mode
  }
  const tmp = join(dirname(path), `.${basename(path)}.honua-agent-${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", mode); // never through something already there
  try {
    await fh.writeFile(content, "utf8");
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** A line diff of two texts (changed lines only, with a line of context), secrets masked: what an approver reads. */
export function textDiff(before: string, after: string, label: string): string {
  const a = before.split("\n");
  const b = after.split("\n");
  // LCS on lines: config files are small (hundreds of lines).
  const n = a.length, m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: { t: " " | "-" | "+"; line: string }[] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { ops.push({ t: " ", line: a[i]! }); i++; j++; }
    else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) { ops.push({ t: "-", line: a[i]! }); i++; }
    else { ops.push({ t: "+", line: b[j]! }); j++; }
  }
  const changed = (k: number) => ops[k] !== undefined && ops[k]!.t !== " ";
  const keep = ops.map((_, k) => changed(k) || changed(k - 1) || changed(k + 1));
  const mask = maskSecretLine;
  const out = [`--- ${label}`, `+++ ${label} (honua-agent)`];
  let gap = false;
  ops.forEach((o, k) => {
    if (!keep[k]) { if (!gap) out.push("@@"); gap = true; return; }
    gap = false;
    out.push(`${o.t}${mask(o.line)}`);
  });
  return out.join("\n");
}

/** One file format: how Honua's env-style keys are read from and written into it. */
export interface ConfigFormat {
  /** For messages: "env file", "appsettings.json", ... */
  describe: string;
  /** Every key with its literal value; references (env:..., aws:secretsmanager:...) are returned as they are. */
  parse(text: string): Record<string, string>;
  /** The new text with each change applied (`after: null` removes the key; keys are spelled as in the file); keeps everything else as it was. */
  apply(text: string, changes: ConfigChange[]): string;
}

/** Every setting of a deployment as it takes effect, and which of them are secret by where they live. */
export interface ConfigSnapshot {
  /** The effective value of each key, spelled as where it lives; references as reference strings. */
  values: Record<string, string>;
  /** Keys whose value comes from a place that is secret as a whole (a Kubernetes Secret): shown masked whatever they hold. */
  secret: ReadonlySet<string>;
}

/** Where a deployment's settings live: one file, or several (a folder of Kubernetes manifests). */
export interface ConfigLayout {
  describe: string;
  /** The files the settings are read from. */
  paths(): Promise<string[]>;
  parse(files: ReadonlyMap<string, string>): ConfigSnapshot;
  /**
   * The new text of each file `changes` touch (keys are spelled as `parse` returned them; a key found nowhere is
   * added to the configured target). Files it does not touch are absent and are never written.
   */
  apply(files: ReadonlyMap<string, string>, changes: ConfigChange[]): Map<string, string>;
  /** The text an approver reads for a file: values that are secret by place masked (textDiff masks the rest). */
  display?(path: string, text: string): string;
}

/** A single-file format as a layout. */
export function singleFile(path: string, format: ConfigFormat): ConfigLayout {
  return {
    describe: format.describe,
    paths: async () => [path],
    parse: (files) => ({ values: format.parse(files.get(path) ?? ""), secret: new Set() }),
    apply(files, changes) {
      const text = files.get(path) ?? "";
      const next = format.apply(text, changes);
      return next === text ? new Map() : new Map([[path, next]]);
    },
  };
}

const Applied = z.object({ beforeHash: z.string(), afterHash: z.string(), diff: z.string(), keys: z.array(z.string()) });
export type Applied = z.infer<typeof Applied>;

const hashFiles = (files: ReadonlyMap<string, string>): string => (files.size === 1 ? sha256([...files.values()][0]!) : sha256(JSON.stringify([...files])));

/** What a value is shown as: a literal credential, or anything from a place that is secret by kind, as its marker. */
export function shownValue(snapshot: ConfigSnapshot, key: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  return (snapshot.secret.has(key) && raw !== "" && !isReference(raw)) || isSecretLiteral(key, raw) ? secretMarker(raw) : raw;
}

/** Every value as the workflow may see it. */
export const maskSnapshot = (snapshot: ConfigSnapshot): Record<string, string> =>
  Object.fromEntries(Object.entries(snapshot.values).map(([k, v]) => [k, shownValue(snapshot, k, v)!]));

/**
 * A Honua configuration (one file, or a folder of manifests) as a ConfigStore. A change's key may be given in any
 * spelling .NET reads as the same setting: it is written where that setting lives, in the spelling it has there,
 * and added to the configured target only when it is set nowhere; two spellings of one setting are refused.
 * Optimistic: the content hash seen at `read()` must still be on disk at the `apply()` that follows it, and every
 * change's `before` must be the current value; otherwise nothing is written and the error says which. Writes are
 * atomic per file; each idempotency key applies once.
 */
export class FileConfigStore implements ConfigStore {
  private seenHash: string | undefined;
  protected readonly layout: ConfigLayout;
  /** The last diff this store wrote, for whoever reports it. */
  lastDiff: string | null = null;

  constructor(
    readonly path: string,
    format: ConfigFormat | ConfigLayout,
    protected readonly log: OpLog,
    protected readonly deployment: string,
  ) {
    this.layout = "paths" in format ? format : singleFile(path, format);
  }

  private async loadFile(path: string): Promise<string> {
    try {
      return await readFile(path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const what = this.layout.describe;
      if (code === "ENOENT") throw new AgentError("not-found", `${what}: ${path} does not exist`);
      if (code === "EISDIR") throw new AgentError("bad-input", `${what}: ${path} is a folder; config.path names the file honua-agent edits`);
      if (code === "EACCES") throw new AgentError("unavailable", `${what}: ${path} cannot be read by honua-agent (permission denied)`);
      throw e;
    }
  }

  protected async load(): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    for (const p of await this.layout.paths()) files.set(p, await this.loadFile(p));
    return files;
  }

  async read(): Promise<Record<string, string>> {
    const files = await this.load();
    const snapshot = this.layout.parse(files);
    this.seenHash = hashFiles(files);
    return maskSnapshot(snapshot);
  }

  /** The file diff `changes` would make now, without writing (secrets masked), and what else applying them does. */
  async preview(changes: ConfigChange[]): Promise<string> {
    const files = await this.load();
    const snapshot = this.layout.parse(files);
    const resolved = this.resolveKeys(changes, snapshot);
    const pending = resolved.filter((c) => !this.holds(snapshot, c.key, c.after));
    const next = pending.length ? this.layout.apply(files, this.resolveMarkers(pending, snapshot)) : new Map<string, string>();
    const diff = this.diffOf(files, next);
    return [diff, ...this.notes(pending, files)].filter((s) => s !== "").join("\n");
  }

  async apply(changes: ConfigChange[], idempotencyKey: string): Promise<void> {
    const prior = this.log.get(this.deployment, "config-apply", idempotencyKey, Applied);
    if (prior) {
      this.lastDiff = prior.diff; // journalled once it was live: nothing left to do
      return;
    }
    if (changes.length === 0) return; // nothing to change writes nothing, journals nothing, restarts nothing
    const files = await this.load();
    const hash = hashFiles(files);
    if (this.seenHash !== undefined && this.seenHash !== hash) {
      throw new AgentError("conflict", `${this.path} changed since honua-agent read it (sha256 ${this.seenHash.slice(0, 12)} -> ${hash.slice(0, 12)}); nothing was written. Re-run the step to work from the current file.`);
    }
    const snapshot = this.layout.parse(files);
    const resolved = this.resolveKeys(changes, snapshot);
    const shown = (k: string) => shownValue(snapshot, k, snapshot.values[k]);
    // A change already in place is done (a replay after a crash between writing one file and the next, or between
    // the write and what follows it); every other change must find its `before`.
    const pending = resolved.filter((c) => !this.holds(snapshot, c.key, c.after));
    const stale = pending.filter((c) => !this.holds(snapshot, c.key, c.before));
    if (stale.length > 0) {
      throw new AgentError("conflict", `${this.path}: ${stale.map((c) => `${c.key} is ${shown(c.key) ?? "(unset)"}, expected ${c.before ?? "(unset)"}`).join("; ")}; nothing was written`);
    }
    // The read this write was checked against is used up: a later apply without a read of its own (a rollback
    // an hour on) is held to its changes' `before` values, as it is in a new process, not to a stale hash.
    this.seenHash = undefined;
    if (pending.length === 0) {
      await this.settleOrUndo(resolved, idempotencyKey, null);
      this.lastDiff = "(already applied)";
      this.log.put(this.deployment, "config-apply", idempotencyKey, { beforeHash: hash, afterHash: hash, diff: "(already applied)", keys: resolved.map((c) => c.key) });
      return;
    }
    const writes = this.resolveMarkers(pending, snapshot);
    await this.beforeWrite(pending, files, idempotencyKey);
    const next = this.layout.apply(files, writes);
    const merged = new Map([...files, ...next]);
    const check = this.layout.parse(merged);
    for (const c of writes) {
      const found = findSettings(check.values, c.key);
      const got = found.length === 1 ? found[0]!.value : found.length === 0 ? undefined : `${found.length} spellings`;
      const want = c.after ?? undefined;
      if (got !== want) {
        const show = (v: string | undefined) => shownValue({ values: {}, secret: new Set(check.secret.has(c.key) || snapshot.secret.has(c.key) ? [c.key] : []) }, c.key, v) ?? "(unset)";
        throw new Error(`${this.layout.describe}: writing ${c.key} did not round-trip (${show(got)} != ${show(want)}); nothing was written`);
      }
    }
    const diff = this.diffOf(files, next);
    for (const [path, text] of next) if (text !== files.get(path)) await atomicWrite(path, text);
    this.lastDiff = diff;
    await this.settleOrUndo(resolved, idempotencyKey, { before: files, written: next });
    // Journalled once the change is live: a replay after a crash before this line finds the files changed and
    // finishes what follows the write (a restart, a wait) instead of skipping it.
    this.log.put(this.deployment, "config-apply", idempotencyKey, { beforeHash: hash, afterHash: hashFiles(merged), diff, keys: resolved.map((c) => c.key) });
  }

  /**
   * Makes the written change live (settle); when that fails, the change is undone — the files put back, and made
   * live in turn under a key of its own — so a failed apply leaves the deployment as it found it, since the
   * workflow never learns the changes of a step that failed and its rollback could not restore them.
   */
  private async settleOrUndo(changes: ConfigChange[], idempotencyKey: string, wrote: { before: ReadonlyMap<string, string>; written: ReadonlyMap<string, string> } | null): Promise<void> {
    try {
      await this.settle(changes, idempotencyKey);
      return;
    } catch (e) {
      if (!(e instanceof AgentError)) throw e;
      let undone: string;
      try {
        // A key of its own each time: an undo is never "already done" (a replay may have applied the change again).
        undone = await this.undo(changes, idempotencyKey, `${idempotencyKey}:undo:${randomBytes(3).toString("hex")}`, wrote);
      } catch (u) {
        undone = `undoing it failed too (${u instanceof Error ? u.message : String(u)}); restore ${changes.map((c) => c.key).join(", ")} by hand`;
      }
      throw new AgentError(e.code, `${e.message}; ${undone}`, e.details);
    }
  }

  private async undo(changes: ConfigChange[], idempotencyKey: string, undoKey: string, wrote: { before: ReadonlyMap<string, string>; written: ReadonlyMap<string, string> } | null): Promise<string> {
    const files = await this.load();
    const back = inverse(changes);
    let restore: Map<string, string>;
    if (wrote) {
      // The exact bytes it replaced (a secret it never held included), unless someone edited the file meanwhile.
      const edited = [...wrote.written.keys()].filter((p) => files.get(p) !== wrote.written.get(p));
      if (edited.length) return `not undone: ${edited.join(", ")} changed since honua-agent wrote ${edited.length === 1 ? "it" : "them"}; restore ${changes.map((c) => c.key).join(", ")} by hand`;
      restore = new Map([...wrote.written.keys()].map((p) => [p, wrote.before.get(p)!]));
    } else restore = this.layout.apply(files, this.resolveMarkers(back, this.layout.parse(files)));
    await this.beforeWrite(back, files, undoKey);
    for (const [path, text] of restore) if (text !== files.get(path)) await atomicWrite(path, text);
    const keys = changes.map((c) => c.key).join(", ");
    try {
      await this.settle(back, undoKey, idempotencyKey);
    } catch (e) {
      return `the change was undone in the files (${keys} restored), but making that live failed too (${e instanceof Error ? e.message : String(e)}): check the deployment by hand`;
    }
    return `the change was undone: ${keys} restored${this.undoNote()}`;
  }

  /** How an undo was made live, for the message (e.g. "and rolled out again"). */
  protected undoNote(): string {
    return "";
  }

  /** Before anything is written (the changes resolved to where they live): refuse, or record what must follow. */
  protected async beforeWrite(_changes: ConfigChange[], _files: ReadonlyMap<string, string>, _idempotencyKey: string): Promise<void> {}

  /**
   * After the write (and on every replay of it): what has to happen before the change counts as applied.
   * `undoing` is the key of the apply an undo puts back (what that apply did decides what the undo must redo).
   */
  protected async settle(_changes: ConfigChange[], _idempotencyKey: string, _undoing?: string): Promise<void> {}

  /** Lines the preview adds after the diff (what applying also does). */
  protected notes(_changes: ConfigChange[], _files: ReadonlyMap<string, string>): string[] {
    return [];
  }

  private diffOf(files: ReadonlyMap<string, string>, next: ReadonlyMap<string, string>): string {
    const shown = (path: string, text: string) => this.layout.display?.(path, text) ?? text;
    return [...next]
      .filter(([path, text]) => text !== files.get(path))
      .map(([path, text]) => textDiff(shown(path, files.get(path) ?? ""), shown(path, text), path))
      .join("\n");
  }

  /** True when `key` holds `expected` now (null: unset); a secret is compared by its marker when that is what was shown. */
  private holds(snapshot: ConfigSnapshot, key: string, expected: string | null): boolean {
    const raw = snapshot.values[key];
    if (expected === null) return raw === undefined;
    return raw !== undefined && (raw === expected || shownValue(snapshot, key, raw) === expected);
  }

  /** Each change named by the spelling its setting has where it lives; two spellings of one setting are refused. */
  protected resolveKeys(changes: ConfigChange[], snapshot: ConfigSnapshot): ConfigChange[] {
    const out = changes.map((c) => {
      const found = findSettings(snapshot.values, c.key);
      if (found.length > 1) {
        throw new AgentError("conflict", `${this.layout.describe}: ${c.key} is set ${found.length} times in different spellings (${found.map((f) => f.key).join(", ")}); Honua's configuration merges them unpredictably. Keep one, then ask again; nothing was written`);
      }
      return found[0] ? { ...c, key: found[0].key } : c;
    });
    const twice = out.find((c, i) => out.findIndex((o) => canonicalKey(o.key) === canonicalKey(c.key)) !== i);
    if (twice) throw new AgentError("bad-input", `${this.layout.describe}: two changes name the setting ${twice.key}; nothing was written`);
    return out;
  }

  /** A change may only put back a secret marker for the value that is there now (the agent never holds secrets). */
  private resolveMarkers(changes: ConfigChange[], snapshot: ConfigSnapshot): ConfigChange[] {
    return changes.map((c) => {
      if (c.after === null || !c.after.startsWith("secret:sha256:")) return c;
      const now = snapshot.values[c.key];
      if (now !== undefined && secretMarker(now) === c.after) return { ...c, after: now };
      throw new AgentError("conflict", `${this.path}: ${c.key} would need a secret value honua-agent never stores; set it by hand or use a reference (env:..., aws:secretsmanager:...)`);
    });
  }
}
