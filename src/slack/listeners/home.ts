import type { App } from "@slack/bolt";
import { TERMINAL } from "../../core/records.js";
import { buildHomeView, type HomeApproval, type HomeRun } from "../blocks.js";
import type { SlackDeps } from "../context.js";

/** What the App Home tab shows `user`: runs in progress, and the approvals that wait for them. */
export async function homeFor(d: SlackDeps, user: string) {
  const runs = (await d.engine.runs()).filter((r) => !TERMINAL.includes(r.status));
  const threads = await d.store.threads(runs.map((r) => r.run));
  const byRun = new Map(runs.map((r) => [r.run, r]));
  const homeRuns: HomeRun[] = runs.map((r) => ({ ...r, channel: threads.get(r.run)?.channel ?? null }));
  const approvals: HomeApproval[] = [];
  for (const g of await d.engine.pendingGates()) {
    const r = byRun.get(g.run);
    if (!r || g.kind === "paused") continue;
    if (!(await d.directory.mayApprove(user, r.deployment, { kind: g.kind, requestedBy: r.requestedBy }))) continue;
    approvals.push({ run: g.run, deployment: r.deployment, step: g.step, kind: g.kind, expiresAt: g.expiresAt, channel: threads.get(g.run)?.channel ?? null });
  }
  return buildHomeView({ user, runs: homeRuns, approvals });
}

export function registerHome(app: App, d: SlackDeps): void {
  app.event("app_home_opened", async ({ event }) => {
    if (event.tab !== "home") return;
    d.tasks.spawn("app home", async () => {
      await d.client.views.publish({ user_id: event.user, view: await homeFor(d, event.user) });
    });
  });
}
