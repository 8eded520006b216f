import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { startOrigin } from "../src/dev/origin.js";
import { Engine, type RunSummary } from "../src/engine.js";
import { SandboxWorld } from "../src/sandbox/sandbox.js";
import { NginxTrafficOptions, parseSplit, renderSplit } from "../src/tools/traffic/nginx.js";
import { requireNginx, startNginx } from "./fixtures/nginx-server.js";
import { startRedisServer } from "./fixtures/redis-server.js";
import { converse, matchIntent } from "../src/conversation/index.js";
import { startServer } from "../src/slack/server.js";
import { FORM, JSON_TYPE, SlackFake, actionBody, blocksText, buttonValue, eventBody, slackPost, slackTestEnv, type FakeMessage } from "./fixtures/slack-fake.js";
import { CACHING_PLAN, approveAll, cli, engineSuite, openEngine, tempHome, testEnv } from "./helpers.js";

/** A finished caching run on the sandbox's prod, every gate approved by alice. */
async function finishedCaching(engine: Engine): Promise<RunSummary> {
  const done = await approveAll(engine, await engine.start(CACHING_PLAN, "carol", "add redis caching to prod"));
  expect(done.status).toBe("done");
  return done;
}

/** Decides each gate of a revert: the gates seen, in order, as `step:kind`. */
async function driveRevert(engine: Engine, s: RunSummary, by: (kind: string) => string): Promise<{ end: RunSummary; gates: string[]; cards: NonNullable<RunSummary["pending"]>[] }> {
  const gates: string[] = [];
  const cards: NonNullable<RunSummary["pending"]>[] = [];
  let cur = s;
  while (cur.pending) {
    gates.push(`${cur.pending.step}:${cur.pending.kind}`);
    cards.push(cur.pending);
    cur = await engine.decide(cur.run, by(cur.pending.kind), "approve", { planHash: cur.pending.planHash });
  }
  return { end: cur, gates, cards };
}

describe("revert of a finished run on the sandbox", () => {
  const suite = engineSuite();

  it("restores the start state exactly: config, shares, and the created cache deleted behind a delete gate", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    engine.adaptersFor("prod"); // the simulated deployment exists from its first use
    const configBefore = world.config("prod");
    const shareBefore = world.share("prod", "cache");
    const forward = await finishedCaching(engine);
    expect(world.share("prod", "cache")).toBe(100);
    expect(world.config("prod")).not.toEqual(configBefore);
    expect(world.activeResources("prod")).toHaveLength(1);

    const plan = await engine.revertPlan(forward.run, "alice");
    expect(plan.traffic).toEqual([{ feature: "cache", from: 100, to: shareBefore }]);
    const now = world.config("prod");
    const changed = [...new Set([...Object.keys(now), ...Object.keys(configBefore)])].filter((k) => now[k] !== configBefore[k]).sort();
    expect(changed.length).toBeGreaterThan(0);
    expect(plan.config.map((c) => c.key).sort()).toEqual(changed);
    expect(plan.config.every((c) => c.before === (now[c.key] ?? null) && c.after === (configBefore[c.key] ?? null))).toBe(true);
    expect(plan.created).toEqual([expect.objectContaining({ kind: "redis" })]);

    const first = await engine.revert(forward.run, "alice");
    expect(first.run).not.toBe(forward.run);
    expect(first.workflow).toBe("revert-run");
    expect(first.pending).toMatchObject({ step: "RestoreTraffic", kind: "traffic" });
    expect(first.pending!.gate.change.traffic).toEqual({ from: 100, to: shareBefore });
    expect(await engine.store.lockHolder("prod")).toBe(first.run);
    // two-person rule on prod: alice asked for the revert, so bob approves its delete
    const { end, gates, cards } = await driveRevert(engine, first, (kind) => (kind === "delete" ? "bob" : "alice"));
    expect(gates).toEqual(["RestoreTraffic:traffic", "RestoreConfig:provision", "RemoveCreated:delete"]);
    // each card shows what goes back at it, as typed sections inside its plan hash
    const [traffic, config, del] = cards.map((c) => c.gate);
    expect(traffic!.change.sections).toEqual([{ kind: "table", title: `Traffic put back as ${forward.run} found it`, columns: ["feature", "now %", "back to %"], rows: [["cache", 100, shareBefore]] }]);
    expect(config!.change.config).toEqual(plan.config);
    expect(del!.change.resources).toEqual([{ id: expect.stringMatching(/^redis-prod-/), kind: "redis", action: "delete" }]);
    expect(del!.change.sections?.[0]).toMatchObject({ kind: "table", title: `Left by ${forward.run}`, rows: [[expect.stringMatching(/^redis-prod-/), "redis", expect.stringContaining("redis"), expect.any(String)]] });
    expect(new Set(cards.map((c) => c.planHash)).size).toBe(3);
    expect(end.status).toBe("done");
    expect(world.config("prod")).toEqual(configBefore);
    expect(world.share("prod", "cache")).toBe(shareBefore);
    expect(world.activeResources("prod")).toHaveLength(0);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
    const tr = await engine.transcript(end.run);
    expect(tr.decisions.map((d) => `${d.step}:${d.by}`)).toEqual(["RestoreTraffic:alice", "RestoreConfig:alice", "RemoveCreated:bob"]);

    await expect(engine.revertPlan(forward.run, "alice")).rejects.toThrow(`already reverted by ${end.run}`);
  });

  it("refuses a run that has not finished, an unknown or malformed id, a requester who may not approve, and a rolled-back run; nothing starts", async () => {
    const engine = await suite.open();
    const waiting = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    expect(waiting.status).toBe("waiting");
    await expect(engine.revertPlan(waiting.run, "alice")).rejects.toThrow(`cannot revert ${waiting.run}: it has not finished (waiting): cancel or roll it back instead`);
    await expect(engine.revert(waiting.run, "alice")).rejects.toThrow(/cancel or roll it back instead.*nothing was started/);
    await expect(engine.revert("run-20990101-0000000000", "alice")).rejects.toThrow("unknown run run-20990101-0000000000; nothing was started");
    await expect(engine.revert("x; DROP TABLE honua_runs", "alice")).rejects.toMatchObject({ code: "bad-input" });
    const rejected = await engine.decide(waiting.run, "alice", "reject", { planHash: waiting.pending!.planHash });
    expect(rejected.status).toBe("rejected");
    // carol asked for the change but is not an approver of prod: a revert changes prod, so she may not start one
    await expect(engine.revert(rejected.run, "carol")).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/carol may not approve on prod.*alice, bob|carol may not approve on prod.*oncall/) });
    await expect(engine.revert(rejected.run, "alice")).rejects.toThrow(/it was already rejected and rolled back.*nothing of it left to revert/);
    // a revert is not a plan a request can start
    await expect(engine.start({ workflow: "revert-run", deployment: "prod", params: {} }, "alice", "x")).rejects.toThrow(/use honua-agent revert RUN/);
    expect((await engine.runs()).map((r) => r.run)).toEqual([waiting.run]);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("refuses after another run changed the same share (naming the run), and after a change made outside the agent", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    const a = await finishedCaching(engine);
    // b reverts traffic and config, and keeps the cache (its delete gate rejected): its restores stand
    let b = await engine.revert(a.run, "alice");
    b = await engine.decide(b.run, "alice", "approve");
    b = await engine.decide(b.run, "alice", "approve");
    expect(b.pending).toMatchObject({ step: "RemoveCreated", kind: "delete" });
    b = await engine.decide(b.run, "bob", "reject", { comment: "keep the node for now" });
    expect(b.status).toBe("rejected");
    expect(world.share("prod", "cache")).toBe(0);
    expect(world.activeResources("prod")).toHaveLength(1);
    const c = await finishedCaching(engine);
    expect(world.share("prod", "cache")).toBe(100);
    const runs = (await engine.runs()).length;

    // reverting a would undo c's change of the same share and keys
    const refusal = engine.revert(a.run, "alice");
    await expect(refusal).rejects.toMatchObject({ code: "conflict" });
    await expect(refusal).rejects.toThrow(`traffic share cache was changed since by run ${c.run} (add-caching-layer, done)`);
    await expect(refusal).rejects.toThrow(/config key ConnectionStrings__Redis was changed since by run/);

    // the share moved by hand on the router: what the run left is no longer there
    await engine.adaptersFor("prod").traffic.setShare("cache", 40, "outside:operator:1");
    await expect(engine.revert(c.run, "alice")).rejects.toThrow("the deployment changed since, outside honua-agent: traffic share cache is 40% now; the run left it at 100%");
    expect((await engine.runs()).length).toBe(runs);
    expect(world.share("prod", "cache")).toBe(40);
    expect(await engine.store.lockHolder("prod")).toBeUndefined();
  });

  it("refuses a run whose journal marks a point of no return, naming the step and what cannot be restored", async () => {
    const engine = await suite.open();
    const done = await approveAll(engine, await engine.start({ workflow: "modify-metadata-storage", deployment: "staging", params: { toStore: "sqlite" } }, "carol", "move staging's metadata to sqlite"));
    expect(done.status).toBe("done");
    await expect(engine.revert(done.run, "alice")).rejects.toThrow(/its journal marks a point of no return \(DisableOldStore: .*retired.*\), which a revert cannot restore; nothing was started/);
  });

  it("a revert's gates cannot be skipped: a forged resume is refused and nothing moves; a rejection puts back what the revert moved", async () => {
    const engine = await suite.open();
    const world = engine.sandbox();
    const a = await finishedCaching(engine);
    const configAfter = world.config("prod");
    const s = await engine.revert(a.run, "alice");
    expect(s.pending?.step).toBe("RestoreTraffic");
    // the plan hash binds the card: a stale one decides nothing
    await expect(engine.decide(s.run, "alice", "approve", { planHash: "0".repeat(64) })).rejects.toThrow(/plan changed since it was shown/);

    const atConfig = await engine.decide(s.run, "alice", "approve", { planHash: s.pending!.planHash });
    expect(world.share("prod", "cache")).toBe(0);
    expect(atConfig.pending).toMatchObject({ step: "RestoreConfig", kind: "provision" });
    expect(atConfig.pending!.gate.change.config.length).toBeGreaterThan(0);
    const end = await engine.decide(s.run, "bob", "reject", { planHash: atConfig.pending!.planHash, comment: "keep the cache" });
    expect(end.status).toBe("rejected");
    expect(world.share("prod", "cache")).toBe(100);
    expect(world.config("prod")).toEqual(configAfter);
    expect(world.activeResources("prod")).toHaveLength(1);
    const decisions = await engine.store.listDecisions(s.run);
    expect(decisions.map((d) => `${d.step}:${d.kind}:${d.decision}`)).toEqual(["RestoreTraffic:traffic:approve", "RestoreConfig:provision:reject"]);

    // a rejected revert that put nothing back does not count as a change since: a new revert may start. Resuming its
    // gate with a forged decision, or driving its graph straight into the gated step, fails before anything moves
    const again = await engine.revert(a.run, "alice");
    expect(again.pending?.step).toBe("RestoreTraffic");
    const moved = world.count("prod", "traffic-share");
    const { Command } = await import("@langchain/langgraph");
    const cfg = { configurable: { thread_id: again.run }, durability: "sync" as const };
    await expect(engine.graph("revert-run").invoke(new Command({ resume: { interrupt: "forged", planHash: again.pending!.planHash } }), cfg)).rejects.toThrow(/no recorded decision/);
    await expect(engine.graph("revert-run").invoke(new Command({ goto: "RestoreTraffic" }), cfg)).rejects.toThrow(/gated step RestoreTraffic reached without a recorded approval/);
    expect(world.count("prod", "traffic-share")).toBe(moved);
    expect(world.share("prod", "cache")).toBe(100);
  });
});

describe("revert in a run's conversation", () => {
  const suite = engineSuite();
  const say = (engine: Engine, run: string, text: string, user: string) => converse(engine, { run, user, groups: [], text }, { model: { offline: true } });

  it("\"revert it\" from an approver starts a revert of the thread's run; from anyone else, or on a run under way, it is refused and starts nothing", async () => {
    expect(matchIntent("revert it")).toEqual({ kind: "tools", calls: [{ tool: "revert_run", args: { run: null } }] });
    expect(matchIntent("please revert run-20261126-ab12cd34ef")).toEqual({ kind: "tools", calls: [{ tool: "revert_run", args: { run: "run-20261126-ab12cd34ef" } }] });
    expect(matchIntent("do not revert it").kind === "tools" && (matchIntent("do not revert it") as { calls: { tool: string }[] }).calls.some((c) => c.tool === "revert_run")).toBe(false);
    const engine = await suite.open();
    const waiting = await engine.start(CACHING_PLAN, "carol", "add redis caching to prod");
    expect((await say(engine, waiting.run, "revert it", "alice")).text).toMatch(/has not finished \(waiting\): cancel or roll it back instead/);
    const done = await approveAll(engine, waiting);
    const refused = await say(engine, done.run, "revert it", "carol");
    expect(refused.text).toMatch(/carol may not approve on prod/);
    expect(refused.actions).toEqual([expect.objectContaining({ tool: "revert_run", ok: false })]);
    expect((await engine.runs()).length).toBe(1);
    const started = await say(engine, done.run, "revert it", "alice");
    const revert = (await engine.runs()).find((r) => r.workflow === "revert-run")!;
    expect(started.actions).toEqual([expect.objectContaining({ tool: "revert_run", ok: true, started: revert.run })]);
    expect(started.text).toContain(`Reverting ${done.run} as a new run, ${revert.run}: it is waiting, waiting at RestoreTraffic (traffic)`);
    expect(revert.requestedBy).toBe("alice");
  });
});

describe("revert in a Slack thread (real Bolt app, signed requests, fake Web API)", () => {
  it("\"revert it\" in a finished run's thread: refused privately for someone who may not approve; from an approver the revert's cards follow in the thread", async () => {
    const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
    const t = tempHome();
    const fake = await SlackFake.start();
    const env = slackTestEnv(t.home, fake.apiUrl, SECRET, {});
    const config = parseConfig({ deployments: { prod: { provider: "sandbox", approvers: ["U0ALICE42", "U0BOB4242"] } } }, "test");
    const server = await startServer({ env, cwd: t.home, config, port: 0, host: "127.0.0.1", expiryIntervalMs: 0, progressIntervalMs: 10, clientRetries: 0, converse: null });
    try {
      let seq = 0;
      const post = async (body: string, type: string) => {
        const res = await slackPost(server.url, body, type, { secret: SECRET });
        await server.idle();
        expect(res.status).toBe(200);
      };
      const root = `1699999999.${String(++seq).padStart(6, "0")}`;
      await post(eventBody({ type: "app_mention", user: "U0CAROL42", text: "<@UHONUA> add Redis caching to prod", ts: root, channel: "C0OPS", event_ts: root }), JSON_TYPE);
      const cards = (): FakeMessage[] => fake.thread(root).filter((m) => m.versions.some((v) => JSON.stringify(v.blocks).includes("honua_approve")));
      const click = (card: FakeMessage, user: string) => post(actionBody({ user, actionId: "honua_approve", value: buttonValue(card, "honua_approve"), channel: card.channel, messageTs: card.ts, threadTs: card.thread_ts }), FORM);
      for (let i = 0; i < 4; i++) await click(cards().at(-1)!, "U0ALICE42");
      const forward = (await server.engine.runs())[0]!;
      expect(forward.status).toBe("done");
      const say = (text: string, user: string) => post(eventBody({ type: "message", channel_type: "channel", user, text, ts: `1699999999.${String(++seq).padStart(6, "0")}`, thread_ts: root, channel: "C0OPS" }), JSON_TYPE);

      await say("revert it", "U0CAROL42");
      expect(fake.ephemerals("U0CAROL42").join()).toMatch(/U0CAROL42 may not approve on prod/);
      expect((await server.engine.runs()).length).toBe(1);
      const before = cards().length;
      await say("revert it", "U0ALICE42");
      const revert = (await server.engine.runs()).find((r) => r.workflow === "revert-run")!;
      expect(revert.requestedBy).toBe("U0ALICE42");
      const asked = fake.thread(root).find((m) => blocksText(m).includes(`asked to revert ${forward.run}`));
      expect(asked && blocksText(asked)).toMatch(/cache 100% -(?:&gt;|>) 0%/);
      expect(cards()).toHaveLength(before + 1);
      expect(blocksText(cards().at(-1)!)).toMatch(/RestoreTraffic|move traffic back/);
      await click(cards().at(-1)!, "U0ALICE42");
      expect((await server.engine.summary(revert.run)).pending).toMatchObject({ step: "RestoreConfig", kind: "provision" });
      expect(cards()).toHaveLength(before + 2);
    } finally {
      await server.close();
      await fake.close();
      t.cleanup();
    }
  });
});

describe("a crash in the middle of a revert", () => {
  const suite = engineSuite();

  it("resumes without undoing twice: killed (SIGKILL) after the config went back, the resumed run moves nothing again", async () => {
    // A sandbox deployment whose policy approves traffic and provision gates by itself, so one command reaches the kill.
    const configFile = join(suite.home, "honua-agent.yaml");
    writeFileSync(configFile, "deployments:\n  lab:\n    provider: sandbox\n    approvers: [oncall]\n    policy: { autoApprove: [traffic, provision], twoPersonRule: [delete] }\ngroups:\n  oncall: [alice, bob]\n");
    const env = { HONUA_AGENT_CONFIG: configFile };
    const ops = (op: string) => {
      const w = new SandboxWorld(join(suite.home, "sandbox.sqlite"));
      try {
        return w.count("lab", op);
      } finally {
        w.close();
      }
    };
    let engine = await openEngine(suite.home, env);
    engine.adaptersFor("lab");
    const start = { config: engine.sandbox().config("lab"), share: engine.sandbox().share("lab", "cache") };
    const forward = await approveAll(engine, await engine.start({ workflow: "add-caching-layer", deployment: "lab", params: {} }, "carol", "add redis caching to lab"));
    expect(forward.status).toBe("done");
    await engine.close();
    const [configs, moves] = [ops("config-apply"), ops("traffic-share")];

    const killed = cli(suite.home, ["revert", forward.run, "--as", "alice", "--yes"], { ...env, HONUA_AGENT_FAILPOINT: "after:RestoreConfig" });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    expect(killed.stderr).toContain(`Revert ${forward.run} (add-caching-layer) on lab`);
    expect(killed.stderr).toContain("1. traffic [traffic gate]: cache 100% -> 0%");
    expect(ops("traffic-share")).toBe(moves + 1);
    expect(ops("config-apply")).toBe(configs + 1);

    engine = suite.track(await openEngine(suite.home, env));
    const revert = (await engine.runs()).find((r) => r.workflow === "revert-run")!;
    expect((await engine.summary(revert.run)).status).toBe("interrupted");
    const resumed = await engine.resume(revert.run);
    expect(resumed.pending).toMatchObject({ step: "RemoveCreated", kind: "delete" });
    expect(ops("traffic-share")).toBe(moves + 1);
    expect(ops("config-apply")).toBe(configs + 1);
    await expect(engine.decide(revert.run, "alice", "approve")).rejects.toThrow(/two-person|may not/);
    const end = await engine.decide(revert.run, "bob", "approve");
    expect(end.status).toBe("done");
    expect(engine.sandbox().config("lab")).toEqual(start.config);
    expect(engine.sandbox().share("lab", "cache")).toBe(start.share);
    expect(engine.sandbox().activeResources("lab")).toHaveLength(0);
    const decisions = (await engine.transcript(revert.run)).decisions.map((d) => `${d.step}:${d.decision}:${d.by}`);
    expect(decisions).toEqual(["RestoreTraffic:auto:policy", "RestoreConfig:auto:policy", "RemoveCreated:approve:bob"].map((x) => expect.stringMatching(new RegExp(`^${x.split(":").slice(0, 2).join(":")}`))));
  });
});

describe("revert on a real local deployment (nginx, Redis, env file)", () => {
  it("restores the env file byte for byte, the nginx split and Redis's policy, and deletes only the keys the run warmed", async () => {
    requireNginx();
    const redis = await startRedisServer();
    const DB = 11;
    const admin = new Redis(`${redis.url}/${DB}`, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const dir = mkdtempSync(join(tmpdir(), "honua-revert-local-"));
    const closers: (() => Promise<unknown> | void)[] = [() => rmSync(dir, { recursive: true, force: true }), () => admin.quit().catch(() => undefined), () => redis.stop()];
    try {
      await admin.connect();
      const policy = ((await admin.config("GET", "maxmemory-policy")) as string[])[1];
      await admin.set("honua:someone-elses-key", "keep");
      const ENV = "# Honua stand-in\nConnectionStrings__DefaultConnection=env:HONUA_LOCAL_DATABASE_URL\nCache__Enabled=true\nCache__KeyPrefix=honua:\nCache__DefaultTtlSeconds=300\n";
      const envFile = join(dir, "candidate.env");
      writeFileSync(join(dir, "primary.env"), ENV);
      writeFileSync(envFile, ENV);
      const TILES = Array.from({ length: 8 }, (_, i) => `/ogc/tiles/collections/parcels/tiles/WebMercatorQuad/12/${100 + i}/${200 + i}`);
      const primary = await startOrigin({ name: "primary", envFile: join(dir, "primary.env"), workMs: 20 });
      const candidate = await startOrigin({ name: "candidate", envFile, workMs: 20 });
      closers.unshift(() => primary.close(), () => candidate.close());
      const include = join(dir, "honua-split.conf");
      const split = { kind: "nginx", include, primary: "honua_primary", candidate: "honua_candidate" } as const;
      const nginx = await startNginx({ dir, include, upstreams: { honua_primary: primary.url, honua_candidate: candidate.url }, initialInclude: renderSplit(NginxTrafficOptions.parse(split), 0) });
      closers.unshift(() => nginx.stop());
      const originalSplit = readFileSync(include, "utf8");
      const raw = {
        deployments: {
          local: {
            provider: "local",
            approvers: ["oncall"],
            // Seconds instead of an hour, and a wide latency band: the test is about what goes back, not the verdict.
            monitoring: { windowMinutes: 0.04, stageMinutes: 0.03, sampleEveryMinutes: 0.01, minSamples: 3, latencyFactor: 10 },
            cache: { redis: { url: `${redis.url}/${DB}`, nodeType: "cache.t4g.small" } },
            metrics: { source: "probe", urls: TILES.map((t) => nginx.url + t), concurrency: 4, pauseMs: 0, minRequestsPerSample: 3, lookbackSeconds: 2, lookbackSamples: 5 },
            config: { kind: "envfile", path: envFile },
            traffic: { ...split, test: nginx.test, reload: nginx.reload, verify: { url: nginx.url + TILES[0], requests: 100 } },
            tiles: { originUrl: primary.url, accessLog: nginx.accessLog, redisKey: "{prefix}tile:{layerId}:{tileMatrixSetId}:{z}:{row}:{col}" },
            cost: { monthlyUsd: { compute: 120, database: 80 } },
          },
        },
        groups: { oncall: ["alice", "bob"] },
      };
      const env = testEnv(join(dir, "home"));
      const engine = await Engine.open({ env, cwd: dir, config: parseConfig(raw, "test", env) });
      closers.unshift(() => engine.close());
      let s = await engine.start({ workflow: "add-caching-layer", deployment: "local", params: { rolloutSteps: [100] } }, "carol", "add redis caching to local");
      while (s.pending) {
        if (s.pending.kind === "inconclusive") throw new Error(`monitoring was inconclusive: ${s.pending.gate.why}`);
        s = await engine.decide(s.run, "alice", "approve", { planHash: s.pending.planHash });
      }
      expect(s.status, s.outcome ?? "").toBe("done");
      expect(readFileSync(envFile, "utf8")).not.toBe(ENV);
      const opts = NginxTrafficOptions.parse(split);
      expect(parseSplit(readFileSync(include, "utf8"), opts)).toBe(100);
      const warmed = await admin.keys("honua:tile:*");
      expect(warmed.length).toBeGreaterThan(0);

      const plan = await engine.revertPlan(s.run, "alice");
      expect(plan.traffic).toEqual([{ feature: "cache", from: 100, to: 0 }]);
      expect(plan.config.find((c) => c.key === "ConnectionStrings__Redis")).toMatchObject({ after: null });
      let r = await engine.revert(s.run, "alice");
      const gates: string[] = [];
      while (r.pending) {
        gates.push(`${r.pending.step}:${r.pending.kind}`);
        if (r.pending.kind === "delete") expect(r.pending.gate.change.resources.map((x) => x.kind)).toEqual(expect.arrayContaining(["keys"]));
        r = await engine.decide(r.run, r.pending.kind === "delete" ? "bob" : "alice", "approve", { planHash: r.pending.planHash });
      }
      expect(r.status, r.outcome ?? "").toBe("done");
      expect(gates).toEqual(["RestoreTraffic:traffic", "RestoreConfig:provision", "RemoveCreated:delete"]);
      expect(readFileSync(envFile, "utf8")).toBe(ENV);
      expect(readFileSync(include, "utf8")).toBe(originalSplit);
      expect(((await admin.config("GET", "maxmemory-policy")) as string[])[1]).toBe(policy);
      for (const k of warmed) expect(await admin.exists(k), k).toBe(0);
      expect(await admin.get("honua:someone-elses-key")).toBe("keep");
    } finally {
      for (const c of closers) await c();
    }
  });
});

