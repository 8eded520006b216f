/**
 * End-to-end scenarios: a request, sandbox faults, a script of decisions and thread replies, and the expected
 * outcome (status, gates seen, decisions made, what the thread was told). Each runs on a fresh sandbox.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { CONTROL_TOOLS, converse, type ToolName } from "../conversation/index.js";
import { Engine, type RunSummary } from "../engine.js";
import { AgentError, describeIssues } from "../core/errors.js";
import { MemoryCallSink, planOnly, planRequest, type Planner } from "../planner/index.js";
import { isClarify, isPlan } from "../planner/plan.js";
import { SandboxFault } from "../core/faults.js";

/** `Step:kind` for gates, `Step:decision:by` for decisions: short enough to read in a scenario file. */
const Action = z.discriminatedUnion("do", [
  z.strictObject({
    do: z.enum(["approve", "reject"]),
    as: z.string().min(1),
    /** The gate this decision must meet (`Step:kind`). */
    at: z.string().optional(),
    /** When the decision must be refused: a regex its error matches. */
    refused: z.string().optional(),
  }),
  z.strictObject({ do: z.literal("approve-all"), as: z.string().min(1) }),
  z.strictObject({
    do: z.literal("say"),
    as: z.string().min(1),
    groups: z.array(z.string()).default([]),
    text: z.string(),
    /** A regex a rule-based reply must match (a model words its answer its own way). */
    reply: z.string().optional(),
    /** Tools the turn must have run successfully, in order (with a model: the control tools among them). */
    actions: z.array(z.string()).optional(),
  }),
]);
export type ScenarioAction = z.infer<typeof Action>;

export const Outcome = z.enum(["done", "rolled-back", "failed", "rejected", "cancelled", "waiting", "paused", "refused", "clarify"]);

export const Scenario = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/),
  description: z.string(),
  request: z.string(),
  requestedBy: z.string().default("carol"),
  faults: z.array(SandboxFault).default([]),
  script: z.array(Action).default([]),
  expect: z.strictObject({
    outcome: Outcome,
    /** Every gate met, in order (`Step:kind`), including the one still pending. */
    gates: z.array(z.string()).default([]),
    /** Every decision recorded, in order (`Step:decision:by`). */
    decisions: z.array(z.string()).default([]),
    /** For refused/clarify: a regex the message matches. */
    message: z.string().optional(),
    /** The plan the request must become (compared exactly), so a run of the wrong change cannot pass. */
    plan: z.strictObject({ workflow: z.string(), deployment: z.string(), params: z.record(z.string(), z.unknown()) }).optional(),
  }),
});
export type Scenario = z.infer<typeof Scenario>;

export function loadScenarios(dir: string): Scenario[] {
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => {
      const raw: unknown = f.endsWith(".json") ? JSON.parse(readFileSync(join(dir, f), "utf8")) : parseYaml(readFileSync(join(dir, f), "utf8"));
      const parsed = Scenario.safeParse(raw);
      if (!parsed.success) throw new Error(`${f}: ${describeIssues(parsed.error)}`);
      if (`${parsed.data.name}` !== f.replace(/\.(ya?ml|json)$/, "")) throw new Error(`${f}: name ${parsed.data.name} does not match the file name`);
      // Without a message, any question or refusal would pass: say which one is expected.
      if ((parsed.data.expect.outcome === "refused" || parsed.data.expect.outcome === "clarify") && !parsed.data.expect.message) {
        throw new Error(`${f}: expect.message is required for outcome ${parsed.data.expect.outcome}`);
      }
      return parsed.data;
    });
}

export interface ScenarioResult {
  name: string;
  passed: boolean;
  outcome: string;
  gates: string[];
  decisions: string[];
  problems: string[];
  modelCalls: number;
  tokens: number;
}

const gateOf = (s: RunSummary): string | null => (s.pending ? `${s.pending.step}:${s.pending.kind}` : null);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function runScenario(sc: Scenario, planner: Planner, opts: { modelEnv?: NodeJS.ProcessEnv } = {}): Promise<ScenarioResult> {
  const home = mkdtempSync(join(tmpdir(), `honua-eval-${sc.name}-`));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, HONUA_AGENT_HOME: home, HONUA_SANDBOX_EPOCH: "2026-11-26T00:00:00Z",
    ...(sc.faults.length ? { HONUA_SANDBOX_FAULTS: sc.faults.join(",") } : {}),
  };
  const problems: string[] = [];
  const gates: string[] = [];
  const decisions: string[] = [];
  const sink = new MemoryCallSink();
  let engine: Engine | undefined;
  let outcome = "";
  const seeGate = (s: RunSummary) => {
    const g = gateOf(s);
    if (g && (gates.length === 0 || gates.at(-1) !== g || s.pending?.interrupt !== lastInterrupt)) gates.push(g);
    lastInterrupt = s.pending?.interrupt ?? null;
  };
  let lastInterrupt: string | null = null;
  try {
    engine = await Engine.open({ env, cwd: home });
    const planned = await planRequest(sc.request, engine.config.config, {}, { planner, sink, announceRules: false });
    const plan = planOnly(planned);
    if (sc.expect.plan && !isDeepStrictEqual(plan, sc.expect.plan)) problems.push(`plan ${JSON.stringify(plan)}, expected ${JSON.stringify(sc.expect.plan)}`);
    if (!isPlan(plan)) {
      outcome = isClarify(plan) ? "clarify" : "refused";
      const message = isClarify(plan) ? plan.clarify : plan.refuse;
      if (sc.expect.message && !new RegExp(sc.expect.message, "i").test(message)) problems.push(`message ${JSON.stringify(message)} does not match /${sc.expect.message}/`);
    } else {
      let s: RunSummary;
      try {
        s = await engine.start(plan, sc.requestedBy, sc.request);
      } catch (e) {
        if (!(e instanceof AgentError) || e.code !== "bad-input") throw e;
        outcome = "refused";
        if (sc.expect.message && !new RegExp(sc.expect.message, "i").test(e.message)) problems.push(`refusal ${JSON.stringify(e.message)} does not match /${sc.expect.message}/`);
        return await finish();
      }
      seeGate(s);
      for (const [i, a] of sc.script.entries()) {
        const where = `script[${i}] ${a.do}`;
        if (a.do === "approve" || a.do === "reject") {
          if (a.at && gateOf(s) !== a.at) problems.push(`${where}: expected gate ${a.at}, found ${gateOf(s) ?? "none"}`);
          try {
            s = await engine.decide(s.run, a.as, a.do, { planHash: s.pending?.planHash });
            if (a.refused) problems.push(`${where}: expected a refusal matching /${a.refused}/, but it was accepted`);
          } catch (e) {
            if (!a.refused) problems.push(`${where}: ${errorText(e)}`);
            else if (!new RegExp(a.refused, "i").test(errorText(e))) problems.push(`${where}: refusal ${JSON.stringify(errorText(e))} does not match /${a.refused}/`);
          }
        } else if (a.do === "approve-all") {
          for (let n = 0; s.pending && n < 20; n++) {
            s = await engine.decide(s.run, a.as, "approve", { planHash: s.pending.planHash });
            seeGate(s);
          }
        } else if (a.do === "say") {
          const modelEnv = opts.modelEnv;
          const reply = await converse(engine, { run: s.run, user: a.as, groups: a.groups, text: a.text }, modelEnv ? { env: { ...env, ...modelEnv }, sink } : { env, model: { offline: true } });
          // A model words its answers its own way and may look at more than asked: with a model, only the controls
          // it ran are compared; what the run did (gates, decisions, outcome) is compared either way.
          const byRules = reply.answeredBy === "rules";
          if (byRules && a.reply && !new RegExp(a.reply, "i").test(reply.text)) problems.push(`${where} ${JSON.stringify(a.text)}: reply ${JSON.stringify(reply.text)} does not match /${a.reply}/`);
          const ran = reply.actions.filter((x) => x.ok && (byRules || x.kind === "control")).map((x) => x.tool);
          const expected = a.actions?.filter((t) => byRules || CONTROL_TOOLS.includes(t as ToolName));
          if (expected && JSON.stringify(ran) !== JSON.stringify(expected)) problems.push(`${where}: ran ${JSON.stringify(ran)}, expected ${JSON.stringify(expected)}`);
          s = await engine.summary(s.run);
        }
        seeGate(s);
      }
      outcome = s.status;
      const tr = await engine.transcript(s.run);
      decisions.push(...tr.decisions.map((d) => `${d.step}:${d.decision}:${d.by}`));
    }
  } catch (e) {
    problems.push(`error: ${errorText(e)}`);
  }
  return finish();

  async function finish(): Promise<ScenarioResult> {
    await engine?.close();
    engine = undefined;
    rmSync(home, { recursive: true, force: true });
    if (outcome !== sc.expect.outcome) problems.push(`outcome ${outcome || "(none)"}, expected ${sc.expect.outcome}`);
    if (JSON.stringify(gates) !== JSON.stringify(sc.expect.gates)) problems.push(`gates ${JSON.stringify(gates)}, expected ${JSON.stringify(sc.expect.gates)}`);
    if (JSON.stringify(decisions) !== JSON.stringify(sc.expect.decisions)) problems.push(`decisions ${JSON.stringify(decisions)}, expected ${JSON.stringify(sc.expect.decisions)}`);
    return {
      name: sc.name, passed: problems.length === 0, outcome, gates, decisions: [...decisions], problems,
      modelCalls: sink.records.length, tokens: sink.records.reduce((a, r) => a + (r.totalTokens ?? 0), 0),
    };
  }
}
