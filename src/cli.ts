import { requestTooLong } from "./core/text.js";
import { createInterface } from "node:readline";
import { userInfo } from "node:os";
import { Command, Option } from "commander";
import type { Engine, RunSummary } from "./engine.js";
import { AgentError, EXIT, exitCodeFor } from "./core/errors.js";
import type { Plan, PlanResult } from "./planner/plan.js";

/**
 * What the commands run on, imported when a command needs it: `--help` and `doctor` start without LangGraph, the
 * workflows, the model client or the cloud SDKs (start-up time: `npm run bench:startup`).
 */
const load = async () => {
  const [engine, gates, conversation, registry, planner, offline, plan, render, revert] = await Promise.all([
    import("./engine.js"),
    import("./graph/gates.js"),
    import("./conversation/index.js"),
    import("./graph/workflows/registry.js"),
    import("./planner/index.js"),
    import("./planner/offline.js"),
    import("./planner/plan.js"),
    import("./render.js"),
    import("./graph/revert/render.js"),
  ]);
  return {
    Engine: engine.Engine,
    mayDecide: gates.mayDecide,
    converse: conversation.converse,
    matchIntent: conversation.matchIntent,
    workflowModule: registry.workflowModule,
    SqlCallLog: planner.SqlCallLog,
    modelSettings: planner.modelSettings,
    planOnly: planner.planOnly,
    planRequest: planner.planRequest,
    planOffline: offline.planOffline,
    isClarify: plan.isClarify,
    isPlan: plan.isPlan,
    TerminalEvents: render.TerminalEvents,
    renderGate: render.renderGate,
    renderPlan: render.renderPlan,
    renderSummary: render.renderSummary,
    renderTranscript: render.renderTranscript,
    renderRevertPlan: revert.renderRevertPlan,
    revertPlanJson: revert.revertPlanJson,
  };
};
let loading: ReturnType<typeof load> | undefined;
const lazy = (): ReturnType<typeof load> => (loading ??= load());

/** Who is at the terminal: HONUA_AGENT_USER, else the login name ($USER, $LOGNAME, then the account the process runs as). */
const defaultUser = (): string => {
  const named = process.env.HONUA_AGENT_USER || process.env.USER || process.env.LOGNAME;
  if (named) return named;
  try {
    return userInfo().username || "unknown";
  } catch {
    return "unknown"; // no passwd entry for this uid (some containers)
  }
};

/** DESIGN.md's `--json` shape for run/approve/reject/resume. */
const summaryJson = (s: RunSummary) => ({
  run: s.run,
  workflow: s.workflow,
  deployment: s.deployment,
  status: s.status,
  pending: s.pending ? { step: s.pending.step, kind: s.pending.kind, interrupt: s.pending.interrupt, planHash: s.pending.planHash } : null,
});

const exitFor = (s: RunSummary): number =>
  s.status === "done" ? EXIT.done : s.status === "waiting" || s.status === "paused" || s.status === "running" || s.status === "interrupted" ? EXIT.waiting : EXIT.failed;

const exitForPlan = async (r: PlanResult): Promise<number> => {
  const { isPlan, isClarify } = await lazy();
  return isPlan(r) ? EXIT.done : isClarify(r) ? (r.unknownDeployment ? EXIT.badInput : EXIT.clarify) : EXIT.badInput;
};

function say(json: boolean, human: string, value: unknown): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human}\n`);
}

async function withEngine(json: boolean, fn: (engine: Engine) => Promise<number>): Promise<never> {
  let engine: Engine | undefined;
  let code: number;
  const { Engine, TerminalEvents } = await lazy();
  const terminal = new TerminalEvents((s) => process.stderr.write(s), process.stderr.isTTY === true);
  try {
    engine = await Engine.open({
      onEvent: (e) => {
        if (!json) terminal.event(e);
      },
    });
    code = await fn(engine);
    terminal.end();
  } catch (e) {
    terminal.end();
    code = exitCodeFor(e);
    const message = e instanceof Error ? e.message : String(e);
    if (json) process.stdout.write(`${JSON.stringify({ error: message, code: e instanceof AgentError ? e.code : "internal" })}\n`);
    process.stderr.write(`honua-agent: ${message}\n`);
  } finally {
    await engine?.close();
  }
  process.exit(code);
}

async function showSummary(s: RunSummary, json: boolean): Promise<number> {
  const { renderSummary, renderGate } = await lazy();
  say(json, [renderSummary(s), s.pending ? renderGate(s.pending) : "", s.pending ? `decide: honua-agent approve ${s.run} | honua-agent reject ${s.run}` : ""].filter(Boolean).join("\n"), summaryJson(s));
  return exitFor(s);
}

/**
 * The plan checked against the deployment as it is: already in place (printed with its evidence, exit 0, nothing
 * starts), not possible as asked (exit 2), or the plan with notes on what it means for what is there.
 */
async function preflighted(engine: Engine, plan: Plan, json: boolean, print: boolean): Promise<number | null> {
  const { renderPlan } = await lazy();
  const pre = await engine.preflight(plan);
  if (pre.inPlace) {
    say(json, `Already in place: ${pre.inPlace.summary}\n${pre.inPlace.evidence.map((e) => `  - ${e}`).join("\n")}\nNothing to do; nothing was started.`, { workflow: plan.workflow, deployment: plan.deployment, inPlace: pre.inPlace.summary, evidence: pre.inPlace.evidence });
    return EXIT.done;
  }
  if (pre.refuse) {
    say(json, `Refused: ${pre.refuse}`, { refuse: pre.refuse });
    return EXIT.badInput;
  }
  if (print) say(json, [renderPlan(plan, engine.workflow(plan.workflow)), ...pre.notes.map((n) => `note: ${n}`)].join("\n"), { ...plan, ...(pre.notes.length ? { notes: pre.notes } : {}) });
  else if (!json) process.stderr.write(`${[renderPlan(plan, engine.workflow(plan.workflow)), ...pre.notes.map((n) => `note: ${n}`)].join("\n")}\n`);
  return null;
}

async function runRequest(engine: Engine, request: string, user: string, json: boolean): Promise<number> {
  const { SqlCallLog, planRequest, planOnly, isPlan, isClarify } = await lazy();
  const log = await SqlCallLog.open(engine.store.sql);
  const made = await planRequest(request, engine.config.config, process.env, { sink: log });
  if (made.notice) process.stderr.write(`honua-agent: ${made.notice}\n`);
  const planned = planOnly(made);
  if (!isPlan(planned)) {
    say(json, isClarify(planned) ? planned.clarify : `Refused: ${planned.refuse}`, planned);
    return exitForPlan(planned);
  }
  const stop = await preflighted(engine, planned, json, false);
  if (stop !== null) return stop;
  const s = await engine.start(planned, user, request);
  await log.attach(made.calls.map((c) => c.id), s.run);
  return showSummary(s, json);
}

const CHAT_HELP = [
  "Ask for a change in words: \"add redis caching to prod\", \"add a GIST index on features.geom in staging\".",
  "Commands: runs · status [RUN] · approve [RUN] · reject [RUN] · resume RUN · revert [RUN] · transcript RUN · help · quit.",
  "About the current run (the one you started or attached last): \"why did it pause?\", \"what's the hit rate now?\", \"roll it back\".",
  "At a gate: approve, reject, later (leave it waiting), or ask a question about it: the gate is asked again.",
].join("\n");

/** The terminal conversation: requests in, plans and progress out, approvals asked inline. */
async function chat(engine: Engine, user: string): Promise<number> {
  const { mayDecide, converse, matchIntent, workflowModule, SqlCallLog, modelSettings, planOnly, planRequest, planOffline, isClarify, isPlan, renderGate, renderPlan, renderSummary, renderTranscript } =
    await lazy();
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const lines = rl[Symbol.asyncIterator]();
  /** Whether the chat waits for a line (else it is driving a run); Ctrl-C presses since the last line. */
  let reading = false;
  let interrupts = 0;
  const ask = async (prompt: string): Promise<string | null> => {
    process.stdout.write(prompt);
    reading = true;
    const r = await lines.next();
    reading = false;
    interrupts = 0;
    return r.done ? null : String(r.value).trim();
  };
  const out = (text: string) => process.stdout.write(`${text}\n`);
  const cfg = engine.config.config;
  out(
    `honua-agent — deployments: ${Object.entries(cfg.deployments).map(([n, d]) => `${n}${d.aliases.length ? ` (${d.aliases.join(", ")})` : ""} [${d.provider}]`).join(", ")}\n` +
      `config: ${engine.config.source} · you are ${user} · ${modelSettings(process.env) ? `model ${modelSettings(process.env)?.model}` : "answers are rule-based (no model configured)"}\n` +
      `Try: "add redis caching to prod". Type help for commands.`,
  );
  // What waits from before: a gate nobody decided, a run no process drives. Named on start, attached on request.
  const open = (await engine.runs()).filter((r) => r.status === "waiting" || r.status === "paused" || r.status === "interrupted" || r.status === "running");
  for (const r of open) out(`waiting from before: ${r.run} ${r.workflow} on ${r.deployment} (${r.status}, requested by ${r.requestedBy}) — type "status ${r.run}" to attach`);
  const log = await SqlCallLog.open(engine.store.sql);
  /** The run this session started or attached last: thread-style questions and controls are about it. */
  let current: string | undefined;
  /** Who decides in this chat when the user may not: asked once, then kept. */
  let approver: string | undefined;
  /** A clarifying question asked of the last request: the next line may be its answer. */
  let clarifying: string | undefined;
  // Ctrl-C once while a run is driven: it stops at the next safe point (a side effect in flight finishes and is
  // recorded; a watch window is left, its start kept) and its pause gate is asked here. Twice: exit at once, and
  // the run resumes as after a crash. A terminal's Ctrl-C reaches readline; a piped one arrives as a signal.
  const onInterrupt = () => {
    interrupts++;
    if (interrupts >= 2) {
      out(`\nExiting now.${current ? ` Run ${current} continues where it stopped, as after a crash: type "status ${current}" in a new chat, or npx honua-agent resume ${current}` : ""}`);
      process.exit(130);
    }
    if (reading || !current) {
      out(`\n(Ctrl-C again, or "quit", to leave)`);
      return;
    }
    const run = current;
    out(`\nStopping ${run} at the next safe point: a step in flight finishes and is recorded, a watch window is left and its start kept. Ctrl-C again exits at once.`);
    void engine.pause(run, approver ?? user, "Ctrl-C in the chat").catch((e: unknown) => out(`Could not pause ${run}: ${e instanceof Error ? e.message : String(e)}`));
  };
  rl.on("SIGINT", onInterrupt);
  process.on("SIGINT", onInterrupt);
  const decideLater = (run: string) => `Left waiting. Decide later: type "approve ${run}" here, or npx honua-agent approve ${run} --as ${user} (or reject)`;

  /** Asks the open gate until it is decided or left; questions are answered and the gate asked again. */
  const atGate = async (first: RunSummary): Promise<RunSummary> => {
    let s = first;
    current = s.run;
    let shown = "";
    while (s.pending) {
      if (shown !== s.pending.interrupt) out(renderGate(s.pending));
      shown = s.pending.interrupt;
      const answer = (await ask(`[${s.run} ${s.pending.step}] approve / reject / later? `)) ?? "later";
      if (/^(later|l|)$/i.test(answer)) {
        out(decideLater(s.run));
        break;
      }
      if (/^(help|\?)$/i.test(answer)) {
        out(CHAT_HELP);
        continue;
      }
      if (!/^(a|approve|y|yes|r|reject|n|no)$/i.test(answer)) {
        if (requestTooLong(answer)) {
          out(`I didn't read that: ${requestTooLong(answer)}.`);
          continue;
        }
        // A new change while this one waits: the deployment stays with this run until it is decided.
        if (isPlan(planOffline(answer, cfg))) {
          out(`Run ${s.run} (${s.workflow} on ${s.deployment}) is waiting for this decision. Answer it, or "later" to leave it waiting and then ask for the new change.`);
          continue;
        }
        out((await converse(engine, { run: s.run, user, groups: [], text: answer })).text);
        s = await engine.summary(s.run);
        continue;
      }
      const decision = /^(a|approve|y|yes)$/i.test(answer) ? "approve" : "reject";
      let by = approver ?? user;
      const policy = mayDecide(cfg, s.deployment, { kind: s.pending.kind, requestedBy: s.pending.gate.requestedBy }, by, decision);
      if (!policy.ok) {
        out(policy.reason);
        const named = (await ask(`${decision} as (approver name, empty to leave it waiting): `)) ?? "";
        if (!named) {
          out(decideLater(s.run));
          break;
        }
        by = named;
        approver = named;
      }
      try {
        s = await engine.decide(s.run, by, decision, { planHash: s.pending.planHash });
      } catch (e) {
        out(e instanceof Error ? e.message : String(e));
        s = await engine.summary(s.run);
      }
    }
    out(renderSummary(s));
    if (s.status === "done") {
      const tr = await engine.transcript(s.run);
      const report = workflowModule(tr.workflow)?.facets?.report?.(tr.steps) ?? null;
      if (report) out(report);
    }
    return s;
  };

  for (;;) {
    const line = await ask("honua> ");
    if (line === null || line === "quit" || line === "exit") break;
    if (!line) continue;
    const tooLong = requestTooLong(line);
    if (tooLong) {
      out(`I didn't read that: ${tooLong}.`);
      continue;
    }
    try {
      if (/^(help|\?)$/i.test(line)) {
        out(CHAT_HELP);
        continue;
      }
      if (line === "runs") {
        for (const r of await engine.runs()) out(`${r.run}  ${r.workflow}  ${r.deployment}  ${r.status}  ${r.requestedBy}  ${r.startedAt}`);
        continue;
      }
      const t = /^transcript\s+(\S+)$/.exec(line);
      if (t) {
        out(renderTranscript(await engine.transcript(t[1]!)));
        continue;
      }
      // "revert it" / "revert run X": a new run that undoes a finished one, its gates asked here like any run's.
      const rv = /^(?:please\s+)?revert(?:\s+(?:it|this|that|the change|(?:run\s+)?(run-[0-9a-z-]+)))?[.!]?$/i.exec(line);
      if (rv) {
        const target = rv[1]?.toLowerCase() ?? current;
        if (!target) {
          out('Which run? Type "revert RUN" (runs lists them).');
          continue;
        }
        const { renderRevertPlan } = await lazy();
        out(renderRevertPlan(await engine.revertPlan(target, user)));
        await atGate(await engine.revert(target, user));
        continue;
      }
      // Run commands typed in the chat: on the run named, else the current one.
      const cmd = /^(status|approve|reject|resume|attach)(?:\s+(\S+))?$/i.exec(line);
      if (cmd) {
        const run = cmd[2] ?? current;
        if (!run) {
          out(`Which run? Type "${cmd[1]!.toLowerCase()} RUN" (runs lists them).`);
          continue;
        }
        const verb = cmd[1]!.toLowerCase();
        let s = verb === "resume" ? await engine.resume(run) : await engine.summary(run);
        current = s.run;
        if (verb === "status" || verb === "attach") {
          if (s.status === "interrupted" || s.status === "running") s = await engine.resume(run); // attached: continued
          if (!s.pending) out(renderSummary(s));
        }
        if (s.pending) {
          if (verb === "approve" || verb === "reject") {
            const policy = mayDecide(cfg, s.deployment, { kind: s.pending.kind, requestedBy: s.pending.gate.requestedBy }, approver ?? user, verb);
            if (policy.ok) s = await engine.decide(s.run, approver ?? user, verb, { planHash: s.pending.planHash });
            else out(policy.reason);
          }
          await atGate(s);
        } else if (verb === "approve" || verb === "reject" || verb === "resume") out(renderSummary(s));
        continue;
      }
      // The answer to a clarifying question: read together with the request it answers.
      let request = line;
      if (clarifying && !isPlan(planOffline(line, cfg))) {
        const joined = `${clarifying} ${line}`;
        const r = planOffline(joined, cfg);
        if (isPlan(r) || isClarify(r)) request = joined;
      }
      // A line that is not a new change (the rules say so without a model call) is about the current run.
      if (request === line && current && matchIntent(line).kind !== "help" && !isPlan(planOffline(line, cfg))) {
        out((await converse(engine, { run: current, user, groups: [], text: line })).text);
        continue;
      }
      clarifying = undefined;
      // The header already said whether answers are rule-based; only a fallback is worth a line here.
      const made = await planRequest(request, cfg, process.env, { sink: log, announceRules: false });
      if (made.notice) out(`(${made.notice})`);
      const planned = planOnly(made);
      if (!isPlan(planned)) {
        if (isClarify(planned)) clarifying = request;
        out(isClarify(planned) ? planned.clarify : `I can't do that: ${planned.refuse}`);
        continue;
      }
      const pre = await engine.preflight(planned);
      if (pre.inPlace) {
        out(`Already in place: ${pre.inPlace.summary}\n${pre.inPlace.evidence.map((e) => `  - ${e}`).join("\n")}\nNothing to do.`);
        continue;
      }
      if (pre.refuse) {
        out(`I can't do that here: ${pre.refuse}`);
        continue;
      }
      out([renderPlan(planned, engine.workflow(planned.workflow)), ...pre.notes.map((n) => `note: ${n}`)].join("\n"));
      const s = await engine.start(planned, user, request);
      await log.attach(made.calls.map((c) => c.id), s.run);
      await atGate(s);
    } catch (e) {
      out(e instanceof Error ? e.message : String(e));
    }
  }
  process.off("SIGINT", onInterrupt);
  rl.close();
  return EXIT.done;
}

const program = new Command("honua-agent")
  .description("Gated, checkpointed, in-place modifications to running Honua deployments")
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT.badInput));

const asOpt = () => new Option("--as <user>", "identity on the command line").default(defaultUser(), "$USER");

program
  .command("chat", { isDefault: true })
  .description("the conversation in the terminal; approvals asked inline (default when Slack is not configured)")
  .addOption(asOpt())
  .action(async (o: { as: string }) => {
    if (process.env.SLACK_BOT_TOKEN && process.argv.length <= 2) await (await import("./slack/serve.js")).serveCommand();
    await withEngine(false, (e) => chat(e, o.as));
  });

program
  .command("plan <request>")
  .description("request -> typed plan, no side effects")
  .option("--json", "print JSON")
  .action(async (request: string, o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const { planRequest, SqlCallLog, planOnly, isPlan, isClarify } = await lazy();
      const made = await planRequest(request, e.config.config, process.env, { sink: await SqlCallLog.open(e.store.sql) });
      if (made.notice) process.stderr.write(`honua-agent: ${made.notice}\n`);
      const r = planOnly(made);
      if (isPlan(r)) return (await preflighted(e, r, !!o.json, true)) ?? EXIT.done;
      say(!!o.json, isClarify(r) ? r.clarify : `Refused: ${r.refuse}`, r);
      return exitForPlan(r);
    });
  });

program
  .command("run <request>")
  .description("plan and start; runs to the first gate or the end")
  .addOption(asOpt())
  .option("--json", "print JSON")
  .action(async (request: string, o: { as: string; json?: boolean }) => {
    await withEngine(!!o.json, (e) => runRequest(e, request, o.as, !!o.json));
  });

for (const decision of ["approve", "reject"] as const) {
  program
    .command(`${decision} <run>`)
    .description(`${decision} the gate the run is waiting at`)
    .addOption(asOpt())
    .option("--comment <text>", "recorded with the decision")
    .option("--plan-hash <hash>", "the plan hash you were shown; refused if the gate changed since")
    .option("--json", "print JSON")
    .action(async (run: string, o: { as: string; comment?: string; planHash?: string; json?: boolean }) => {
      await withEngine(!!o.json, async (e) => showSummary(await e.decide(run, o.as, decision, { comment: o.comment, planHash: o.planHash }), !!o.json));
    });
}

program
  .command("revert <run>")
  .description("undo a finished run from its journal: prints what goes back; with --yes starts a new run that does it, behind the same gates")
  .addOption(asOpt())
  .option("--yes", "start the revert (without it nothing starts)")
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; yes?: boolean; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const { renderRevertPlan, revertPlanJson } = await lazy();
      const plan = await e.revertPlan(run, o.as);
      if (!o.yes) {
        say(!!o.json, `${renderRevertPlan(plan)}\nNothing started. Start it with: honua-agent revert ${run} --yes`, { ...revertPlanJson(plan), started: false });
        return EXIT.done;
      }
      if (!o.json) process.stderr.write(`${renderRevertPlan(plan)}\n`);
      return showSummary(await e.revert(run, o.as), !!o.json);
    });
  });

program
  .command("pause <run>")
  .description("hold the run before its next step (requester or approver); `unpause` continues it")
  .addOption(asOpt())
  .option("--reason <text>", "recorded and shown")
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; reason?: string; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.pause(run, o.as, o.reason ?? ""), !!o.json));
  });

program
  .command("unpause <run>")
  .description("continue a paused run (every later gate is still asked)")
  .addOption(asOpt())
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.unpause(run, o.as), !!o.json));
  });

program
  .command("cancel <run>")
  .description("cancel a run and restore what it changed (requester or approver)")
  .addOption(asOpt())
  .option("--reason <text>", "recorded and shown")
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; reason?: string; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.cancel(run, o.as, o.reason ?? ""), !!o.json));
  });

program
  .command("rollback <run>")
  .description("roll back now (approver), or ask the approvers to (anyone else)")
  .addOption(asOpt())
  .option("--reason <text>", "recorded and shown", "")
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; reason: string; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const r = await e.requestRollback(run, o.as, o.reason);
      if (!o.json) process.stderr.write(`${r.message}\n`);
      return showSummary(r.summary, !!o.json);
    });
  });

program
  .command("request-again <run>")
  .description("re-open an expired approval request with a fresh expiry")
  .addOption(asOpt())
  .option("--json", "print JSON")
  .action(async (run: string, o: { as: string; json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.requestAgain(run, o.as), !!o.json));
  });

program
  .command("resume <run>")
  .description("continue a run after a crash or restart, from its last checkpoint")
  .option("--json", "print JSON")
  .action(async (run: string, o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.resume(run), !!o.json));
  });

program
  .command("status <run>")
  .description("where a run stands")
  .option("--json", "print JSON")
  .action(async (run: string, o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => showSummary(await e.summary(run), !!o.json));
  });

program
  .command("runs")
  .description("all runs, newest first")
  .option("--json", "print JSON")
  .action(async (o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const runs = await e.runs();
      say(!!o.json, runs.map((r) => `${r.run}  ${r.workflow}  ${r.deployment}  ${r.status}  ${r.requestedBy}  ${r.startedAt}`).join("\n") || "no runs", runs);
      return EXIT.done;
    });
  });

program
  .command("transcript <run>")
  .description("the checkpointed transcript of a run")
  .option("--json", "print JSON")
  .option("--markdown", "print Markdown (default)")
  .action(async (run: string, o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const { renderTranscript } = await lazy();
      const t = await e.transcript(run);
      say(!!o.json, renderTranscript(t), t);
      return EXIT.done;
    });
  });

program
  .command("doctor")
  .description("the state of every store file and deployment lock; --release frees a lock whose run is provably dead")
  .option("--release <deployment>", "free this deployment's lock when its run ended or never started (recorded)")
  .option("--as <user>", "who releases it (recorded)")
  .option("--json", "print JSON")
  .action(async (o: { release?: string; as?: string; json?: boolean }) => {
    let code: number;
    try {
      const { doctor, renderDoctor } = await import("./doctor.js");
      if (o.release && !o.as) throw new AgentError("bad-input", "--release needs --as <user>: who released the lock is recorded");
      const r = await doctor(process.env, process.cwd(), o.release ? { deployment: o.release, by: o.as!, at: new Date().toISOString() } : undefined);
      say(!!o.json, renderDoctor(r), r);
      code = r.healthy ? EXIT.done : EXIT.badInput;
    } catch (e) {
      code = exitCodeFor(e);
      process.stderr.write(`honua-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    process.exit(code);
  });

/** `audit verify`: a chain that does not verify (the only command that exits 1). */
const CHAIN_BROKEN = 1;

const audit = program.command("audit").description("the tamper-evident audit chain of decisions, controls, side effects and operator actions");

audit
  .command("verify [deployment]")
  .description("check each deployment's chain (or one): exit 0 when every chain verifies, 1 naming the first broken entry")
  .option("--json", "print JSON")
  .action(async (deployment: string | undefined, o: { json?: boolean }) => {
    let code: number;
    try {
      const [{ auditVerify }, { renderVerify }] = await Promise.all([import("./audit.js"), import("./store/audit.js")]);
      const r = await auditVerify(process.env, process.cwd(), deployment);
      say(!!o.json, r.checks.length ? renderVerify(r.checks) : "no audit entries yet", r.checks);
      code = r.ok ? EXIT.done : CHAIN_BROKEN;
    } catch (e) {
      code = exitCodeFor(e);
      process.stderr.write(`honua-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    process.exit(code);
  });

audit
  .command("export [deployment]")
  .description("write the chain (or one deployment's) as JSONL, one entry a line, in order")
  .option("--out <file>", "write to this new file instead of stdout")
  .action(async (deployment: string | undefined, o: { out?: string }) => {
    let code: number;
    try {
      const { auditExport } = await import("./audit.js");
      const r = await auditExport(process.env, process.cwd(), deployment, o.out);
      if (o.out === undefined) process.stdout.write(r.jsonl);
      else process.stderr.write(`wrote ${r.entries.length} entries to ${o.out}\n`);
      code = EXIT.done;
    } catch (e) {
      code = exitCodeFor(e);
      process.stderr.write(`honua-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    process.exit(code);
  });

program
  .command("sandbox")
  .description("the built-in simulated deployments")
  .command("reset [deployment]")
  .description("put the simulated deployments (or one) back to their initial state; refused while a run holds one")
  .option("--json", "print JSON")
  .action(async (deployment: string | undefined, o: { json?: boolean }) => {
    await withEngine(!!o.json, async (e) => {
      const done = await e.resetSandbox(deployment);
      say(!!o.json, done.length ? done.map((d) => `${d.deployment}: reset (${d.rows} ${d.rows === 1 ? "row" : "rows"} removed)`).join("\n") : "no sandbox deployments to reset", done);
      return EXIT.done;
    });
  });

program
  .command("dev")
  .description("development helpers")
  .command("origin")
  .description("a Honua stand-in for a local trial (docs/local.md): tiles with ~30 ms of work each, Redis when its env file turns caching on, /metrics when HONUA_OBSERVABILITY=true, /healthz/ready; runs until Ctrl-C")
  .requiredOption("--env <file>", "the Honua env file it reads (the one the deployment's config section edits)")
  .option("--port <n>", "port on 127.0.0.1", "5000")
  .option("--name <name>", "instance name (X-Honua-Instance)", "honua-1")
  .option("--work-ms <n>", "work per uncached tile, ms", "30")
  .action(async (o: { env: string; port: string; name: string; workMs: string }) => {
    const port = Number(o.port);
    const workMs = Number(o.workMs);
    const bad = !Number.isInteger(port) || port < 0 || port > 65535 ? `--port ${o.port} is not a port` : !Number.isFinite(workMs) || workMs < 0 ? `--work-ms ${o.workMs} is not a number of ms` : null;
    if (bad) {
      process.stderr.write(`honua-agent: ${bad}\n`);
      process.exit(EXIT.badInput);
    }
    const { existsSync } = await import("node:fs");
    if (!existsSync(o.env)) {
      process.stderr.write(`honua-agent: ${o.env} does not exist: create the Honua env file first (docs/local.md, "Trying it on one machine"), e.g. an empty one: touch ${o.env}\n`);
      process.exit(EXIT.badInput);
    }
    const { startOrigin } = await import("./dev/origin.js");
    let origin: Awaited<ReturnType<typeof startOrigin>>;
    try {
      origin = await startOrigin({ name: o.name, envFile: o.env, workMs, port });
    } catch (e) {
      process.stderr.write(`honua-agent: the stand-in did not start on 127.0.0.1:${port}: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(EXIT.failed);
    }
    process.stdout.write(`Honua stand-in ${o.name} on ${origin.url} (tiles: ${origin.url}/ogc/tiles/collections/{c}/tiles/WebMercatorQuad/{z}/{row}/{col}, /metrics, /healthz/ready), reading ${o.env}; Ctrl-C stops it\n`);
    process.on("SIGHUP", () => origin.reload());
    const stop = async () => {
      await origin.close();
      process.exit(EXIT.done);
    };
    process.once("SIGINT", () => void stop());
    process.once("SIGTERM", () => void stop());
  });

program
  .command("evals")
  .description("request and scenario evals: the offline planner always, the model too when one is configured; fails under 95%")
  .option("--json", "print JSON")
  .option("--offline", "only the offline planner, even with a model configured")
  .action(async (o: { json?: boolean; offline?: boolean }) => {
    const { runEvals, renderEvals } = await import("./evals/index.js");
    const runs = await runEvals({ offlineOnly: !!o.offline });
    process.stdout.write(o.json ? `${JSON.stringify(runs)}\n` : `${renderEvals(runs)}\n`);
    process.exit(runs.every((r) => r.passed) ? EXIT.done : EXIT.failed);
  });

program
  .command("web")
  .description("a read-only transcript viewer in the browser: the runs list and each run's page (docs/web.md)")
  .option("--host <host>", "address to bind; anything but loopback needs HONUA_WEB_SECRET or HONUA_WEB_TOKEN", "127.0.0.1")
  .option("--port <n>", "port", "8088")
  .action(async (o: { host: string; port: string }) => {
    const port = Number(o.port);
    if (!/^\d+$/.test(o.port) || port > 65535) {
      process.stderr.write(`honua-agent: --port ${o.port} is not a port (0-65535)\n`);
      process.exit(EXIT.badInput);
    }
    let web: Awaited<ReturnType<typeof import("./web/server.js").startWeb>>;
    try {
      web = await (await import("./web/server.js")).startWeb({ host: o.host, port });
    } catch (e) {
      process.stderr.write(`honua-agent: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(exitCodeFor(e));
    }
    const how = web.settings.token || web.settings.secret ? `every page needs ${[web.settings.secret ? "a signed link" : "", web.settings.token ? "the bearer token" : ""].filter(Boolean).join(" or ")}` : "open to this machine only";
    process.stdout.write(`honua-agent web: ${web.url}/ (read-only; ${how}); Ctrl-C stops it\n`);
    const stop = async () => {
      await web.close();
      process.exit(EXIT.done);
    };
    process.once("SIGINT", () => void stop());
    process.once("SIGTERM", () => void stop());
  });

program
  .command("serve")
  .description("Slack front: Socket Mode when SLACK_APP_TOKEN is set, else HTTP /slack/events on PORT; /healthz, /metrics")
  .action(async () => {
    await (await import("./slack/serve.js")).serveCommand();
  });

await program.parseAsync(process.argv);
