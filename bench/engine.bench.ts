/**
 * Engine benchmark, run on demand (not part of the tests):
 *
 *   node --expose-gc --import tsx bench/engine.bench.ts      (preferred: precise heap numbers)
 *   npx tsx bench/engine.bench.ts                           (works; heap numbers without forced GC)
 *
 * Prints ONE JSON object to stdout (progress goes to stderr). Four measurements, all in the same process:
 *   1. per-step engine overhead: N trivial ungated steps through buildWorkflowGraph + the real SqliteSaver
 *      vs the same N trivial nodes in a bare StateGraph + MemorySaver;
 *   2. disk bytes per completed add-caching-layer run (K runs on `prod`, through the Engine);
 *   3. memory per paused run (runs paused at their first gate, one per deployment);
 *   4. checkpoint bytes of one add-caching-layer run rolled out in 3, 25 and 100 stages (linear growth expected);
 *   5. what a durable decision costs: the agent's SQLite store commits with synchronous=FULL (an fsync of the WAL per
 *      commit); the same decision commits, and whole decisions through the Engine (click to next gate), with the store
 *      at NORMAL as the baseline, interleaved in the same run.
 *
 * Knobs (environment): BENCH_STEPS (50), BENCH_REPS (9), BENCH_RUNS (5), BENCH_PAUSED (1000),
 * BENCH_PAUSED_BUDGET_S (180), BENCH_COMMITS (100), BENCH_DECISIONS (12), BENCH_KEEP=1 keeps the temp directories,
 * BENCH_ONLY=perStep,disk,memory,growth,decisions picks parts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Annotation, END, MemorySaver, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import type Database from "better-sqlite3";
import { z } from "zod";
import { BUILTIN_CONFIG, parseConfig, type AgentConfig } from "../src/config.js";
import { Engine } from "../src/engine.js";
import { buildWorkflowGraph } from "../src/graph/builder.js";
import { openPersistence } from "../src/graph/checkpointer.js";
import { sqliteSql, type SqliteSynchronous } from "../src/store/sql.js";
import { AgentStore, type Sql } from "../src/store/store.js";
import { defineStep, type Step, type WorkflowDef } from "../src/graph/step.js";
import type { RunEvent } from "../src/graph/events.js";
import type { DeploymentAdapters } from "../src/tools/types.js";

const EPOCH = "2026-11-26T00:00:00Z";

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

const STEPS = intEnv("BENCH_STEPS", 50);
const REPS = intEnv("BENCH_REPS", 9);
const RUNS = intEnv("BENCH_RUNS", 5);
const PAUSED = intEnv("BENCH_PAUSED", 1000);
const PAUSED_BUDGET_MS = intEnv("BENCH_PAUSED_BUDGET_S", 180) * 1000;
const KEEP = process.env.BENCH_KEEP === "1";
const COMMITS = intEnv("BENCH_COMMITS", 100);
const DECISIONS = intEnv("BENCH_DECISIONS", 12);
const PARTS = ["perStep", "disk", "memory", "growth", "decisions"] as const;
/** BENCH_ONLY=perStep,growth runs only those parts (all by default). */
const ONLY = new Set<string>(process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((x) => x.trim()) : PARTS);
for (const p of ONLY) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`BENCH_ONLY: unknown part ${p}; parts: ${PARTS.join(", ")}`);

const TARGETS = { ratioMax: 1.3, msPerStepMax: 2, bytesPerPausedRunMax: 1024 * 1024 } as const;

const log = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`);
};

const tempDirs: string[] = [];
function tempHome(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `honua-bench-${tag}-`));
  tempDirs.push(dir);
  return dir;
}

/** Filesystem type of the mount holding `dir` (Linux /proc/mounts), for reading the fsync cost. */
function fsOf(dir: string): string {
  try {
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f): f is [string, string, string, ...string[]] => f.length >= 3)
      .map(([, mount, type]) => ({ mount, type }))
      .filter((m) => dir === m.mount || dir.startsWith(m.mount.endsWith("/") ? m.mount : `${m.mount}/`))
      .sort((a, b) => b.mount.length - a.mount.length);
    const m = mounts[0];
    return m ? `${m.type} at ${m.mount}` : "unknown filesystem";
  } catch {
    return "unknown filesystem";
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

const gcFn: (() => void) | undefined = typeof globalThis.gc === "function" ? () => globalThis.gc?.() : undefined;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function settle(): Promise<void> {
  // Let pending promises/timers drain, then collect twice (weak refs and finalizers need a second pass).
  await pause(50);
  if (gcFn) {
    gcFn();
    await pause(50);
    gcFn();
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. Per-step overhead
// ---------------------------------------------------------------------------------------------------------

/** Adapters for ungated steps: only the clock is used; anything else is a bench bug and throws. */
function fakeAdapters(): DeploymentAdapters {
  const unexpected = (what: string) => (): never => {
    throw new Error(`bench: ${what} must not be called by trivial ungated steps`);
  };
  const t = Date.parse(EPOCH);
  return {
    provider: "bench",
    clock: { now: () => new Date(t), sleep: async () => undefined },
    metrics: { samples: unexpected("metrics.samples") },
    config: { read: unexpected("config.read"), apply: unexpected("config.apply") },
    cache: { engines: [], provision: unexpected("cache.provision"), deprovision: unexpected("cache.deprovision") },
    traffic: { share: unexpected("traffic.share"), setShare: unexpected("traffic.setShare") },
    tiles: { popularTiles: unexpected("tiles.popularTiles"), submitJob: unexpected("tiles.submitJob") },
    cost: { monthly: unexpected("cost.monthly") },
  };
}

function syntheticWorkflow(n: number): WorkflowDef {
  const Io = z.object({ i: z.number().int() });
  const steps: Step[] = Array.from({ length: n }, (_, i) =>
    defineStep({
      name: `Step${i}`,
      description: `trivial step ${i}`,
      input: Io,
      output: Io,
      prepare: () => ({ i }),
      run: async (_ctx, input) => ({ output: { i: input.i } }),
    }),
  );
  return {
    id: "bench-chain",
    title: "Benchmark chain",
    params: z.record(z.string(), z.unknown()),
    steps,
    rollback: async () => ({ restored: [], leftovers: [] }),
  };
}

type Durability = "sync" | "async" | "exit";

interface Timed {
  /** Median over the repetitions, whole invoke divided by N. */
  msPerStep: number;
  samplesMsPerStep: number[];
  /** Median CPU time of this process (user + system) per step: steadier than wall time on a shared machine. */
  cpuMsPerStep: number;
}

const WARMUPS = 3;

/**
 * Times every variant REPS times, interleaved (rep r runs all variants, in an order rotated by r) so JIT
 * warm-up, checkpoint-DB growth and machine noise hit all variants alike. GC runs between samples when exposed.
 */
async function timeInterleaved<K extends string>(variants: Record<K, () => Promise<void>>): Promise<Record<K, Timed>> {
  const keys = Object.keys(variants) as K[];
  for (let w = 0; w < WARMUPS; w++) for (const k of keys) await variants[k]();
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  const cpu = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let rep = 0; rep < REPS; rep++) {
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(rep + j) % keys.length]!;
      gcFn?.();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await variants[k]();
      samples[k].push((performance.now() - t0) / STEPS);
      const c = process.cpuUsage(c0);
      cpu[k].push((c.user + c.system) / 1000 / STEPS);
    }
  }
  const out = {} as Record<K, Timed>;
  for (const k of keys) {
    out[k] = { msPerStep: round(median(samples[k]), 4), samplesMsPerStep: samples[k].map((x) => round(x, 4)), cpuMsPerStep: round(median(cpu[k]), 4) };
    log(`${k}: ${out[k].msPerStep} ms/step wall, ${out[k].cpuMsPerStep} ms/step CPU (median of ${REPS})`);
  }
  return out;
}

/** The same chain as bare LangGraph: N nodes, each returns immediately, a MemorySaver. */
function bareGraph(n: number, checkpointer: BaseCheckpointSaver) {
  const State = Annotation.Root({
    run: Annotation<string>(),
    count: Annotation<number>(),
    log: Annotation<string[]>({ reducer: (a, b) => [...a, ...b], default: () => [] }),
  });
  // N is `string`: the node names are only known at run time.
  const g = new StateGraph<typeof State.spec, typeof State.State, typeof State.Update, string>(State);
  const names = Array.from({ length: n }, (_, i) => `node${i}`);
  for (const name of names) g.addNode(name, async (s: typeof State.State) => ({ count: s.count + 1, log: [name] }));
  g.addEdge(START, names[0]!);
  for (let i = 1; i < n; i++) g.addEdge(names[i - 1]!, names[i]!);
  g.addEdge(names[n - 1]!, END);
  return g.compile({ checkpointer });
}

async function measurePerStep() {
  const home = tempHome("steps");
  const env: NodeJS.ProcessEnv = { HONUA_AGENT_HOME: home };
  const persistence = await openPersistence(env, home);
  const config: AgentConfig = parseConfig(BUILTIN_CONFIG, "built-in", env).config;
  const def = syntheticWorkflow(STEPS);
  const adapters = fakeAdapters();
  const deps = (checkpointer: BaseCheckpointSaver) => ({ config, store: persistence.store, checkpointer, adaptersFor: () => adapters });
  const engineSqlite = buildWorkflowGraph(def, deps(persistence.checkpointer));
  const engineMemory = buildWorkflowGraph(def, deps(new MemorySaver()));
  const bare = bareGraph(STEPS, new MemorySaver());

  let thread = 0;
  const input = (run: string) => ({ run, workflow: def.id, deployment: "prod", requestedBy: "carol", request: "bench", params: {} });
  const engineOnce = (graph: typeof engineSqlite, durability: Durability, tag: string) => async () => {
    const run = `${tag}-${thread++}`;
    const out = await graph.invoke(input(run), { configurable: { thread_id: run }, durability, recursionLimit: 500 });
    // The state counts the step records kept beside the checkpoints (`recorded`); none are in it for a new run.
    const records = out.steps.length + (out.recorded ?? 0);
    if (out.status !== "done" || records !== STEPS) throw new Error(`bench: engine run ${run} ended ${out.status} after ${records} steps`);
  };
  const bareOnce = async () => {
    const run = `bare-${thread++}`;
    const out = await bare.invoke({ run, count: 0 }, { configurable: { thread_id: run }, recursionLimit: 500 });
    if (out.count !== STEPS) throw new Error(`bench: bare run ${run} executed ${out.count} nodes`);
  };

  const t = await timeInterleaved({
    bareMemorySaver: bareOnce,
    engineSqliteSync: engineOnce(engineSqlite, "sync", "sync"),
    engineSqliteAsync: engineOnce(engineSqlite, "async", "async"),
    engineMemorySaver: engineOnce(engineMemory, "sync", "mem"),
  });
  const engine = t.engineSqliteSync;
  const engineAsync = t.engineSqliteAsync;
  const engineMem = t.engineMemorySaver;

  // How many checkpoint rows and bytes one synthetic run writes, read back from the real saver's tables.
  let writes: { checkpointsPerRun: number; checkpointBytesPerRun: number; writeRowsPerRun: number; writeBytesPerRun: number } | null = null;
  if (persistence.checkpointer instanceof SqliteSaver) {
    const { db } = persistence.checkpointer;
    // Averaged over every thread the "sync" variant ran (warm-up included: each is one identical run).
    const cp = db
      .prepare(`SELECT COUNT(DISTINCT thread_id) AS runs, COUNT(*) AS n, COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) AS bytes FROM checkpoints WHERE thread_id LIKE 'sync-%'`)
      .get() as { runs: number; n: number; bytes: number };
    const wr = db
      .prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(value)), 0) AS bytes FROM writes WHERE thread_id LIKE 'sync-%'`)
      .get() as { n: number; bytes: number };
    const per = (x: number) => Math.round(x / Math.max(cp.runs, 1));
    writes = { checkpointsPerRun: per(cp.n), checkpointBytesPerRun: per(cp.bytes), writeRowsPerRun: per(wr.n), writeBytesPerRun: per(wr.bytes) };
  }
  await persistence.close();

  const baselineMs = t.bareMemorySaver.msPerStep;
  const ratio = engine.msPerStep / baselineMs;
  const sqliteShare = (engine.msPerStep - engineMem.msPerStep) / engine.msPerStep;
  const pct = (x: number) => `${round(x * 100, 0)}%`;
  const notes = [
    `Engine (buildWorkflowGraph + SqliteSaver, durability "sync") ${engine.msPerStep} ms/step vs bare StateGraph + MemorySaver ${round(baselineMs, 4)} ms/step = ${round(ratio, 2)}x.`,
    `The same engine graph with a MemorySaver runs ${engineMem.msPerStep} ms/step (${round(engineMem.msPerStep / baselineMs, 2)}x bare): the builder's own cost (a 17-channel RunState with zod-validated values and appending reducers, a Command({ goto }) from every node,`,
    `a RunView + zod input/output parse and a StepRecord per step written into checkpoints.sqlite (one commit at the checkpoints' durability, no fsync of its own) before the checkpoint that counts it, a read of the run's open controls per step boundary, plus init and finish nodes, finish doing 2 agent.sqlite writes, amortised over ${STEPS} steps).`,
    `The rest, ${round(engine.msPerStep - engineMem.msPerStep, 4)} ms/step (${pct(sqliteShare)} of the engine's time), is the real SqliteSaver: per superstep one checkpoint INSERT`,
    `whose JSON holds the whole channel state, which grows with every StepRecord${writes ? ` (one ${STEPS}-step run: ${writes.checkpointsPerRun} checkpoints, ${writes.checkpointBytesPerRun} bytes, plus ${writes.writeRowsPerRun} pending-write rows, ${writes.writeBytesPerRun} bytes)` : ""},`,
    `and every put/putWrites call re-prepares its statement and commits on its own (WAL with synchronous=FULL: an fsync per commit, on ${fsOf(home)});`,
    `with durability "async" the engine runs ${engineAsync.msPerStep} ms/step.`,
    `LangGraph's per-superstep machinery (channel copies, task preparation, config merging, langsmith RunTree objects) dominates both graphs' CPU profiles.`,
    `Absolute ms/step depends on machine load (see machine.loadavg); the ratio is the more stable number.`,
  ].join(" ");

  return {
    steps: STEPS,
    repetitions: REPS,
    statistic: `median over ${REPS} interleaved repetitions of (invoke wall time / steps), after ${WARMUPS} warm-ups per variant; engine = buildWorkflowGraph + SqliteSaver with durability "sync" (as Engine), baseline = bare StateGraph + MemorySaver`,
    engineMsPerStep: engine.msPerStep,
    baselineMsPerStep: round(baselineMs, 4),
    ratio: round(ratio, 3),
    /** The same ratio in CPU time of this process: what the engine costs, with less of the machine's load in it. */
    cpuRatio: round(engine.cpuMsPerStep / t.bareMemorySaver.cpuMsPerStep, 3),
    cpuRatioMemorySaver: round(engineMem.cpuMsPerStep / t.bareMemorySaver.cpuMsPerStep, 3),
    targets: { ratioMax: TARGETS.ratioMax, msPerStepMax: TARGETS.msPerStepMax },
    ratioMet: ratio <= TARGETS.ratioMax,
    msPerStepMet: engine.msPerStep < TARGETS.msPerStepMax,
    breakdown: {
      bareMemorySaver: t.bareMemorySaver,
      engineSqliteSync: engine,
      engineSqliteAsync: engineAsync,
      engineMemorySaver: engineMem,
      checkpointWrites: writes,
    },
    notes,
  };
}

// ---------------------------------------------------------------------------------------------------------
// 2. Disk per completed run
// ---------------------------------------------------------------------------------------------------------

const DB_FILES = ["checkpoints.sqlite", "agent.sqlite", "sandbox.sqlite"] as const;
type DbFile = (typeof DB_FILES)[number];
type Sizes = Record<DbFile, { main: number; wal: number; total: number }>;

const fileSize = (path: string): number => (existsSync(path) ? statSync(path).size : 0);
function sizes(home: string): Sizes {
  const out = {} as Sizes;
  for (const f of DB_FILES) {
    const main = fileSize(join(home, f));
    const wal = fileSize(join(home, `${f}-wal`));
    out[f] = { main, wal, total: main + wal };
  }
  return out;
}
const sumSizes = (s: Sizes): number => DB_FILES.reduce((acc, f) => acc + s[f].total, 0);

async function fullCachingRun(engine: Engine, deployment: string): Promise<{ status: string; gates: number }> {
  let s = await engine.start({ workflow: "add-caching-layer", deployment, params: {} }, "carol", `add redis caching to ${deployment}`);
  let gates = 0;
  while (s.pending) {
    gates++;
    s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
  }
  return { status: s.status, gates };
}

/**
 * `prod` plus K-1 clones of it (same provider, seed and monitoring). A sandbox deployment keeps its state, and
 * add-caching-layer on a deployment that already has Redis fails by design at DesignCachingStrategy ("already
 * uses Redis ... nothing to add"), so only the first run on `prod` itself can complete; the clones let all K
 * runs complete with prod's exact behaviour.
 */
function prodClones(k: number) {
  const prod = BUILTIN_CONFIG.deployments.prod;
  const names = ["prod", ...Array.from({ length: k - 1 }, (_, i) => `prod${i + 2}`)];
  const deployments: Record<string, unknown> = { ...BUILTIN_CONFIG.deployments };
  for (const n of names.slice(1)) deployments[n] = { provider: prod.provider, approvers: [...prod.approvers], seed: prod.seed };
  return { names, raw: { deployments, groups: BUILTIN_CONFIG.groups } };
}

async function measureDisk() {
  const home = tempHome("disk");
  const env: NodeJS.ProcessEnv = { HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: EPOCH };
  const { names, raw } = prodClones(RUNS);
  const config = parseConfig(raw, "built-in + prod clones", env);

  // Empty baseline: schemas of all three databases, no run.
  const empty = await Engine.open({ env, config });
  empty.sandbox();
  await empty.close();
  const emptySizes = sizes(home);

  const engine = await Engine.open({ env, config });
  const runs: { deployment: string; status: string; gates: number; ms: number }[] = [];
  for (const deployment of names) {
    const t0 = performance.now();
    const r = await fullCachingRun(engine, deployment);
    runs.push({ deployment, ...r, ms: round(performance.now() - t0, 1) });
    log(`caching run on ${deployment}: ${r.status} after ${r.gates} gates in ${runs.at(-1)!.ms} ms`);
  }
  const openSizes = sizes(home); // while open: WAL files not yet checkpointed into the main files
  await engine.close();
  const closedSizes = sizes(home); // after close: SQLite checkpoints and removes the WAL

  const perRun = (after: Sizes) =>
    Object.fromEntries(DB_FILES.map((f) => [f, Math.round((after[f].total - emptySizes[f].total) / RUNS)])) as Record<DbFile, number>;
  const closedPerRun = Math.round((sumSizes(closedSizes) - sumSizes(emptySizes)) / RUNS);
  const openPerRun = Math.round((sumSizes(openSizes) - sumSizes(emptySizes)) / RUNS);
  return {
    runs: RUNS,
    workflow: "add-caching-layer",
    deployments: names,
    deploymentsNote: "run 1 on prod, runs 2..K on clones of prod (same seed/config): a second caching run on the same sandbox deployment fails by design (Redis already configured)",
    allDone: runs.every((r) => r.status === "done"),
    statuses: runs.map((r) => r.status),
    gatesPerRun: runs[0]?.gates ?? 0,
    msPerRunMedian: round(median(runs.map((r) => r.ms)), 1),
    bytesPerRun: closedPerRun,
    bytesPerRunByFile: perRun(closedSizes),
    bytesPerRunWhileOpenInclWal: openPerRun,
    bytesPerRunWhileOpenByFile: perRun(openSizes),
    method: "(size after K runs - size of the empty databases) / K, main file + -wal; 'bytesPerRun' after Engine.close() (WAL checkpointed into the main file; page-granular, 4 KiB pages), 'whileOpen' before close (WAL frames, includes superseded page versions). sandbox.sqlite per run includes creating the deployment's simulated state on first use",
    emptyBytes: sumSizes(emptySizes),
    sizesAfterClose: closedSizes,
    sizesWhileOpen: openSizes,
  };
}

// ---------------------------------------------------------------------------------------------------------
// 3. Memory per paused run
// ---------------------------------------------------------------------------------------------------------

async function measurePaused() {
  const home = tempHome("paused");
  const env: NodeJS.ProcessEnv = { HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: EPOCH };
  const deployments: Record<string, { provider: "sandbox"; approvers: string[] }> = { warmup: { provider: "sandbox", approvers: ["oncall"] } };
  for (let i = 0; i < PAUSED; i++) deployments[`d${i}`] = { provider: "sandbox", approvers: ["oncall"] };
  const config = parseConfig({ deployments, groups: { oncall: ["alice", "bob"] } }, "bench", env);
  const engine = await Engine.open({ env, config });

  // Warm-up run on its own deployment: compiles the graph, opens the sandbox DB, JITs the hot paths.
  const warm = await engine.start({ workflow: "add-caching-layer", deployment: "warmup", params: {} }, "carol", "add redis caching");
  if (!warm.pending) throw new Error(`bench: warm-up run did not pause (status ${warm.status})`);
  const firstGate = warm.pending.step;

  await settle();
  const before = process.memoryUsage();
  const t0 = performance.now();
  let started = 0;
  let stoppedEarly: string | null = null;
  for (let i = 0; i < PAUSED; i++) {
    const s = await engine.start({ workflow: "add-caching-layer", deployment: `d${i}`, params: {} }, "carol", "add redis caching");
    if (!s.pending || s.status !== "waiting") throw new Error(`bench: run on d${i} did not pause at a gate (status ${s.status})`);
    started++;
    if ((i + 1) % 100 === 0) log(`paused runs: ${i + 1}/${PAUSED} (${round((performance.now() - t0) / 1000, 1)} s)`);
    if (performance.now() - t0 > PAUSED_BUDGET_MS && i + 1 < PAUSED) {
      stoppedEarly = `time budget of ${PAUSED_BUDGET_MS / 1000} s exceeded after ${started} runs; per-run numbers are over these ${started} runs only (nothing extrapolated)`;
      break;
    }
  }
  const elapsedMs = performance.now() - t0;
  await settle();
  const after = process.memoryUsage();
  const waiting = (await engine.runs()).filter((r) => r.status === "waiting").length;
  await engine.close();

  const heapPerRun = (after.heapUsed - before.heapUsed) / started;
  const rssPerRun = (after.rss - before.rss) / started;
  const extPerRun = (after.external + after.arrayBuffers - before.external - before.arrayBuffers) / started;
  return {
    requested: PAUSED,
    started,
    stoppedEarly,
    waitingInStore: waiting,
    pausedAt: firstGate,
    gcForced: gcFn !== undefined,
    secondsTotal: round(elapsedMs / 1000, 1),
    msPerStartMean: round(elapsedMs / started, 2),
    heapUsedDeltaBytes: after.heapUsed - before.heapUsed,
    rssDeltaBytes: after.rss - before.rss,
    heapUsedBytesPerRun: Math.round(heapPerRun),
    rssBytesPerRun: Math.round(rssPerRun),
    externalBytesPerRun: Math.round(extPerRun),
    target: { bytesPerRunMax: TARGETS.bytesPerPausedRunMax },
    heapMet: heapPerRun <= TARGETS.bytesPerPausedRunMax,
    rssMet: rssPerRun <= TARGETS.bytesPerPausedRunMax,
    note: gcFn
      ? "heap measured after forced GC (--expose-gc); rss includes SQLite page caches and V8 heap growth that GC does not return to the OS"
      : "global.gc unavailable (run with node --expose-gc --import tsx): heap delta includes uncollected garbage, so it overstates retained memory",
  };
}

// ---------------------------------------------------------------------------------------------------------
// 4. Checkpoint growth with the number of stages
// ---------------------------------------------------------------------------------------------------------

const GROWTH_STAGES = [3, 25, 100] as const;

/** Rollout percentages for `n` stages, increasing, ending at 100. */
const rolloutOf = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.max(1, Math.round(((i + 1) * 100) / n)));

/** Bytes one thread holds in a SQLite table, by the columns that carry its data. */
function threadBytes(db: Database.Database, table: "checkpoints" | "writes", run: string): { rows: number; bytes: number } {
  const cols = table === "checkpoints" ? "LENGTH(checkpoint) + LENGTH(metadata)" : "LENGTH(value)";
  return db.prepare(`SELECT COUNT(*) AS rows, COALESCE(SUM(${cols}), 0) AS bytes FROM ${table} WHERE thread_id = ?`).get(run) as { rows: number; bytes: number };
}

/**
 * One add-caching-layer run per stage count (rollout in 3, 25 and 100 stages, every gate approved), each in its own home,
 * and what it leaves: checkpoint rows and bytes, pending-write bytes, and the step inputs/outputs kept beside the
 * checkpoints in the agent's store. Linear growth: bytes per stage stay flat as the stage count grows.
 */
async function measureGrowth() {
  const out: Record<string, unknown>[] = [];
  for (const stages of GROWTH_STAGES) {
    const home = tempHome(`growth${stages}`);
    const env: NodeJS.ProcessEnv = { HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: EPOCH };
    const engine = await Engine.open({ env, config: parseConfig(BUILTIN_CONFIG, "built-in", env) });
    const t0 = performance.now();
    let s = await engine.start({ workflow: "add-caching-layer", deployment: "prod", params: { rolloutSteps: rolloutOf(stages) } }, "carol", `add redis caching to prod in ${stages} stages`);
    let gates = 0;
    while (s.pending) {
      gates++;
      s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
    }
    const ms = performance.now() - t0;
    const tr = await engine.transcript(s.run);
    const cp = engine.persistence.checkpointer;
    if (!(cp instanceof SqliteSaver)) throw new Error("bench: growth needs the SQLite saver");
    const checkpoints = threadBytes(cp.db, "checkpoints", s.run);
    const writes = threadBytes(cp.db, "writes", s.run);
    const beside = await engine.store.recordBytes(s.run);
    await engine.close();
    log(`growth: ${stages} stages ${s.status} after ${gates} gates, ${tr.steps.length} step records, ${checkpoints.rows} checkpoints, ${checkpoints.bytes} bytes in ${round(ms, 0)} ms`);
    out.push({
      stages, status: s.status, gates, stepRecords: tr.steps.length, ms: round(ms, 0),
      checkpoints: checkpoints.rows, checkpointBytes: checkpoints.bytes, writeBytes: writes.bytes, recordBytesBeside: beside,
      totalBytes: checkpoints.bytes + writes.bytes + beside,
      checkpointBytesPerStage: Math.round(checkpoints.bytes / stages),
    });
  }
  const by = (n: number) => out.find((o) => o.stages === n) as { checkpointBytes: number; totalBytes: number };
  const growth = (a: number, b: number) => round(by(b).checkpointBytes / by(a).checkpointBytes, 2);
  return {
    runs: out,
    checkpointBytesRatio100to25: growth(25, 100),
    checkpointBytesRatio25to3: growth(3, 25),
    note: "linear growth puts checkpointBytesRatio100to25 near 4 (the stage ratio) and quadratic near 16; totalBytes adds the pending writes and the step records and decisions kept in the agent's store",
  };
}

// ---------------------------------------------------------------------------------------------------------
// 5. Durable decisions: synchronous=FULL against NORMAL, same run
// ---------------------------------------------------------------------------------------------------------

const MODES = ["FULL", "NORMAL"] as const satisfies readonly SqliteSynchronous[];

/** The statements a connection sent that write (each outside a transaction is its own commit, so its own fsync under FULL). */
function countingWrites(sql: Sql): { sql: Sql; writes: () => number } {
  let writes = 0;
  const counted: Sql = {
    dialect: sql.dialect,
    query: (text, params) => {
      if (/^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(text)) writes++;
      return sql.query(text, params);
    },
    exclusive: (name, fn) => sql.exclusive(name, fn),
    close: () => sql.close(),
  };
  return { sql: counted, writes: () => writes };
}

interface ModeTimes {
  msPerOp: number;
  cpuMsPerOp: number;
  samplesMsPerOp: number[];
}

/** Runs `once(mode, rep)` for each mode REPS times, in an order rotated by rep; `ops` operations per call. */
async function interleavedModes(ops: number, once: (mode: SqliteSynchronous, rep: number) => Promise<void>): Promise<Record<SqliteSynchronous, ModeTimes>> {
  for (const m of MODES) await once(m, -1); // warm-up
  const wall = { FULL: [] as number[], NORMAL: [] as number[] };
  const cpu = { FULL: [] as number[], NORMAL: [] as number[] };
  for (let rep = 0; rep < REPS; rep++) {
    for (let j = 0; j < MODES.length; j++) {
      const m = MODES[(rep + j) % MODES.length]!;
      gcFn?.();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await once(m, rep);
      wall[m].push((performance.now() - t0) / ops);
      const c = process.cpuUsage(c0);
      cpu[m].push((c.user + c.system) / 1000 / ops);
    }
  }
  const out = {} as Record<SqliteSynchronous, ModeTimes>;
  for (const m of MODES) out[m] = { msPerOp: round(median(wall[m]), 4), cpuMsPerOp: round(median(cpu[m]), 4), samplesMsPerOp: wall[m].map((x) => round(x, 4)) };
  return out;
}

async function measureDecisions() {
  // (a) The durable writes alone: a decision record, a control request and a journal entry, one commit each.
  const dir = tempHome("commit");
  const stores = {} as Record<SqliteSynchronous, AgentStore>;
  for (const m of MODES) {
    stores[m] = new AgentStore(sqliteSql(join(dir, `agent-${m}.sqlite`), { synchronous: m }));
    await stores[m].setup();
  }
  const at = "2026-11-26T00:00:00.000Z";
  const commit = (kind: "decision" | "control" | "journal") => async (m: SqliteSynchronous, rep: number) => {
    const store = stores[m];
    for (let i = 0; i < COMMITS; i++) {
      const run = `bench-${kind}-${rep}-${i}`;
      if (kind === "decision") {
        const r = await store.recordDecision({ run, interrupt: "i1", step: "ProvisionCacheInfrastructure", stage: null, kind: "provision", decision: "approve", by: "alice", at, planHash: "0123456789abcdef", comment: null, groups: [] });
        if (!r.won && rep >= 0) throw new Error(`bench: decision ${run} was not new`);
      } else if (kind === "control") {
        await store.addControl({ run, id: `pause:${i}`, kind: "pause", by: "alice", reason: "bench", at });
      } else {
        await store.journalIntend({ run, key: `${run}:k`, step: "ConfigureCaching", stage: null, effects: [], at });
      }
    }
  };
  // Warm-up runs use rep -1 and are overwritten by nothing later: the runs differ per rep, so every commit inserts.
  const decisionCommit = await interleavedModes(COMMITS, commit("decision"));
  const controlCommit = await interleavedModes(COMMITS, commit("control"));
  const journalCommit = await interleavedModes(COMMITS, commit("journal"));
  for (const m of MODES) await stores[m].close();
  log(`decision commit: FULL ${decisionCommit.FULL.msPerOp} ms, NORMAL ${decisionCommit.NORMAL.msPerOp} ms (median of ${REPS} x ${COMMITS})`);

  // (b) Whole decisions through the Engine: approve the first gate of an add-caching-layer run, to its next gate.
  const engines = {} as Record<SqliteSynchronous, { engine: Engine; writes: () => number; waiting: { run: string; planHash: string }[] }>;
  // From the call to the first step-start event of that run: what a click waits for before its next step has started.
  const toStart = { FULL: [] as number[], NORMAL: [] as number[] };
  const deciding = new Map<string, { mode: SqliteSynchronous; t0: number }>();
  const onEvent = (ev: RunEvent) => {
    const d = ev.type === "step-start" ? deciding.get(ev.run) : undefined;
    if (!d) return;
    toStart[d.mode].push(performance.now() - d.t0);
    deciding.delete(ev.run);
  };
  const total = DECISIONS * (REPS + 1);
  const { names, raw } = prodClones(total);
  for (const m of MODES) {
    const home = tempHome(`decide-${m}`);
    const env: NodeJS.ProcessEnv = { HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: EPOCH };
    const engine = await Engine.open({ env, cwd: home, config: parseConfig(raw, "built-in + prod clones", env), onEvent });
    // The baseline: the same store connection with better-sqlite3's build default (SQLite keeps this per connection).
    if (m === "NORMAL") await engine.store.sql.query("PRAGMA synchronous = NORMAL");
    const got = Number((await engine.store.sql.query<{ synchronous: number }>("PRAGMA synchronous"))[0]?.synchronous);
    if (got !== (m === "FULL" ? 2 : 1)) throw new Error(`bench: ${m} store reports synchronous=${got}`);
    const waiting: { run: string; planHash: string }[] = [];
    for (const d of names) {
      const s = await engine.start({ workflow: "add-caching-layer", deployment: d, params: {} }, "carol", `add redis caching to ${d}`);
      if (!s.pending) throw new Error(`bench: run on ${d} did not reach a gate (${s.status})`);
      waiting.push({ run: s.run, planHash: s.pending.planHash });
    }
    // Count the store's writes from here on (the decisions only).
    const counted = countingWrites(engine.store.sql);
    (engine.store as { sql: Sql }).sql = counted.sql;
    engines[m] = { engine, writes: counted.writes, waiting };
  }
  log(`started ${total} runs per mode to their first gate`);
  const decide = async (m: SqliteSynchronous) => {
    const e = engines[m];
    for (let i = 0; i < DECISIONS; i++) {
      const w = e.waiting.shift()!;
      deciding.set(w.run, { mode: m, t0: performance.now() });
      const s = await e.engine.decide(w.run, "alice", "approve", { planHash: w.planHash });
      if (s.pending?.step !== "EnableCachingGradually") throw new Error(`bench: decision on ${w.run} ended at ${s.pending?.step ?? s.status}`);
    }
  };
  const writesBefore = { FULL: 0, NORMAL: 0 };
  for (const m of MODES) writesBefore[m] = engines[m].writes();
  const decision = await interleavedModes(DECISIONS, (m) => decide(m));
  const warm = DECISIONS; // the first DECISIONS of each mode were the warm-up
  const started = Object.fromEntries(MODES.map((m) => {
    const xs = toStart[m].slice(warm);
    return [m, { n: xs.length, p50Ms: round(median(xs), 3), maxMs: round(Math.max(...xs), 3) }];
  })) as Record<SqliteSynchronous, { n: number; p50Ms: number; maxMs: number }>;
  const writesPerDecision = Object.fromEntries(MODES.map((m) => [m, round((engines[m].writes() - writesBefore[m]) / total, 1)])) as Record<SqliteSynchronous, number>;
  for (const m of MODES) await engines[m].engine.close();
  log(`decision to next gate: FULL ${decision.FULL.msPerOp} ms, NORMAL ${decision.NORMAL.msPerOp} ms (median of ${REPS} x ${DECISIONS})`);

  const cost = (t: Record<SqliteSynchronous, ModeTimes>) => ({
    FULL: t.FULL,
    NORMAL: t.NORMAL,
    fullMinusNormalMs: round(t.FULL.msPerOp - t.NORMAL.msPerOp, 4),
    fullOverNormal: round(t.FULL.msPerOp / t.NORMAL.msPerOp, 2),
  });
  return {
    tempFs: fsOf(dir),
    commitsPerSample: COMMITS,
    decisionCommit: cost(decisionCommit),
    controlCommit: cost(controlCommit),
    journalCommit: cost(journalCommit),
    decisionToNextStepStarted: { ...started, fullMinusNormalP50Ms: round(started.FULL.p50Ms - started.NORMAL.p50Ms, 3) },
    decisionToNextGate: { decisionsPerSample: DECISIONS, storeWritesPerDecision: writesPerDecision, ...cost(decision) },
    note: "msPerOp: median wall time per commit (or per whole decision) over the repetitions, FULL and NORMAL interleaved; a decision to its next gate also runs the steps in between (ProvisionCacheInfrastructure, ConfigureCaching, WarmCache) and their checkpoints, which stay at NORMAL",
  };
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const loadStart = loadavg().map((x) => round(x, 2));
  log(`node ${process.version}, gc ${gcFn ? "exposed" : "not exposed"}; steps=${STEPS} reps=${REPS} runs=${RUNS} paused=${PAUSED}`);
  try {
    const perStep = ONLY.has("perStep") ? await measurePerStep() : null;
    const disk = ONLY.has("disk") ? await measureDisk() : null;
    const memory = ONLY.has("memory") ? await measurePaused() : null;
    const growth = ONLY.has("growth") ? await measureGrowth() : null;
    const decisions = ONLY.has("decisions") ? await measureDecisions() : null;
    const result = {
      benchmark: "honua-agent engine",
      startedAt,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      gcExposed: gcFn !== undefined,
      machine: { cpus: cpus().length, loadavgAtStart: loadStart, loadavgAtEnd: loadavg().map((x) => round(x, 2)), tempDir: tmpdir(), tempFs: fsOf(tmpdir()) },
      counts: { steps: STEPS, repetitions: REPS, completedRuns: RUNS, pausedRunsRequested: PAUSED, pausedRunsStarted: memory?.started ?? 0 },
      perStep,
      diskPerCompletedRun: disk,
      memoryPerPausedRun: memory,
      checkpointGrowth: growth,
      durableDecisions: decisions,
      pass: {
        perStepRatio: perStep?.ratioMet ?? null,
        perStepMs: perStep?.msPerStepMet ?? null,
        memoryPerPausedRunHeap: memory?.heapMet ?? null,
        memoryPerPausedRunRss: memory?.rssMet ?? null,
        checkpointGrowthLinear: growth ? growth.checkpointBytesRatio100to25 < 6 : null,
      },
      totalSeconds: round((performance.now() - t0) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    if (KEEP) log(`kept ${tempDirs.join(", ")}`);
    else for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  }
}

await main();
