import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { access, constants, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { AgentError } from "../../core/errors.js";
import type { Inspection, ObjectInfo, ObjectStore, SettingState, StorageSettings } from "./types.js";

const TMP = ".honua-agent-tmp-";

/** A directory as an object store (a local disk, an NFS or SMB mount): keys are relative paths, writes are atomic renames. */
export class FilesystemStore implements ObjectStore {
  readonly kind = "filesystem" as const;
  readonly container: string;
  readonly location: string;

  constructor(readonly backend: string, dir: string) {
    this.container = resolve(dir);
    this.location = pathToFileURL(this.container).href;
  }

  private pathOf(key: string): string {
    const p = resolve(this.container, key);
    if (p !== this.container && !p.startsWith(this.container + sep)) throw new AgentError("bad-input", `key ${key} is outside ${this.container}`);
    return p;
  }

  hrefOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  keyOf(href: string): string | null {
    let path: string;
    try {
      path = href.startsWith("file:") ? fileURLToPath(href) : href;
    } catch {
      return null;
    }
    if (!path.startsWith(this.container + sep)) return null;
    return relative(this.container, path).split(sep).join("/");
  }

  private async walk(dir: string, out: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    for (const e of entries) {
      if (e.name.startsWith(TMP)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await this.walk(p, out);
      else if (e.isFile()) out.push(relative(this.container, p).split(sep).join("/"));
    }
  }

  async list(prefix: string, cursor: string | null, limit: number): Promise<{ objects: ObjectInfo[]; next: string | null }> {
    const keys: string[] = [];
    await this.walk(this.container, keys);
    const page = keys.filter((k) => k.startsWith(prefix) && (cursor === null || k > cursor)).sort().slice(0, limit);
    const objects = await Promise.all(page.map(async (k) => (await this.head(k))!));
    return { objects, next: page.length === limit ? page.at(-1)! : null };
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.pathOf(key));
      return s.isFile() ? { key, size: s.size, checksum: null, lastModified: s.mtime.toISOString() } : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }

  async read(key: string): Promise<Readable> {
    const p = this.pathOf(key);
    await access(p, constants.R_OK).catch(() => {
      throw new AgentError("not-found", `${this.hrefOf(key)} does not exist or cannot be read`);
    });
    return createReadStream(p);
  }

  async write(key: string, body: Readable, size: number): Promise<ObjectInfo> {
    const p = this.pathOf(key);
    await mkdir(dirname(p), { recursive: true });
    const tmp = join(dirname(p), `${TMP}${randomBytes(6).toString("hex")}`);
    try {
      await pipeline(body, createWriteStream(tmp, { mode: 0o640 }));
      const written = (await stat(tmp)).size;
      if (written !== size) throw new AgentError("failed", `${this.hrefOf(key)}: ${written} bytes arrived, ${size} expected`);
      await rename(tmp, p);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return (await this.head(key))!;
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }
}

const fsSettings = (settings: StorageSettings, found: string | null): SettingState[] => [
  { setting: "versioning", wanted: settings.versioning ? "on" : "off", found: null, outcome: "unsupported", note: "a filesystem keeps no object versions (use the volume's snapshots)" },
  { setting: "encryption", wanted: settings.encryption, found: null, outcome: "unsupported", note: "a filesystem's encryption is the volume's (LUKS, an encrypted EBS/EFS volume): not set by honua-agent" },
  { setting: "public-access", wanted: "blocked", found, outcome: found === "blocked" ? "already" : "planned", note: "directory mode 0750: readable by its owner and group only" },
  { setting: "lifecycle", wanted: settings.lifecycle ? `after ${settings.lifecycle.transitionAfterDays} days` : "none", found: null, outcome: settings.lifecycle ? "unsupported" : "already", note: settings.lifecycle ? "a filesystem has no lifecycle rules" : null },
];

/** What creating or adopting `dir` means: a directory this process cannot write, or one of another user, is refused. */
export async function inspectDirectory(dir: string, settings: StorageSettings): Promise<Inspection> {
  const path = resolve(dir);
  let s;
  try {
    s = await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    return { exists: false, owner: null, refuse: null, creates: true, action: `Create directory ${path} (mode 0750)`, settings: fsSettings(settings, null) };
  }
  const owner = `uid ${s.uid}`;
  if (!s.isDirectory()) return { exists: true, owner, refuse: `${path} exists and is not a directory`, creates: false, action: "refuse", settings: [] };
  const uid = process.getuid?.();
  const writable = await access(path, constants.W_OK | constants.R_OK).then(() => true, () => false);
  const mine = uid === undefined || uid === 0 || s.uid === uid;
  if (!writable || !mine) {
    return { exists: true, owner, refuse: `${path} belongs to ${owner}${uid === undefined ? "" : `, not to honua-agent's uid ${uid}`}${writable ? "" : " and is not writable"}: honua-agent adopts only a directory of its own user`, creates: false, action: "refuse", settings: [] };
  }
  const open = (s.mode & 0o007) !== 0;
  return { exists: true, owner, refuse: null, creates: false, action: `Adopt existing directory ${path} (${owner})`, settings: fsSettings(settings, open ? "world-readable" : "blocked") };
}

export async function createDirectory(dir: string): Promise<void> {
  await mkdir(resolve(dir), { recursive: true, mode: 0o750 });
}
