import { createHash, randomBytes } from "node:crypto";
import { open, readFile, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { AgentError } from "../../errors.js";
import type { ConfigChange } from "../../graph/state.js";
import type { OpLog } from "../../providers/oplog.js";
import type { ConfigStore } from "../types.js";

export const sha256 = (text: string | Buffer): string => createHash("sha256").update(text).digest("hex");

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

/** References are kept as they are: the server (or its platform) resolves them, the agent never sees the value. */
const REFERENCE = /^(env:|aws:secretsmanager:|aws:ssm:|ref:|k8s:|secret:sha256:|\$\{)/i;
const SECRET_KEY = /(password|passwd|secret|token|apikey|api_key|credential|privatekey)/i;
/** What may follow `password=` without being a credential: a reference the server resolves. */
const REF_AHEAD = "(?!env:|aws:secretsmanager:|aws:ssm:|ref:|k8s:|secret:sha256:|\\$\\{)";
const SECRET_IN_VALUE = new RegExp(`((^|[;,\\s])(password|pwd)\\s*=\\s*${REF_AHEAD}[^;,\\s]+)|(:\\/\\/[^/@:\\s]*:[^/@\\s]+@)`, "i");

/** `KEY=value`, `key: value`, `"Key": "value"` where the key names a credential. */
const SECRET_LINE = /^(\s*(?:export\s+)?"?[\w.-]*(?:password|passwd|secret|token|apikey|api_key|credential|privatekey)[\w.-]*"?\s*[:=]\s*)(\S.*)$/i;

export const isReference = (value: string): boolean => REFERENCE.test(value.trim());

/** True when `value` (under `key`) holds a literal credential rather than a reference to one. */
export function isSecretLiteral(key: string, value: string): boolean {
  if (value === "" || isReference(value)) return false;
  return SECRET_KEY.test(key) || SECRET_IN_VALUE.test(value);
}

/** A URL as it may appear in a message: the password of `user:password@` and secret-named query values masked (works on unparseable strings too). */
export const maskUrl = (url: string): string =>
  url.replace(/(:\/\/[^/@:\s]*:)[^/@\s]+@/g, "$1***@").replace(/([?&][^=&#\s]*(?:password|passwd|pwd|secret|token|key|sig|signature|credential)[^=&#\s]*=)[^&#\s]*/gi, "$1***");

/** What the agent shows and records instead of a literal secret: stable, so a diff can tell "unchanged". */
export const secretMarker = (value: string): string => `secret:sha256:${sha256(value).slice(0, 16)}`;

export function redact(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, isSecretLiteral(k, v) ? secretMarker(v) : v]));
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
  const mask = (line: string) => {
    const named = SECRET_LINE.exec(line);
    if (named && !isReference(named[2]!.replace(/^["']/, ""))) return `${named[1]}***`;
    return line.replace(new RegExp(`((?:password|pwd)\\s*=\\s*)${REF_AHEAD}[^;,\\s"]+`, "gi"), "$1***").replace(/(:\/\/[^/@:\s]*:)[^/@\s]+@/g, "$1***@");
  };
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
  /** For messages: "env file", "Kubernetes ConfigMap honua", ... */
  describe: string;
  /** Keys are matched case-insensitively in formats whose consumer does (.NET JSON configuration). */
  caseInsensitive: boolean;
  /** Every key with its literal value; references (valueFrom, env:...) are returned as reference strings. */
  parse(text: string): Record<string, string>;
  /** The new text with each change applied (`after: null` removes the key); keeps everything else as it was. */
  apply(text: string, changes: ConfigChange[]): string;
}

const Applied = z.object({ beforeHash: z.string(), afterHash: z.string(), diff: z.string(), keys: z.array(z.string()) });
export type Applied = z.infer<typeof Applied>;

/**
 * A Honua configuration file as a ConfigStore. Optimistic: the content hash seen at `read()` must still be on disk
 * at the `apply()` that follows it, and every change's `before` must be the current value; otherwise nothing is
 * written and the error says which. Writes are atomic; each idempotency key applies once.
 */
export class FileConfigStore implements ConfigStore {
  private seenHash: string | undefined;
  /** The last diff this store wrote, for whoever reports it. */
  lastDiff: string | null = null;

  constructor(
    readonly path: string,
    private readonly format: ConfigFormat,
    private readonly log: OpLog,
    private readonly deployment: string,
  ) {}

  private async load(): Promise<string> {
    try {
      return await readFile(this.path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new AgentError("not-found", `${this.format.describe}: ${this.path} does not exist`);
      if (code === "EISDIR") throw new AgentError("bad-input", `${this.format.describe}: ${this.path} is a folder; config.path names the file honua-agent edits`);
      if (code === "EACCES") throw new AgentError("unavailable", `${this.format.describe}: ${this.path} cannot be read by honua-agent (permission denied)`);
      throw e;
    }
  }

  async read(): Promise<Record<string, string>> {
    const text = await this.load();
    const values = this.format.parse(text);
    this.seenHash = sha256(text);
    return redact(values);
  }

  /** The file diff `changes` would make now, without writing. */
  async preview(changes: ConfigChange[]): Promise<string> {
    const text = await this.load();
    return textDiff(text, this.format.apply(text, this.resolve(changes, this.format.parse(text))), this.path);
  }

  async apply(changes: ConfigChange[], idempotencyKey: string): Promise<void> {
    const prior = this.log.get(this.deployment, "config-apply", idempotencyKey, Applied);
    if (prior) {
      this.lastDiff = prior.diff;
      return;
    }
    const text = await this.load();
    const hash = sha256(text);
    if (this.seenHash !== undefined && this.seenHash !== hash) {
      throw new AgentError("conflict", `${this.path} changed since honua-agent read it (sha256 ${this.seenHash.slice(0, 12)} -> ${hash.slice(0, 12)}); nothing was written. Re-run the step to work from the current file.`);
    }
    const current = this.format.parse(text);
    const lookup = this.lookup(current);
    const shown = (k: string) => {
      const v = lookup(k);
      return v === undefined ? null : isSecretLiteral(k, v) ? secretMarker(v) : v;
    };
    const stale = changes.filter((c) => shown(c.key) !== c.before);
    if (stale.length > 0) {
      // A replay after a crash between the write and the journal finds every change already in place.
      if (changes.every((c) => shown(c.key) === c.after)) {
        this.seenHash = undefined;
        this.lastDiff = "(already applied)";
        this.log.put(this.deployment, "config-apply", idempotencyKey, { beforeHash: hash, afterHash: hash, diff: "(already applied)", keys: changes.map((c) => c.key) });
        return;
      }
      throw new AgentError("conflict", `${this.path}: ${stale.map((c) => `${c.key} is ${shown(c.key) ?? "(unset)"}, expected ${c.before ?? "(unset)"}`).join("; ")}; nothing was written`);
    }
    const resolved = this.resolve(changes, current);
    const next = this.format.apply(text, resolved);
    const check = this.lookup(this.format.parse(next));
    for (const c of resolved) {
      const got = check(c.key);
      const want = c.after ?? undefined;
      const show = (v: string | undefined) => (v === undefined ? "(unset)" : isSecretLiteral(c.key, v) ? secretMarker(v) : v);
      if (got !== want) throw new Error(`${this.format.describe}: writing ${c.key} did not round-trip (${show(got)} != ${show(want)}); nothing was written`);
    }
    const diff = textDiff(text, next, this.path);
    await atomicWrite(this.path, next);
    // The read this write was checked against is used up: a later apply without a read of its own (a rollback
    // an hour on) is held to its changes' `before` values, as it is in a new process, not to a stale hash.
    this.seenHash = undefined;
    this.lastDiff = diff;
    this.log.put(this.deployment, "config-apply", idempotencyKey, { beforeHash: hash, afterHash: sha256(next), diff, keys: changes.map((c) => c.key) });
  }

  private lookup(values: Record<string, string>): (key: string) => string | undefined {
    if (!this.format.caseInsensitive) return (k) => values[k];
    const lower = new Map(Object.entries(values).map(([k, v]) => [k.toLowerCase(), v]));
    return (k) => lower.get(k.toLowerCase());
  }

  /** A change may only put back a secret marker for the value that is in the file now (the agent never holds secrets). */
  private resolve(changes: ConfigChange[], current: Record<string, string>): ConfigChange[] {
    const lookup = this.lookup(current);
    return changes.map((c) => {
      if (c.after === null || !c.after.startsWith("secret:sha256:")) return c;
      const now = lookup(c.key);
      if (now !== undefined && secretMarker(now) === c.after) return { ...c, after: now };
      throw new AgentError("conflict", `${this.path}: ${c.key} would need a secret value honua-agent never stores; set it by hand or use a reference (env:..., aws:secretsmanager:...)`);
    });
  }
}
