/**
 * Studio load benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:studio > studio.json
 *
 * What opening the studio entry costs the LangGraph server, in fresh Node processes (with tsx), alternating, and the
 * same-run baseline it is compared with. Prints ONE JSON object with medians over BENCH_REPS processes each:
 *   - importStudio: `import("src/studio.ts")` (what the server does for every graph in langgraph.json);
 *   - importGraphOnly (baseline): the builder and the workflow registry alone, the least a graph needs;
 *   - importEngine: `import("src/engine.ts")` (what the command line loads, with every real adapter);
 *   - firstGate: building the caching graph and running it to its first gate on the studio's sandbox.
 */
import { spawnSync } from "node:child_process";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const REPS = Number(process.env.BENCH_REPS ?? 5);
const ROOT = new URL("..", import.meta.url).pathname;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const url = (file: string) => JSON.stringify(new URL(file, `file://${ROOT}`).href);
const SCRIPTS = {
  importStudio: `await import(${url("src/studio.ts")});`,
  importGraphOnly: `await import(${url("src/graph/builder.ts")}); await import(${url("src/graph/workflows/registry.ts")});`,
  importEngine: `await import(${url("src/engine.ts")});`,
  firstGate: `const s = await import(${url("src/studio.ts")}); const t1 = performance.now(); const g = await s.addCachingLayer(); await g.invoke(s.studioInput("add-caching-layer"), { configurable: { thread_id: "bench" } }); await s.closeStudio(); t0 = t1;`,
} as const;

function once(script: string): number {
  // Each measures itself from its first statement, so the Node and tsx start-up is not counted.
  const code = `let t0 = performance.now(); ${script} process.stdout.write(String(performance.now() - t0));`;
  const res = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: ROOT, encoding: "utf8", env: { ...process.env, HONUA_SANDBOX_EPOCH: "2026-11-26T00:00:00Z", HONUA_AGENT_HOME: join(tmpdir(), "honua-agent-bench-studio-unused") },
  });
  if (res.status !== 0) throw new Error(`bench process failed: ${res.stderr}`);
  return Number(res.stdout.trim());
}

const samples: Record<keyof typeof SCRIPTS, number[]> = { importStudio: [], importGraphOnly: [], importEngine: [], firstGate: [] };
for (let r = 0; r < REPS; r++) for (const [name, script] of Object.entries(SCRIPTS)) samples[name as keyof typeof SCRIPTS].push(once(script));
const ms = (xs: number[]) => Math.round(median(xs));
console.log(JSON.stringify({
  bench: "studio",
  reps: REPS,
  host: { cpus: cpus().length, load1: Number(loadavg()[0]!.toFixed(2)), node: process.version },
  medianMs: { importStudio: ms(samples.importStudio), importGraphOnly: ms(samples.importGraphOnly), importEngine: ms(samples.importEngine), firstGate: ms(samples.firstGate) },
  studioOverGraphOnly: Number((median(samples.importStudio) / median(samples.importGraphOnly)).toFixed(2)),
  studioOverEngine: Number((median(samples.importStudio) / median(samples.importEngine)).toFixed(2)),
}));
