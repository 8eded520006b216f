import { AsyncLocalStorage } from "node:async_hooks";
import type { webApi } from "@slack/bolt";
import type { Engine, Pending, RunSummary, Transcript } from "../engine.js";
import type { RunEvent } from "../graph/events.js";
import { TERMINAL, type RunStatus } from "../core/records.js";
import { renderTranscript } from "../render.js";
import type { ApproverDirectory } from "./approvers.js";
import {
  buildApprovalCard, buildDecidedCard, buildError, buildExpiredCard, buildExpiryNotice, buildExpiryWarning, buildNotice,
  buildPlanMessage, buildProgressMessage, buildReportMessage, buildRollbackAlert, mentionList, progressLines, who,
  type CardView, type SlackMessage,
} from "./blocks.js";
import { renderChartPng } from "../core/chart.js";
import { clip } from "./limits.js";
import type { SlackMetrics } from "./metrics.js";
import type { CardRef, SlackStore, ThreadRef } from "./store.js";
import type { Tasks } from "./tasks.js";
import { workflowModule } from "../graph/workflows/registry.js";
import type { Progress } from "../core/progress.js";

type WebClient = webApi.WebClient;

/** The thread a request is being started from; bound to the run id by the run's first event. */
export interface StartingThread {
  channel: string;
  threadTs: string;
  planTs: string | null;
  progressTs: string | null;
  run?: string;
}

const starting = new AsyncLocalStorage<StartingThread>();

/** Kinds of pending interrupt that are approval requests (a pause is not: it has no card). */
const isApproval = (p: Pending | null): p is Pending => !!p && p.kind !== "paused";
const isTerminal = (s: RunStatus): boolean => TERMINAL.includes(s);

export interface NotifierOptions {
  client: WebClient;
  engine: Engine;
  store: SlackStore;
  directory: ApproverDirectory;
  tasks: Tasks;
  metrics: SlackMetrics;
  now: () => Date;
  /** Minimum time between two edits of a progress message (Slack rate-limits chat.update). */
  progressIntervalMs: number;
  /** A (signed) link to the run's page in the transcript viewer; absent or null when no viewer URL is configured. */
  viewerLink?: (run: string) => string | null;
}

/** Slack's mrkdwn escaping (a link's URL included): `&`, `<` and `>`. */
const slackEscape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The report with a link to the run's page in the viewer below it. */
function withViewerLink(msg: SlackMessage, link: string): SlackMessage {
  return {
    text: `${msg.text}\nTranscript viewer: ${link}`,
    blocks: [...msg.blocks, { type: "section", text: { type: "mrkdwn", text: `:mag: <${slackEscape(link)}|Open this run in the transcript viewer> (timeline, gates as shown, evidence charts)` } }],
  };
}

/**
 * Everything the bot says in a run's thread. Engine events (live, from whichever request drives the run)
 * and settled summaries (after every engine call) both end up here; per run, Slack calls happen in order.
 * What must happen once (a card per gate, one report) is decided by the Slack store, not by memory.
 */
export class ThreadNotifier {
  private readonly threads = new Map<string, ThreadRef>();
  /** The step each run is running, with the last structured progress it reported (live events; never recorded). */
  private readonly running = new Map<string, { step: string; stage: number | null; progress: Progress | null }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly cardViews = new Map<string, CardView>();
  /** Runs whose plan message already shows the cost (the store decides who edits it; this only saves reads). */
  private readonly costed = new Set<string>();
  private closed = false;

  constructor(private readonly o: NotifierOptions) {}

  /** Runs `fn` (an engine.start) so that the run it creates is bound to this thread from its first event. */
  startingIn<T>(thread: StartingThread, fn: () => Promise<T>): Promise<T> {
    return starting.run(thread, fn);
  }

  /** Binds a run to its thread (idempotent); used after start returns, in case no event arrived. */
  async bind(run: string, t: StartingThread): Promise<ThreadRef> {
    const ref: ThreadRef = { run, channel: t.channel, threadTs: t.threadTs, planTs: t.planTs, progressTs: t.progressTs };
    if (!this.threads.has(run)) this.threads.set(run, ref);
    await this.o.store.bindThread(ref);
    return (await this.o.store.thread(run)) ?? ref;
  }

  async threadOf(run: string): Promise<ThreadRef | undefined> {
    const hit = this.threads.get(run);
    if (hit) return hit;
    const t = await this.o.store.thread(run);
    if (t) this.threads.set(run, t);
    return t;
  }

  /** The engine's event sink. Synchronous: it only records and queues. */
  onEvent(e: RunEvent): void {
    if (this.closed) return;
    const ctx = starting.getStore();
    if (ctx && !ctx.run && !this.threads.has(e.run)) {
      ctx.run = e.run;
      const ref = { run: e.run, channel: ctx.channel, threadTs: ctx.threadTs, planTs: ctx.planTs, progressTs: ctx.progressTs };
      this.threads.set(e.run, ref);
      void this.o.tasks.serial(e.run, () => this.o.store.bindThread(ref)).catch((err) => this.report(e.run, err));
    }
    switch (e.type) {
      case "step-start":
        this.running.set(e.run, { step: e.step, stage: e.stageValue, progress: null });
        this.scheduleProgress(e.run);
        break;
      case "progress": {
        // Batches report far faster than Slack lets a message be edited: the latest count replaces the last one and
        // the edit waits for the progress timer, so a copy of any size edits the one message at most once an interval.
        const r = this.running.get(e.run);
        if (e.progress && r && r.step === e.step) {
          r.progress = e.progress;
          this.scheduleProgress(e.run);
        }
        break;
      }
      case "step-end":
        this.running.delete(e.run);
        this.scheduleProgress(e.run);
        break;
      case "decision":
        if (e.decision === "approve" || e.decision === "reject") {
          // After the clicks already acked have been taken: a card edit can wait, the next run's decision should not.
          void this.o.tasks.serial(e.run, async () => {
            await this.o.tasks.quiet();
            await this.closeOpenCards(e.run);
          }).catch((err) => this.report(e.run, err));
        }
        break;
      case "rollback":
        void this.o.tasks.serial(e.run, () => this.announceRollback(e.run, e.reason, e.automatic)).catch((err) => this.report(e.run, err));
        break;
      case "finish":
        this.running.delete(e.run);
        break;
      default:
        break;
    }
  }

  /**
   * After an engine call returned: progress edited, the plan costed, a card for the gate the run waits at,
   * or the report when it ended. Safe to call any number of times.
   */
  settle(run: string, summary?: RunSummary): Promise<void> {
    return this.o.tasks.serial(run, async () => {
      const t = await this.threadOf(run);
      if (!t) return;
      const s = summary ?? (await this.o.engine.summary(run));
      await this.flushProgress(run, s);
      await this.costPlan(run, t);
      if (isApproval(s.pending)) await this.ensureCard(t, s.pending, s.deployment);
      if (isTerminal(s.status)) await this.postReport(t, s);
    });
  }

  // --------------------------------------------------------------------------------- progress

  private scheduleProgress(run: string): void {
    if (this.timers.has(run) || this.closed) return;
    const timer = setTimeout(() => {
      void this.o.tasks.serial(run, async () => {
        // Held while clicks are ahead; events meanwhile join this edit (the timer stays set until it is made).
        await this.o.tasks.quiet();
        if (this.timers.get(run) === timer) this.timers.delete(run);
        await this.flushProgress(run);
      }).catch((err) => this.report(run, err));
    }, this.o.progressIntervalMs);
    timer.unref();
    this.timers.set(run, timer);
  }

  private async flushProgress(run: string, summary?: RunSummary): Promise<void> {
    const pendingTimer = this.timers.get(run);
    if (pendingTimer) {
      clearTimeout(pendingTimer);
      this.timers.delete(run);
    }
    const t = await this.threadOf(run);
    if (!t) return;
    const s = summary ?? (await this.o.engine.summary(run));
    // Only the steps are drawn: read from the run's checkpoint, not the whole transcript (a summary, a ticket write,
    // evidence and model calls), which made every progress edit three times dearer.
    const steps = await this.stepsOf(run);
    const def = this.o.engine.workflow(s.workflow);
    const running = isTerminal(s.status) ? null : (this.running.get(run) ?? null);
    const waiting = s.pending ? { step: s.pending.step, stage: s.pending.gate.change.traffic?.to ?? null } : null;
    const msg = buildProgressMessage({
      run, workflow: s.workflow, deployment: s.deployment, status: s.status,
      lines: progressLines(def.steps, steps, running, s.pending?.kind === "paused" ? null : waiting),
      outcome: s.outcome,
    });
    if (t.progressTs) {
      await this.o.client.chat.update({ channel: t.channel, ts: t.progressTs, ...msg });
    } else {
      const res = await this.post(t, msg);
      if (res) {
        t.progressTs = res;
        await this.o.store.setProgressTs(run, res);
      }
    }
  }

  /** The run's recorded steps (as in its transcript), from its latest checkpoint, read like any other engine read. */
  private async stepsOf(run: string): Promise<Transcript["steps"]> {
    const values = await this.o.tasks.cpu(() => this.o.engine.values(run), "read");
    return (await this.o.engine.recordsOf(run, values)).steps;
  }

  private async costPlan(run: string, t: ThreadRef): Promise<void> {
    if (!t.planTs || this.costed.has(run)) return;
    const tr = await this.o.engine.transcript(run);
    const cost = workflowModule(tr.workflow)?.facets?.cost?.(tr.steps) ?? null;
    if (!cost) return;
    this.costed.add(run);
    if (!(await this.o.store.markCosted(run))) return;
    const def = this.o.engine.workflow(tr.workflow);
    const row = await this.o.engine.store.getRun(run);
    const params = await this.o.tasks.cpu(() => this.o.engine.values(run), "read");
    const msg = buildPlanMessage({
      workflow: tr.workflow, title: def.title, deployment: tr.deployment, params: params.params ?? {},
      steps: def.steps.map((s) => ({ name: s.name, gated: s.gated })), requestedBy: row?.requestedBy ?? tr.requestedBy, cost,
    });
    await this.o.client.chat.update({ channel: t.channel, ts: t.planTs, ...msg });
  }

  // ------------------------------------------------------------------------------------ cards

  async cardView(run: string, deployment: string, p: Pending): Promise<CardView> {
    const d = this.o.engine.config.config.deployments[deployment];
    const view: CardView = {
      gate: p.gate, interrupt: p.interrupt, planHash: p.planHash, expiresAt: p.expiresAt,
      approvers: await this.o.directory.labels(deployment),
      twoPersonRule: !!d && d.policy.twoPersonRule.some((k) => k === p.kind),
    };
    this.cardViews.set(`${run}:${p.interrupt}`, view);
    return view;
  }

  /**
   * The view a card was built from: from memory, else rebuilt from the run when it still waits there. Called
   * before a decision too, so a card posted before a restart can still be redrawn as decided afterwards.
   */
  async viewFor(run: string, interrupt: string): Promise<CardView | undefined> {
    const hit = this.cardViews.get(`${run}:${interrupt}`);
    if (hit) return hit;
    const s = await this.o.engine.summary(run);
    if (s.pending?.interrupt === interrupt) return this.cardView(run, s.deployment, s.pending);
    return undefined;
  }

  private async ensureCard(t: ThreadRef, p: Pending, deployment: string): Promise<void> {
    if (!(await this.o.store.reserveCard({ run: t.run, interrupt: p.interrupt, planHash: p.planHash, channel: t.channel }))) return;
    try {
      const view = await this.cardView(t.run, deployment, p);
      const ts = await this.post(t, buildApprovalCard(view));
      if (!ts) throw new Error("chat.postMessage returned no ts");
      await this.o.store.cardPosted(t.run, p.interrupt, p.planHash, ts);
    } catch (e) {
      await this.o.store.dropReservation(t.run, p.interrupt, p.planHash);
      throw e;
    }
  }

  /**
   * Edits the run's open cards whose gate has a recorded decision to say who decided (from that record);
   * only the first caller per card edits it. A card whose gate still waits keeps its buttons, even when it
   * was posted (by this or another replica) while the previous gate's decision was being announced.
   */
  async closeOpenCards(run: string): Promise<void> {
    for (const c of (await this.o.store.cards(run)).filter((x) => x.state === "open")) await this.closeIfDecided(c);
  }

  /**
   * Cards whose gate was decided elsewhere (the command line, another replica) still show buttons here:
   * they are edited to say who decided, from the engine's decision record (without the gate's details when
   * they are no longer known here, but never left with buttons).
   */
  async closeDecidedElsewhere(): Promise<void> {
    for (const c of await this.o.store.openCards()) {
      try {
        await this.closeIfDecided(c);
      } catch (e) {
        this.report(c.run, e);
      }
    }
  }

  private async closeIfDecided(c: CardRef): Promise<void> {
    const d = await this.o.engine.store.getDecision(c.run, c.interrupt);
    if (!d || (d.decision !== "approve" && d.decision !== "reject")) return;
    const view = this.cardViews.get(`${c.run}:${c.interrupt}`);
    const closed = await this.o.store.closeCard(c.run, c.interrupt, "decided");
    if (closed?.ts && view) await this.o.client.chat.update({ channel: closed.channel, ts: closed.ts, ...buildDecidedCard(view, { decision: d.decision, by: d.by, at: d.wallAt ?? d.at }) });
    else if (closed?.ts) await this.o.client.chat.update({ channel: closed.channel, ts: closed.ts, ...buildNotice(`${d.step}: ${d.decision === "approve" ? "approved" : "rejected"} by ${who(d.by)} at ${d.wallAt ?? d.at}`, d.decision === "approve" ? ":white_check_mark:" : ":no_entry_sign:") });
  }

  /** At 80% of the request's time to live: a warning in the thread, mentioning the approvers (once). */
  async warnExpiry(run: string, p: Pending): Promise<void> {
    await this.o.tasks.serial(run, async () => {
      const t = await this.threadOf(run);
      if (!t) return;
      const s = await this.o.engine.summary(run);
      await this.post(t, buildExpiryWarning(await this.cardView(run, s.deployment, p), this.o.now().toISOString()));
    });
  }

  /** On expiry: the card says so and offers "Request again"; the thread is told. Nothing proceeds. */
  async markExpired(run: string, p: Pending, expiredAt: string): Promise<void> {
    await this.o.tasks.serial(run, async () => {
      const t = await this.threadOf(run);
      if (!t) return;
      const s = await this.o.engine.summary(run);
      const view = await this.cardView(run, s.deployment, p);
      const card = await this.o.store.closeCard(run, p.interrupt, "expired", ["open", "expired"]);
      if (card?.ts) await this.o.client.chat.update({ channel: card.channel, ts: card.ts, ...buildExpiredCard(view, expiredAt) });
      await this.post(t, buildExpiryNotice(view));
      await this.flushProgress(run, s);
    });
  }

  /** After "Request again": the same card (same gate, same plan hash) opens again with its new expiry. */
  async reopenCard(run: string, summary: RunSummary, by: string): Promise<void> {
    await this.o.tasks.serial(run, async () => {
      const t = await this.threadOf(run);
      const p = summary.pending;
      if (!t || !isApproval(p)) return;
      const view = await this.cardView(run, summary.deployment, p);
      const card = await this.o.store.closeCard(run, p.interrupt, "superseded", ["expired"]);
      if (card?.ts) {
        await this.o.client.chat.update({ channel: card.channel, ts: card.ts, ...buildApprovalCard(view) });
        await this.o.store.cardPosted(run, p.interrupt, p.planHash, card.ts);
      }
      await this.post(t, buildNotice(`${who(by)} asked again for approval of *${p.step}*: ${mentionList(view.approvers, 1500)} the card above is open until ${view.expiresAt ?? "decided"}.`, ":repeat:"));
    });
  }

  // --------------------------------------------------------------------------------- rollback

  private async announceRollback(run: string, reason: string, automatic: boolean): Promise<void> {
    const t = await this.threadOf(run);
    if (!t) return;
    const row = await this.o.engine.store.getRun(run);
    if (!row) return;
    const mentions = [who(row.requestedBy), ...(await this.o.directory.labels(row.deployment))];
    await this.post(t, buildRollbackAlert({ run, deployment: row.deployment, reason, automatic, mentions: [...new Set(mentions)] }));
    this.o.metrics.rollbacks.inc();
  }

  // ----------------------------------------------------------------------------------- report

  private async postReport(t: ThreadRef, s: RunSummary): Promise<void> {
    if (!(await this.o.store.markReported(t.run, this.o.now().toISOString()))) return;
    const tr = await this.o.engine.transcript(t.run);
    const report = buildReportMessage({
      run: t.run, workflow: tr.workflow, deployment: tr.deployment, status: s.status, outcome: s.outcome,
      before: tr.metrics.before, after: tr.metrics.after, requestedBy: tr.requestedBy,
      decisions: tr.decisions.map((d) => ({ step: d.step, decision: d.decision, by: d.by, at: d.wallAt ?? d.at })),
    });
    const link = this.o.viewerLink?.(t.run) ?? null;
    await this.post(t, link ? withViewerLink(report, link) : report);
    // The chart is a convenience; the transcript is the record: a chart that cannot be drawn does not hold it back.
    let chartError: string | null = null;
    const chart = await renderChartPng(`${tr.workflow} on ${tr.deployment}: before / after`, tr.metrics.before, tr.metrics.after).catch((e: unknown) => {
      chartError = e instanceof Error ? e.message : String(e);
      return null;
    });
    const files: { file: Buffer; filename: string; title: string; alt_text?: string }[] = [];
    if (chart) files.push({ file: chart, filename: `${t.run}-before-after.png`, title: "Before / after", alt_text: "Before/after bar charts of p95 latency, error rate, cache hit ratio, origin load and cost" });
    files.push({ file: Buffer.from(renderTranscript(tr), "utf8"), filename: `${t.run}-transcript.md`, title: `Transcript of ${t.run}` });
    const comment = chart ? "Before/after chart and the full transcript" : chartError ? `The full transcript (the before/after chart could not be drawn: ${clip(chartError, 1000)})` : "The full transcript";
    await this.o.client.filesUploadV2({ channel_id: t.channel, thread_ts: t.threadTs, initial_comment: comment, file_uploads: files });
  }

  /** The transcript as a Markdown file in the thread (the `transcript` command). */
  async uploadTranscript(run: string): Promise<void> {
    const t = await this.threadOf(run);
    if (!t) return;
    const tr = await this.o.engine.transcript(run);
    await this.o.client.filesUploadV2({
      channel_id: t.channel, thread_ts: t.threadTs, initial_comment: `Transcript of ${run} (${tr.status})`,
      file_uploads: [{ file: Buffer.from(renderTranscript(tr), "utf8"), filename: `${run}-transcript.md`, title: `Transcript of ${run}` }],
    });
  }

  async status(run: string): Promise<void> {
    await this.o.tasks.serial(run, async () => {
      const t = await this.threadOf(run);
      if (!t) return;
      const s = await this.o.engine.summary(run);
      const tr = await this.o.engine.transcript(run);
      const def = this.o.engine.workflow(s.workflow);
      const waiting = s.pending && s.pending.kind !== "paused" ? { step: s.pending.step, stage: s.pending.gate.change.traffic?.to ?? null } : null;
      const msg = buildProgressMessage({ run, workflow: s.workflow, deployment: s.deployment, status: s.status, lines: progressLines(def.steps, tr.steps, isTerminal(s.status) ? null : (this.running.get(run) ?? null), waiting), outcome: s.outcome });
      const extra = s.pending && s.pending.kind !== "paused" ? `\nWaiting for approval of *${s.pending.step}* (${s.pending.kind})${s.pending.expiresAt ? `, expires ${s.pending.expiresAt}` : ""}.` : "";
      await this.post(t, { text: msg.text, blocks: [...msg.blocks, ...(extra ? buildNotice(extra.trim(), ":raised_hand:").blocks : [])] });
    });
  }

  // ------------------------------------------------------------------------------------ posting

  /** Posts into the run's thread; returns the message ts. */
  async post(t: Pick<ThreadRef, "channel" | "threadTs">, msg: SlackMessage): Promise<string | undefined> {
    const res = await this.o.client.chat.postMessage({ channel: t.channel, thread_ts: t.threadTs, ...msg });
    return res.ts;
  }

  /** An error after the ack goes to the run's thread; it is never only logged. */
  report(run: string, e: unknown): void {
    const text = e instanceof Error ? e.message : String(e);
    void this.threadOf(run)
      .then((t) => (t ? this.post(t, buildError(text)) : undefined))
      .catch((err) => console.error(`honua-agent slack: could not report an error for ${run}: ${text}; ${err instanceof Error ? err.message : String(err)}`));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
