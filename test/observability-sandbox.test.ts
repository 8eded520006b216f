import { describe, expect, it } from "vitest";
import type { Engine, RunSummary } from "../src/engine.js";
import { engineSuite } from "./helpers.js";

const WF = "modify-observability";
const files = (engine: Engine, deployment = "prod") =>
  Object.fromEntries((engine.sandbox().db.prepare(`SELECT target, content FROM obs_files WHERE deployment = ? ORDER BY target`).all(deployment) as { target: string; content: string | null }[]).map((r) => [r.target, r.content]));
const dashboard = (engine: Engine, uid: string, deployment = "prod") =>
  engine.sandbox().db.prepare(`SELECT version, model FROM obs_dashboards WHERE deployment = ? AND uid = ? ORDER BY version DESC LIMIT 1`).get(deployment, uid) as { version: number; model: string | null } | undefined;

async function decideAll(engine: Engine, s: RunSummary, seen: string[] = []): Promise<RunSummary> {
  let cur = s;
  while (cur.pending) {
    seen.push(`${cur.pending.step}:${cur.pending.kind}`);
    cur = await engine.decide(cur.run, "alice", "approve", { planHash: cur.pending.planHash });
  }
  return cur;
}

describe("modify-observability on the sandbox", () => {
  const suite = engineSuite();

  it("adds an error-rate alert that pages on-call and routes critical alerts to #honua-oncall: one provision gate showing both diffs, test alert at honua-oncall only", async () => {
    const engine = await suite.open();
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [
      { kind: "alert-rule", action: "add", spec: { metric: "error_rate", op: ">", threshold: 0.05, for: "5m", severity: "critical" } },
      { kind: "alert-route", action: "add", spec: { severity: "critical", receiver: "#honua-oncall" } },
    ] } }, "carol", "page on-call on errors");
    expect(s.pending).toMatchObject({ step: "ApplyPrometheusChanges", kind: "provision" });
    const sections = s.pending!.gate.change.sections ?? [];
    const diffs = sections.filter((x) => x.kind === "textDiff");
    expect(diffs.map((d) => d.kind === "textDiff" && d.title)).toEqual(["Prometheus rules", "Alertmanager config"]);
    expect(JSON.stringify(diffs[0])).toMatch(/\+\s+- alert: HonuaErrorRateHigh/);
    expect(JSON.stringify(diffs[1])).toMatch(/receiver: honua-oncall/);
    const checks = sections.find((x) => x.kind === "table");
    expect(JSON.stringify(checks)).toMatch(/series exist/);
    const seen: string[] = [];
    s = await decideAll(engine, s, seen);
    expect(seen).toEqual(["ApplyPrometheusChanges:provision"]);
    expect(s.status).toBe("done");
    const f = files(engine);
    expect(f["rules:honua-agent.rules.yml"]).toMatch(/alert: HonuaErrorRateHigh[\s\S]*severity: critical/);
    expect(f.alertmanager).toMatch(/- receiver: honua-oncall\n\s+matchers:\n\s+- severity="critical"/);
    const tr = await engine.transcript(s.run);
    const alerts = tr.steps.find((x) => x.name === "TestAlerts")!.output as { alerts: { labels: Record<string, string>; routedTo: string[] }[] };
    expect(alerts.alerts.map((a) => [a.labels.alertname, a.routedTo])).toEqual([["HonuaAgentTestAlert", ["honua-oncall"]], ["HonuaErrorRateHigh", ["honua-oncall"]]]);
    const doc = tr.steps.find((x) => x.name === "DocumentChanges")!.output as { markdown: string };
    expect(doc.markdown).toMatch(/test alert HonuaErrorRateHigh -> honua-oncall/);
  });

  it("raises TileLatencyHigh to 800 ms in the file it lives in, leaving the rest of the file as it was", async () => {
    const engine = await suite.open();
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }] } }, "carol", "raise it");
    const before = files(engine)["rules:honua.rules.yml"]!;
    s = await decideAll(engine, s);
    expect(s.status).toBe("done");
    const after = files(engine)["rules:honua.rules.yml"]!;
    expect(after).toBe(before.replace("[5m]))) > 500", "[5m]))) > 800").replace("above 500 ms", "above 800 ms"));
  });

  it("retention is changed in the compose file that holds it, and the card and the change log say a restart is needed", async () => {
    const engine = await suite.open();
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [{ kind: "retention", action: "modify", spec: { retention: "30d" } }] } }, "carol", "keep 30 days");
    expect(s.pending!.gate.risk).toMatch(/restart it \(\/srv\/prometheus\/compose\.yml\)/);
    expect(s.pending!.gate.change.sections?.[0]).toMatchObject({ kind: "textDiff", title: "Prometheus retention (needs a restart)" });
    s = await decideAll(engine, s);
    expect(s.status).toBe("done");
    expect(files(engine).retention).toMatch(/--storage\.tsdb\.retention\.time=30d/);
    const doc = (await engine.transcript(s.run)).steps.find((x) => x.name === "DocumentChanges")!.output as { markdown: string };
    expect(doc.markdown).toMatch(/\*\*Restart needed:\*\*/);
  });

  it("removing DiskAlmostFull is a delete gate; rejecting it leaves every file as found", async () => {
    const engine = await suite.open();
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [{ kind: "alert-rule", action: "remove", name: "DiskAlmostFull" }] } }, "carol", "remove it");
    expect(s.pending).toMatchObject({ step: "ApplyPrometheusChanges", kind: "delete" });
    const before = files(engine);
    s = await engine.decide(s.run, "alice", "reject", { planHash: s.pending!.planHash });
    expect(s.status).toBe("rejected");
    expect(files(engine)).toEqual(before);
  });

  it("a rule on a series Prometheus does not have is refused as no data before any gate", async () => {
    const engine = await suite.open();
    const s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [{ kind: "alert-rule", action: "add", name: "RequestsHigh", spec: { expr: "rate(honua_http_requests_total[5m]) > 100" } }] } }, "carol", "wrong metric");
    expect(s.status).toBe("failed");
    expect(s.pending).toBeNull();
    const tr = await engine.transcript(s.run);
    expect(JSON.stringify(tr)).toMatch(/refused as no data: honua_http_requests_total has no series/);
    expect(files(engine)["rules:honua-agent.rules.yml"]).toBeUndefined();
  });

  it("a failed Prometheus reload puts the rule file back at once and the run fails: every file as found", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "provision-failure" });
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [{ kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } }] } }, "carol", "threshold");
    const before = files(engine);
    s = await decideAll(engine, s);
    expect(s.status).toBe("failed");
    expect(files(engine)).toEqual(before);
    const tr = await engine.transcript(s.run);
    expect(JSON.stringify(tr)).toMatch(/Prometheus did not take the new rules.*restored byte for byte/);
    expect(tr.steps.map((x) => x.name)).not.toContain("UpdateGrafanaDashboards");
  });

  it("adds a cache hit rate panel to Honua Overview; degraded rule evaluation in the window rolls back the rule file byte for byte and the dashboard to version 3's content", async () => {
    const engine = await suite.open({ HONUA_SANDBOX_FAULTS: "error-spike" });
    let s = await engine.start({ workflow: WF, deployment: "prod", params: { changes: [
      { kind: "dashboard", action: "modify", name: "Honua Overview", spec: { panels: ["cache hit rate"] } },
      { kind: "alert-rule", action: "modify", name: "TileLatencyHigh", spec: { threshold: 800 } },
    ] } }, "carol", "panel and threshold");
    const before = files(engine);
    const v3 = dashboard(engine, "honua-overview")!;
    expect(s.pending!.gate.change.sections?.map((x) => x.title)).toEqual(["Prometheus rules", 'Grafana dashboard "Honua Overview" (version 3 kept for rollback)', "Checks run before anything is applied"]);
    expect(JSON.stringify(s.pending!.gate.change.sections?.[1])).toMatch(/Cache hit rate[\s\S]*honua_cache_hits_total/);
    s = await decideAll(engine, s);
    expect(s.status).toBe("rolled-back");
    expect(files(engine)).toEqual(before);
    const now = dashboard(engine, "honua-overview")!;
    expect(now.version).toBe(5); // 4: the panel; 5: version 3 restored
    expect({ ...JSON.parse(now.model!), version: 3 }).toEqual(JSON.parse(v3.model!));
  });
});
