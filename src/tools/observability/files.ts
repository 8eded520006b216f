import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The file's bytes as text, or null when it does not exist. */
export async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Writes `content` to `path` atomically (a temp file in the same folder, fsynced, renamed over it), first keeping
 * what was there in `<folder>/.honua-agent-history/<name>.<sha256 of the old bytes>`. Null deletes the file (its
 * content kept the same way). Writing what is already there does nothing. The temp file's name starts with a dot and
 * ends in `.tmp`, so a `*.yml` rule glob never loads it.
 */
export async function writeAtomic(path: string, content: string | null): Promise<{ changed: boolean; kept: string | null }> {
  const found = await readOrNull(path);
  if (found === content) return { changed: false, kept: null };
  let kept: string | null = null;
  if (found !== null) {
    const dir = join(dirname(path), ".honua-agent-history");
    await mkdir(dir, { recursive: true });
    kept = join(dir, `${basename(path)}.${createHash("sha256").update(found).digest("hex").slice(0, 16)}`);
    await writeFile(kept, found);
  }
  if (content === null) {
    await rm(path, { force: true });
    return { changed: true, kept };
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  return { changed: true, kept };
}
