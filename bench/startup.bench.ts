/**
 * Start-up time of the command line: how long each command takes from spawn to exit (or, for the chat, to its first
 * prompt), against bare `node -e 0` and `node --import tsx -e 0` measured in the same run, interleaved so machine load
 * falls on every case alike. Every command runs on an empty HONUA_AGENT_HOME with the built-in sandbox config.
 *
 *   node --import tsx bench/startup.bench.ts [N]        # npm run bench:startup; N (default 9) spawns per case
 *
 * Cases through `bin/honua-agent.mjs` run what an installed package runs (compiled `dist/` when it is built and up to
 * date, else the sources through tsx); `tsx:` cases always run the sources, as in development. Prints one JSON object.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { distIsFresh } from "../bin/dist.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const N = Number(process.argv[2] ?? process.env.BENCH_N ?? 9);
const BIN = join(ROOT, "bin/honua-agent.mjs");
/** tsx's loader by URL: the commands run in a temp dir, where a bare `tsx` would not resolve. */
const TSX = import.meta.resolve("tsx");
const TSX_CLI = ["--import", TSX, join(ROOT, "src/cli.ts")];
const PROMPT = "honua> ";

interface Case {
  name: string;
  args: string[];
  /** Measured to this text on stdout (then `quit` is typed), else to exit. */
  until?: string;
}

const cases: Case[] = [
  { name: "node -e 0", args: ["-e", "0"] },
  { name: "node --import tsx -e 0", args: ["--import", TSX, "-e", "0"] },
  { name: "--help", args: [BIN, "--help"] },
  { name: "runs --json", args: [BIN, "runs", "--json"] },
  { name: "status RUN --json", args: [BIN, "status", "run-00000000-0000000000", "--json"] },
  { name: "plan --json", args: [BIN, "plan", "add redis caching to prod", "--json"] },
  { name: "doctor --json", args: [BIN, "doctor", "--json"] },
  { name: "chat to first prompt", args: [BIN, "chat", "--as", "alice"], until: PROMPT },
  { name: "tsx: --help", args: [...TSX_CLI, "--help"] },
  { name: "tsx: runs --json", args: [...TSX_CLI, "runs", "--json"] },
  { name: "tsx: chat to first prompt", args: [...TSX_CLI, "chat", "--as", "alice"], until: PROMPT },
];

function once(c: Case, home: string): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: "2026-01-01T00:00:00Z" };
  for (const k of ["HONUA_AGENT_DATABASE_URL", "HONUA_AGENT_CONFIG", "SLACK_BOT_TOKEN", "OPENAI_API_KEY", "HONUA_AGENT_FROM_SOURCE"]) delete env[k];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, c.args, { cwd: home, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let reached: number | undefined;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (c.until && reached === undefined && out.includes(c.until)) {
        reached = performance.now() - t0;
        child.stdin.end("quit\n");
      }
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    if (!c.until) child.stdin.end();
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = c.until ? reached : performance.now() - t0;
      // status of an unknown run is bad input (2) by contract; everything else must succeed
      const ok = c.name.startsWith("status") ? code === 2 : code === 0;
      if (ms === undefined || !ok) reject(new Error(`${c.name}: exit ${code}${ms === undefined ? `, never printed ${JSON.stringify(c.until)}` : ""}\n${err.slice(-2000)}`));
      else resolve(ms);
    });
  });
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN);
};

const homes = cases.map(() => mkdtempSync(join(tmpdir(), "honua-startup-")));
const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
const loadBefore = loadavg();
try {
  // one warm-up round (file cache, tsx's transform cache, the stores created), not counted
  for (const [i, c] of cases.entries()) await once(c, homes[i]!);
  for (let r = 0; r < N; r++) {
    for (const [i, c] of cases.entries()) samples.get(c.name)!.push(await once(c, homes[i]!));
    process.stderr.write(`round ${r + 1}/${N}\n`);
  }
} finally {
  if (!process.env.BENCH_KEEP) for (const h of homes) rmSync(h, { recursive: true, force: true });
}

const result = Object.fromEntries(
  cases.map((c) => {
    const xs = samples.get(c.name)!;
    return [c.name, { p50Ms: pct(xs, 50), p95Ms: pct(xs, 95), minMs: pct(xs, 0), n: xs.length }];
  }),
);
const base = result["node -e 0"]!.p50Ms;
const tsxBase = result["node --import tsx -e 0"]!.p50Ms;
process.stdout.write(
  `${JSON.stringify(
    {
      runs: N,
      bin: existsSync(join(ROOT, "dist")) && distIsFresh(ROOT) ? "dist (compiled)" : "src through tsx",
      machine: { cpus: (await import("node:os")).cpus().length, loadavgBefore: loadBefore.map((x) => Number(x.toFixed(2))), loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))) },
      results: result,
      overNodeP50Ms: Object.fromEntries(cases.slice(2).map((c) => [c.name, result[c.name]!.p50Ms - (c.name.startsWith("tsx:") ? tsxBase : base)])),
      targetMs: 1000,
    },
    null,
    2,
  )}\n`,
);
