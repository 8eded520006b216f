import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { defineStep } from "../../../step.js";
import { Design, RouteExpectation } from "../design.js";
import { observabilityOf } from "../observability.js";
import { unitTests } from "../unit-tests.js";
import { DesignObservabilityChanges } from "./design-observability-changes.js";

export const Check = z.object({ check: z.string(), command: z.string(), ok: z.boolean(), output: z.string() });
export type Check = z.infer<typeof Check>;

export const Validation = z.object({
  checks: z.array(Check),
  /** Alert rules with a generated unit test, and those promtool could only check (with why). */
  tested: z.array(z.string()),
  untested: z.array(z.object({ rule: z.string(), why: z.string() })),
  series: z.record(z.string(), z.number()),
  /** What the test alerts must show: routes changed, and where each changed alert rule's alerts go. */
  expectations: z.array(RouteExpectation),
});
export type Validation = z.infer<typeof Validation>;

const clip = (s: string) => (s.length > 2000 ? `${s.slice(0, 2000)}…` : s);
const fileName = (target: string) => target.slice(target.indexOf(":") + 1);
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join(",") === [...b].sort().join(",");

export const ValidateConfigurationSyntax = defineStep({
  name: "ValidateConfigurationSyntax",
  description: "Prove the change before touching anything: promtool check rules, promtool test rules (fires on a bad series, quiet on a good one), every metric present in the target Prometheus, amtool check-config and routes test",
  input: z.object({ design: Design }),
  output: Validation,
  prepare: (view) => ({ design: view.output(DesignObservabilityChanges) }),
  async run(ctx, { design }) {
    const obs = observabilityOf(ctx.adapters, ctx.deployment);
    const checks: Check[] = [];
    const ruleFiles = Object.fromEntries(design.files.filter((f) => f.target.startsWith("rules:") && f.after !== null).map((f) => [fileName(f.target), f.after!]));
    const failed = (what: string, c: Check) => new AgentError("bad-input", `refused before anything was applied: ${what}\n${c.command}\n${c.output}`);

    if (Object.keys(ruleFiles).length) {
      const r = await obs.checkRules(ruleFiles);
      const c = { check: "rule syntax", ...r, output: clip(r.output) };
      checks.push(c);
      if (!r.ok) throw failed("the rule files do not pass promtool check rules", c);
    }
    const under = design.rules.filter((r) => r.type === "alert" && r.action !== "remove" && r.expr !== null && ruleFiles[fileName(r.target)] !== undefined);
    const t = unitTests(Object.keys(ruleFiles), under.map((r) => ({ name: r.name, expr: r.expr!, for: r.for, labels: r.labels, annotations: r.annotations })));
    if (t.yaml) {
      const r = await obs.testRules(ruleFiles, t.yaml);
      const c = { check: `unit tests (${t.tested.join(", ")}: fires on a bad series, quiet on a good one)`, ...r, output: clip(r.output) };
      checks.push(c);
      if (!r.ok) throw failed("the generated unit tests fail: the rule does not fire on the bad series, or fires on the good one", c);
      await ctx.attach("unit-tests", t.yaml);
    }

    // A rule over a series Prometheus does not have returns an empty vector and never fires: no data is refused.
    const series = await obs.series(design.metrics);
    const empty = design.metrics.filter((m) => (series[m] ?? 0) === 0);
    // A labelled counter has no series until it first counts (errors before the first error); a scrape target that
    // declares it is not no data. A name no target declares is.
    const declared = empty.length ? await obs.declared(empty) : [];
    const missing = empty.filter((m) => !declared.includes(m));
    checks.push({
      check: "series exist",
      command: `count by (__name__) ({__name__=~"${design.metrics.join("|")}"})${empty.length ? " and /api/v1/metadata" : ""}`,
      ok: missing.length === 0,
      output: design.metrics.map((m) => `${m}: ${series[m] ?? 0} series${declared.includes(m) ? " (declared by a scrape target; no sample yet)" : ""}`).join("\n"),
    });
    if (missing.length) {
      throw new AgentError("bad-input", `refused as no data: ${missing.join(", ")} ${missing.length === 1 ? "has" : "have"} no series in ${obs.describe()}; a rule or panel on ${missing.length === 1 ? "it" : "them"} would stay empty and never fire. Check the metric name (Honua exports honua_serving_request_duration_ms_*, honua_request_error_total, honua_cache_hits_total/misses_total) and that /metrics is on (HONUA_OBSERVABILITY=true)`);
    }

    const am = design.files.find((f) => f.target === "alertmanager");
    const amAfter = am?.after ?? (await obs.file("alertmanager").catch(() => null))?.content ?? null;
    if (am?.after) {
      const r = await obs.checkAlertmanager(am.after);
      const c = { check: "Alertmanager config", ...r, output: clip(r.output) };
      checks.push(c);
      if (!r.ok) throw failed("the Alertmanager config does not pass amtool check-config", c);
    }
    const expectations: z.infer<typeof RouteExpectation>[] = [];
    for (const e of design.routes) {
      const r = await obs.routeReceivers(amAfter ?? "", e.labels);
      const ok = sameSet(r.receivers, e.receivers);
      const c = { check: `route ${Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(" ")}`, command: r.run.command, ok, output: `expected ${e.receivers.join(",")}; amtool: ${r.receivers.join(",") || r.run.output}` };
      checks.push(c);
      if (!ok) throw failed(`an alert with ${c.check.slice(6)} would reach ${r.receivers.join(", ") || "no receiver"}, not ${e.receivers.join(", ")}`, c);
      expectations.push(e);
    }
    if (amAfter) {
      for (const rule of under) {
        const labels = { alertname: rule.name, ...rule.labels };
        const r = await obs.routeReceivers(amAfter, labels);
        checks.push({ check: `route of ${rule.name}`, command: r.run.command, ok: r.run.ok && r.receivers.length > 0, output: r.receivers.join(",") || r.run.output });
        if (r.receivers.length) expectations.push({ labels, receivers: r.receivers, why: `${rule.name} (${Object.entries(rule.labels).map(([k, v]) => `${k}=${v}`).join(", ")}) -> ${r.receivers.join(", ")}` });
      }
    }
    ctx.progress(checks.map((c) => `${c.ok ? "ok" : "FAIL"} ${c.check}`).join("; "));
    return { output: { checks, tested: t.tested, untested: t.untested, series, expectations }, reason: `${checks.length} checks passed${t.untested.length ? `; promtool-only: ${t.untested.map((u) => u.rule).join(", ")}` : ""}` };
  },
});
