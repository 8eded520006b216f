/**
 * `honua-agent evals`: the request suite and the end-to-end scenarios, with the offline planner always and with
 * the model as well when one is configured. Fails under 95% on the public requests or on any failed scenario.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILTIN_CONFIG, parseConfig } from "../config.js";
import { OfflinePlanner, createPlanner, modelSettings, type Planner } from "../planner/index.js";
import { loadRequests, runRequestSuite, type RequestReport, type Tally } from "./requests.js";
import { loadScenarios, runScenario, type ScenarioResult } from "./scenarios.js";

export { loadRequests, runRequestSuite, matches, categoriesOf, requiredCategories, type RequestReport } from "./requests.js";
export { loadScenarios, runScenario, Scenario, type ScenarioResult } from "./scenarios.js";

/** The repository's evals/: beside src/ when run from the sources, two levels further up from the compiled dist/src/. */
export const EVALS_DIR = [new URL("../../evals/", import.meta.url), new URL("../../../evals/", import.meta.url)].map((u) => fileURLToPath(u)).find((d) => existsSync(join(d, "requests.jsonl"))) ?? fileURLToPath(new URL("../../evals/", import.meta.url));
export const MIN_ACCURACY = 0.95;

export interface SuiteRun {
  planner: "offline" | "model";
  requests: RequestReport;
  scenarios: ScenarioResult[];
  passed: boolean;
}

export interface EvalOptions {
  env?: NodeJS.ProcessEnv;
  /** The suite's directory (requests.jsonl, scenarios/); default HONUA_AGENT_EVALS_DIR, else evals/. */
  dir?: string;
  /** Only the offline planner, even with a model configured (CI). */
  offlineOnly?: boolean;
  /** Only scenarios whose name matches. */
  scenarioFilter?: RegExp;
}

async function suite(planner: Planner, dir: string, modelEnv: NodeJS.ProcessEnv | undefined, filter?: RegExp): Promise<SuiteRun> {
  // The public requests are written against the built-in deployments (prod/production, staging/stage/stg).
  const { config } = parseConfig(BUILTIN_CONFIG, "built-in");
  const requests = await runRequestSuite(loadRequests(join(dir, "requests.jsonl")), config, planner);
  const scenarios: ScenarioResult[] = [];
  for (const sc of loadScenarios(join(dir, "scenarios"))) {
    if (filter && !filter.test(sc.name)) continue;
    scenarios.push(await runScenario(sc, planner, modelEnv ? { modelEnv } : {}));
  }
  // A model suite whose answers mostly came from the rules (model down, misconfigured, timing out) says nothing
  // about the model: more than 5% fallbacks fails it.
  const modelAnswered = planner.kind === "offline" || requests.fallbacks <= requests.total * (1 - MIN_ACCURACY);
  return { planner: planner.kind, requests, scenarios, passed: requests.accuracy >= MIN_ACCURACY && modelAnswered && scenarios.every((s) => s.passed) };
}

export async function runEvals(opts: EvalOptions = {}): Promise<SuiteRun[]> {
  const env = opts.env ?? process.env;
  // HONUA_AGENT_EVALS_DIR points `honua-agent evals` at another suite (requests.jsonl + scenarios/).
  const dir = opts.dir ?? (env.HONUA_AGENT_EVALS_DIR || EVALS_DIR);
  const runs = [await suite(new OfflinePlanner(), dir, undefined, opts.scenarioFilter)];
  const settings = opts.offlineOnly ? null : modelSettings(env);
  if (settings) {
    const modelEnv: NodeJS.ProcessEnv = {
      OPENAI_API_KEY: settings.apiKey, OPENAI_MODEL: settings.model, OPENAI_TIMEOUT_MS: String(settings.timeoutMs),
      ...(settings.baseURL ? { OPENAI_BASE_URL: settings.baseURL } : {}),
    };
    runs.push(await suite(createPlanner(env), dir, modelEnv, opts.scenarioFilter));
  }
  return runs;
}

const pct = (t: Tally | undefined) => (t ? `${((t.correct / t.total) * 100).toFixed(1)}%`.padStart(7) + `  ${t.correct}/${t.total}` : "n/a");
const table = (title: string, rows: [string, string][]) => {
  const w = Math.max(...rows.map(([k]) => k.length), 10);
  return [title, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join("\n");
};

export function renderEvals(runs: readonly SuiteRun[]): string {
  const out: string[] = [];
  for (const r of runs) {
    const q = r.requests;
    out.push(`== ${r.planner} planner: ${r.passed ? "PASS" : "FAIL"} ==`);
    out.push(`requests: ${(q.accuracy * 100).toFixed(1)}% (${q.correct}/${q.total}; needs ${MIN_ACCURACY * 100}%)${q.fallbacks ? ` · ${q.fallbacks} fell back to the rules${r.planner === "model" && q.fallbacks > q.total * (1 - MIN_ACCURACY) ? " (more than 5%: fails)" : ""}` : ""} · model calls ${q.modelCalls}, tokens ${q.tokens}`);
    out.push(table("per workflow (expected):", Object.entries(q.byWorkflow).sort().map(([k, t]) => [k, pct(t)])));
    out.push(table("per param:", Object.entries(q.byParam).sort().map(([k, t]) => [k, pct(t)])));
    out.push(table("per category:", Object.entries(q.byCategory).filter(([k]) => !k.startsWith("param:")).sort().map(([k, t]) => [k, pct(t)])));
    if (q.thin.length) out.push(`thin categories (< 3 cases): ${q.thin.join(", ")}`);
    out.push(q.confusions.length ? table("confusions (expected -> actual):", q.confusions.map((c) => [`${c.expected} -> ${c.actual}`, String(c.count)])) : "confusions: none");
    if (q.misses.length) out.push(table("misses:", q.misses.slice(0, 20).map((m) => [JSON.stringify(m.request), `${JSON.stringify(m.actual)} (expected ${JSON.stringify(m.expected)})`])));
    const passed = r.scenarios.filter((s) => s.passed).length;
    out.push(`scenarios: ${passed}/${r.scenarios.length} passed`);
    out.push(table("", r.scenarios.map((s) => [s.name, `${s.passed ? "ok  " : "FAIL"} ${s.outcome.padEnd(11)} gates ${s.gates.length} · decisions ${s.decisions.length} · model calls ${s.modelCalls}, tokens ${s.tokens}${s.problems.length ? `\n      ${s.problems.join("\n      ")}` : ""}`])).replace(/^\n/, ""));
    out.push("");
  }
  return out.join("\n");
}
