/**
 * Observability benchmark, run on demand (not part of the tests):
 *
 *   npm run bench:observability > observability.json
 *
 * On a real Prometheus (lifecycle API on) and a real Alertmanager delivering to a local webhook, started here on
 * 127.0.0.1, measures the time from the approval to "change live and confirmed", alternating in one run:
 *   - rule: modify-observability raising TileLatencyHigh's threshold, from `approve` until WaitForConfigReload ends
 *     (promtool already ran before the gate; the file written, /-/reload, the last-reload gauge read, the new rule seen
 *     in /api/v1/rules); baseline: the same file written by hand, /-/reload, polling /api/v1/rules until it shows;
 *   - route: routing critical alerts to another receiver, from `approve` until TestAlerts ends (config written,
 *     Alertmanager reloaded and confirmed, a test alert posted, seen routed and delivered); baseline: the file
 *     written by hand, /-/reload, an alert posted, waiting until the webhook receives it.
 * Medians over BENCH_REPS (5). Prints ONE JSON object; progress on stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseConfig } from "../src/config.js";
import { Engine, type RunSummary } from "../src/engine.js";
import type { RunEvent } from "../src/graph/events.js";
import { startHonuaExporter } from "../test/fixtures/honua-exporter.js";
import { startAlertmanager, startPrometheusWithRules, startWebhooks, stackUnavailable } from "../test/fixtures/observability-stack.js";
import { waitForScrapes } from "../test/fixtures/prometheus-server.js";

const REPS = Number(process.env.BENCH_REPS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (m: string) => process.stderr.write(`${m}\n`);

const missing = stackUnavailable();
if (missing) {
  console.log(JSON.stringify({ bench: "observability", skipped: missing }));
  process.exit(0);
}

const rules = (t: number) => `groups:\n  - name: honua\n    rules:\n      - alert: TileLatencyHigh\n        expr: histogram_quantile(0.95, sum by (le) (rate(honua_serving_request_duration_ms_bucket[5m]))) > ${t}\n        for: 10m\n        labels:\n          severity: warning\n`;
const am = (hooks: string) => `route:\n  receiver: honua-alerts\n  group_by: [alertname, honua_agent_test]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: honua-alerts\n    webhook_configs:\n      - url: ${hooks}/alerts\n  - name: honua-oncall\n    webhook_configs:\n      - url: ${hooks}/oncall\n  - name: honua-db\n    webhook_configs:\n      - url: ${hooks}/db\n`;

const dir = mkdtempSync(join(tmpdir(), "honua-obs-bench-"));
const hooks = await startWebhooks();
const exporter = await startHonuaExporter({ requests: 40, latencyMs: 12 });
const alertmanager = await startAlertmanager(dir, am(hooks.url));
const prom = await startPrometheusWithRules(dir, { targets: { honua: `127.0.0.1:${exporter.port}` }, alertmanager: alertmanager.url });
const rulesFile = join(prom.rulesDir, "honua.rules.yml");
writeFileSync(rulesFile, rules(500));
await fetch(`${prom.url}/-/reload`, { method: "POST" });
await waitForScrapes(prom.url, "honua", 4);

const raw = {
  deployments: {
    local: {
      provider: "local",
      approvers: ["oncall"],
      monitoring: { windowMinutes: 0.02, stageMinutes: 0.02, sampleEveryMinutes: 0.01, minSamples: 2, latencyFactor: 10 },
      metrics: { source: "prometheus", url: prom.url, selector: { job: "honua" }, rateWindow: "5s", minSamples: 2 },
      observability: { prometheus: { url: prom.url, rulesDir: prom.rulesDir }, alertmanager: { url: alertmanager.url, configFile: alertmanager.configFile }, confirmSeconds: 30 },
    },
  },
  groups: { oncall: ["alice"] },
};
const env: NodeJS.ProcessEnv = { ...process.env, HONUA_AGENT_HOME: join(dir, "home") };
delete env.HONUA_AGENT_CONFIG;
delete env.HONUA_AGENT_DATABASE_URL;
const ends = new Map<string, number>();
const engine = await Engine.open({ env, cwd: dir, config: parseConfig(raw, "bench", env), onEvent: (e: RunEvent) => {
  if (e.type === "step-end") ends.set(`${e.run}:${e.step}`, performance.now());
} });

async function timed(params: Record<string, unknown>, liveAt: string): Promise<number> {
  let s: RunSummary = await engine.start({ workflow: "modify-observability", deployment: "local", params }, "carol", "bench");
  if (!s.pending) throw new Error(`no gate: ${s.status}`);
  const t0 = performance.now();
  s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
  while (s.pending) s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
  if (s.status !== "done") throw new Error(`run ${s.run} ended ${s.status}: ${JSON.stringify((await engine.transcript(s.run)).steps.filter((x) => x.status !== "done"))}`);
  const t1 = ends.get(`${s.run}:${liveAt}`);
  if (t1 === undefined) throw new Error(`no end of ${liveAt}`);
  return t1 - t0;
}

async function until(what: string, f: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + 30_000;
  while (!(await f())) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function bareRule(t: number): Promise<number> {
  const t0 = performance.now();
  writeFileSync(rulesFile, rules(t));
  const r = await fetch(`${prom.url}/-/reload`, { method: "POST" });
  if (!r.ok) throw new Error(`reload ${r.status}`);
  await until("rule loaded", async () => {
    const b = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as { data: { groups: { rules: { query: string }[] }[] } };
    return b.data.groups.some((g) => g.rules.some((x) => x.query.endsWith(`> ${t}`)));
  });
  return performance.now() - t0;
}

async function bareRoute(receiver: string, i: number): Promise<number> {
  const base = am(hooks.url);
  const t0 = performance.now();
  writeFileSync(alertmanager.configFile, base.replace("receivers:", `  routes:\n    - receiver: ${receiver}\n      matchers: ['severity="page"']\nreceivers:`));
  const r = await fetch(`${alertmanager.url}/-/reload`, { method: "POST" });
  if (!r.ok) throw new Error(`reload ${r.status}`);
  const labels = { alertname: "BenchBaseline", severity: "page", honua_agent_test: `baseline-${i}` };
  const now = new Date();
  await fetch(`${alertmanager.url}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([{ labels, startsAt: now.toISOString(), endsAt: new Date(now.getTime() + 60_000).toISOString() }]) });
  await until("baseline delivered", async () => hooks.deliveries.some((d) => d.receiver === receiver && d.alerts.some((a) => a.labels.honua_agent_test === labels.honua_agent_test)));
  const ms = performance.now() - t0;
  writeFileSync(alertmanager.configFile, base);
  await fetch(`${alertmanager.url}/-/reload`, { method: "POST" });
  return ms;
}

const out = { rule: [] as number[], ruleBaseline: [] as number[], route: [] as number[], routeBaseline: [] as number[] };
try {
  for (let i = 0; i < REPS; i++) {
    out.rule.push(await timed({ changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 600 + i } }] }, "WaitForConfigReload"));
    out.ruleBaseline.push(await bareRule(900 + i));
    const receiver = i % 2 === 0 ? "honua-oncall" : "honua-db";
    out.route.push(await timed({ changes: [{ kind: "alert-route", action: "add", spec: { severity: "critical", receiver } }] }, "TestAlerts"));
    out.routeBaseline.push(await bareRoute(receiver, i));
    // The next route run starts from the config as found.
    writeFileSync(alertmanager.configFile, am(hooks.url));
    await fetch(`${alertmanager.url}/-/reload`, { method: "POST" });
    log(`rep ${i + 1}/${REPS}: rule ${out.rule.at(-1)!.toFixed(0)} ms (bare ${out.ruleBaseline.at(-1)!.toFixed(0)}), route ${out.route.at(-1)!.toFixed(0)} ms (bare ${out.routeBaseline.at(-1)!.toFixed(0)})`);
  }
  const r = (xs: number[]) => Number(median(xs).toFixed(1));
  console.log(JSON.stringify({
    bench: "observability",
    reps: REPS,
    machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))) },
    ruleChange: { approvalToLiveMs: r(out.rule), baselineMs: r(out.ruleBaseline), ratio: Number((median(out.rule) / median(out.ruleBaseline)).toFixed(2)), runs: out.rule.map((x) => Number(x.toFixed(1))) },
    routeChange: { approvalToLiveMs: r(out.route), baselineMs: r(out.routeBaseline), ratio: Number((median(out.route) / median(out.routeBaseline)).toFixed(2)), runs: out.route.map((x) => Number(x.toFixed(1))) },
    what: {
      rule: "approve -> file written, /-/reload, prometheus_config_last_reload_successful 1, new rule in /api/v1/rules; baseline: write + /-/reload + poll /api/v1/rules",
      route: "approve -> config written, reload confirmed, test alert posted, routed to the receiver and delivered, resolved; baseline: write + /-/reload + post alert + webhook receipt",
    },
  }));
} finally {
  await engine.close();
  await prom.close();
  await alertmanager.close();
  await exporter.close();
  await hooks.close();
  rmSync(dir, { recursive: true, force: true });
}
