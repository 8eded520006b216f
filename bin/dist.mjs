// Whether the compiled output in dist/ matches the sources: written by `npm run build` (its stamp file is touched
// last), out of date as soon as any file under src/ or prompts/ (or a tsconfig) is newer than the stamp.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export const STAMP = "dist/.built";

// A folder's own time counts too: it changes when a file in it is removed or renamed, which dist/ would still hold.
function newest(dir) {
  let t;
  let entries;
  try {
    t = statSync(dir).mtimeMs;
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** True when dist/ was built after the last change to the sources it is compiled from. */
export function distIsFresh(root) {
  let built;
  try {
    built = statSync(join(root, STAMP)).mtimeMs;
  } catch {
    return false;
  }
  const sources = Math.max(newest(join(root, "src")), newest(join(root, "prompts")), ...["tsconfig.json", "tsconfig.build.json"].map((f) => {
    try {
      return statSync(join(root, f)).mtimeMs;
    } catch {
      return 0;
    }
  }));
  return built >= sources;
}
