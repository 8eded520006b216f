import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { defineStep } from "../../../step.js";
import { observabilityOf, within } from "../observability.js";
import { RouteExpectation } from "../design.js";
import { integrationsOf } from "../../../../tools/observability/routes.js";
import { ValidateConfigurationSyntax } from "./validate-configuration-syntax.js";

const Delivered = z.object({ labels: z.record(z.string(), z.string()), expected: z.array(z.string()), routedTo: z.array(z.string()), delivered: z.boolean(), detail: z.string() });

export const TestAlerts = defineStep({
  name: "TestAlerts",
  description: "Send a labelled test alert to Alertmanager (/api/v2/alerts) for each changed rule and route, confirm it reached the intended receiver and no other, then resolve it",
  input: z.object({ expectations: z.array(RouteExpectation) }),
  output: z.object({ alerts: z.array(Delivered) }),
  prepare: (view) => ({ expectations: view.output(ValidateConfigurationSyntax).expectations }),
  async run(ctx, { expectations }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const out: z.infer<typeof Delivered>[] = [];
    const config = expectations.length ? ((await obs.file("alertmanager").catch(() => null))?.content ?? "") : "";
    for (const [i, e] of expectations.entries()) {
      // The test label names the run: the alert is told apart from real ones, and a replay re-sends the same alert (Alertmanager deduplicates it).
      const labels = { ...e.labels, honua_agent_test: `${ctx.run}-${i}` };
      const before = await obs.deliveries();
      const now = ctx.adapters.clock.now();
      const annotations = { summary: `honua-agent test alert for run ${ctx.run} (${e.why}); resolves by itself` };
      await obs.postAlert({ labels, annotations, startsAt: now.toISOString(), endsAt: new Date(now.getTime() + 5 * 60_000).toISOString() });
      // Resolved however the check ends: a test alert never lingers as if something were wrong.
      const resolve = () => obs.postAlert({ labels, annotations, startsAt: now.toISOString(), endsAt: ctx.adapters.clock.now().toISOString() }).catch(() => undefined);
      try {
        const seen = await within(ctx.adapters, obs.confirmSeconds, async () => (await obs.alerts(labels)).find((a) => a.receivers.length > 0) ?? null);
        if (!seen) throw new AgentError("failed", `the test alert ${JSON.stringify(labels)} did not show in Alertmanager within ${obs.confirmSeconds}s`);
        const routedTo = [...seen.receivers].sort();
        const wrong = routedTo.filter((r) => !e.receivers.includes(r));
        const lacking = e.receivers.filter((r) => !routedTo.includes(r));
        if (wrong.length || lacking.length) {
          throw new AgentError("failed", `the test alert ${JSON.stringify(e.labels)} went to ${routedTo.join(", ")}, expected ${e.receivers.join(", ")} (${e.why})`);
        }
        // Delivery: Alertmanager's own notification counters for these receivers (per receiver where it labels them, else per integration).
        const delivered = await within(ctx.adapters, obs.confirmSeconds, async () => {
          const after = await obs.deliveries();
          // Per receiver where Alertmanager labels its counters so; else (0.25) per integration the receivers use.
          const via = integrationsOf(config, e.receivers);
          const keys = e.receivers.some((r) => r in after) ? e.receivers : via.length ? via : Object.keys(after);
          const sent = keys.reduce((a, k) => a + ((after[k]?.sent ?? 0) - (before[k]?.sent ?? 0)), 0);
          const failed = keys.reduce((a, k) => a + ((after[k]?.failed ?? 0) - (before[k]?.failed ?? 0)), 0);
          return sent > 0 || failed > 0 ? { sent, failed } : null;
        });
        if (delivered && delivered.failed > 0 && delivered.sent <= delivered.failed) throw new AgentError("failed", `Alertmanager routed the test alert to ${routedTo.join(", ")} but the notification failed (${delivered.failed} failed); check the receiver's credentials`);
        out.push({ labels, expected: e.receivers, routedTo, delivered: delivered !== null, detail: delivered ? `${delivered.sent} notification(s) sent` : `routed; no notification seen within ${obs.confirmSeconds}s (group_wait?)` });
      } finally {
        await resolve();
      }
    }
    ctx.progress(out.map((a) => `${a.labels.alertname} -> ${a.routedTo.join(",")} (${a.detail})`).join("; ") || "no alert to test");
    const undelivered = out.filter((a) => !a.delivered);
    return {
      output: { alerts: out },
      ...(undelivered.length ? { verdict: "inconclusive" as const, reason: `test alert routed to ${undelivered.map((a) => a.routedTo.join(",")).join("; ")} but no delivery was seen` } : { reason: out.length ? `${out.length} test alert(s) reached exactly their receivers` : "no route or alert rule to test" }),
    };
  },
});
