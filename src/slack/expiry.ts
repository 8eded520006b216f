import type { Engine, GateTicket } from "../engine.js";
import type { ThreadNotifier } from "./notifier.js";
import type { SlackStore } from "./store.js";

/** Share of a request's time to live after which the approvers are reminded. */
export const WARN_AT = 0.8;

/**
 * Drives approval expiry from the serve process: at 80% of a request's TTL a warning goes to the thread,
 * at 100% the card says it expired and offers "Request again"; each notice is sent once (engine.noteGate).
 * Nothing proceeds on expiry: the engine refuses decisions on an expired gate. The same pass posts any card
 * missing for a gate of a run that has a thread (a run advanced from the command line, or a restart).
 */
export class GateWatcher {
  constructor(
    private readonly engine: Engine,
    private readonly notifier: ThreadNotifier,
    private readonly store: SlackStore,
    private readonly now: () => Date,
  ) {}

  async tick(): Promise<void> {
    const now = this.now().getTime();
    for (const t of await this.engine.pendingGates()) {
      // One run's failure (an archived channel, a Slack error) is reported in its thread and does not hold
      // back the notices of every other run.
      try {
        await this.tickGate(t, now);
      } catch (e) {
        this.notifier.report(t.run, e);
      }
    }
    await this.notifier.closeDecidedElsewhere();
    await this.store.forgetSeen(new Date(now - 24 * 3600_000).toISOString());
  }

  private async tickGate(t: GateTicket, now: number): Promise<void> {
    if (!(await this.notifier.threadOf(t.run))) return;
    if (t.kind === "paused" || t.expiresAt === null) return;
    const asked = Date.parse(t.askedAt);
    const expires = Date.parse(t.expiresAt);
    if (now >= expires) {
      if (t.expiredAt === null && (await this.engine.noteGate(t.run, t.interrupt, "expired"))) {
        const s = await this.engine.summary(t.run);
        if (s.pending?.interrupt === t.interrupt) await this.notifier.markExpired(t.run, s.pending, new Date(now).toISOString());
      }
      return;
    }
    if (t.warnedAt === null && now >= asked + WARN_AT * (expires - asked) && (await this.engine.noteGate(t.run, t.interrupt, "warned"))) {
      const s = await this.engine.summary(t.run);
      if (s.pending?.interrupt === t.interrupt) await this.notifier.warnExpiry(t.run, s.pending);
    }
    const cards = await this.store.cards(t.run);
    if (!cards.some((c) => c.interrupt === t.interrupt && c.planHash === t.planHash)) await this.notifier.settle(t.run);
  }
}
