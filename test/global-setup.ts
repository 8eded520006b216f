import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { distIsFresh } from "../bin/dist.mjs";

/**
 * The command line the tests spawn runs what `npm start` runs: the compiled dist/ (about a second faster to start
 * than the sources through tsx, and the suite spawns it a few hundred times). It is built here when it is older than
 * the sources; bin/honua-agent.mjs itself falls back to the sources whenever dist/ is not fresh, so a test never runs
 * code older than the tree. HONUA_AGENT_FROM_SOURCE=1 runs the sources instead, as before.
 */
export default function setup(): void {
  if (process.env.HONUA_AGENT_FROM_SOURCE === "1") return;
  const root = fileURLToPath(new URL("..", import.meta.url));
  if (distIsFresh(root)) return;
  const r = spawnSync(process.execPath, ["bin/build.mjs"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`building dist/ for the tests failed (exit ${r.status ?? r.signal})`);
}
