import type { AddressInfo } from "node:net";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { LogLevel, webApi } from "@slack/bolt";
import { z } from "zod";
import type { LoadedConfig } from "../config.js";
import { Engine } from "../engine.js";
import { AgentError, describeIssues } from "../core/errors.js";
import type { EventSink } from "../graph/events.js";
import { planRequest } from "../planner/index.js";
import type { PlanResult } from "../planner/plan.js";
import { ApproverDirectory } from "./approvers.js";
import { createSlackApp, stopSlackApp } from "./app.js";
import type { Converse, SlackDeps } from "./context.js";
import { loadConverse } from "./controls.js";
import { GateWatcher } from "./expiry.js";
import { createHttpServer } from "./http.js";
import { isLoopback, runLink, webSettings } from "../web/auth.js";
import { lazyModule } from "../core/lazy.js";
import { slackMetrics } from "./metrics.js";
import { RATE } from "./limits.js";
import { ThreadNotifier } from "./notifier.js";
import { slackSettings } from "./settings.js";
import { SlackStore } from "./store.js";
import { Tasks, oneAtATime } from "./tasks.js";

export interface ServeOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  config?: LoadedConfig;
  /** Wall clock for approval expiry (engine and timer); tests inject a simulated one. */
  now?: () => Date;
  /** Overrides PORT/HOST (tests: 0 and 127.0.0.1). */
  port?: number;
  host?: string;
  /** Expiry timer period; 0 disables the timer (tests call tick()). Default 30 s. */
  expiryIntervalMs?: number;
  /** Minimum time between two edits of a progress message. Default 1.2 s (chat.update's Tier 3: 50 a minute). */
  progressIntervalMs?: number;
  /** Web API retries (Slack's client default when unset). */
  clientRetries?: number;
  /** Also receives every engine event (benchmarks). */
  onEvent?: EventSink;
  /** Replaces the planner (default: planRequest, the model when configured, else the offline rules). */
  plan?: (text: string) => Promise<PlanResult>;
  logLevel?: LogLevel;
  /** Replaces the conversation module for thread text (null: none, plain commands only). */
  converse?: Converse | null;
  /** Most runs going on after their next step started at once (HONUA_SLACK_DRIVE_POOL, default 3). */
  drivePool?: number;
  /** How often runs whose driver is gone are looked for and taken over; 0 disables it (tests call takeOver()). Default: the heartbeat. */
  takeoverIntervalMs?: number;
}

const ServeEnv = z.object({
  HONUA_SLACK_DRIVE_POOL: z.coerce.number().int().min(1).max(64).optional(),
  HONUA_SLACK_EXPIRY_INTERVAL_MS: z.coerce.number().int().min(0).max(3_600_000).optional(),
});

/** The scheduling settings `serve` reads from the environment; a malformed one is refused before anything starts. */
function serveEnv(env: NodeJS.ProcessEnv): z.infer<typeof ServeEnv> {
  const parsed = ServeEnv.safeParse({
    HONUA_SLACK_DRIVE_POOL: env.HONUA_SLACK_DRIVE_POOL || undefined,
    HONUA_SLACK_EXPIRY_INTERVAL_MS: env.HONUA_SLACK_EXPIRY_INTERVAL_MS || undefined,
  });
  if (!parsed.success) throw new AgentError("bad-input", `serve settings: ${describeIssues(parsed.error, "env")}; nothing was started`);
  return parsed.data;
}

export interface SlackServer {
  mode: "socket" | "http";
  /** Base URL of the HTTP surface (/slack/events in HTTP mode, /healthz, /metrics). */
  url: string;
  engine: Engine;
  /** One pass of the expiry timer. */
  tick(): Promise<void>;
  /** One pass of the takeover timer: runs whose driver is gone are resumed here (those this replica won). */
  takeOver(): Promise<string[]>;
  /** Resolves when all work started by Slack requests so far has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * `honua-agent serve`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP at /slack/events; /healthz and
 * /metrics in both. Refuses to start, naming the variable, when the configuration is incomplete.
 */
export async function startServer(opts: ServeOptions = {}): Promise<SlackServer> {
  const env = opts.env ?? process.env;
  const settings = slackSettings(env);
  const scheduling = serveEnv(env);
  const now = opts.now ?? (() => new Date());
  // Read before anything opens: a bad viewer setting refuses the start, naming the variable.
  const viewer = webSettings(env);
  let notifier: ThreadNotifier | undefined;
  const tasks = new Tasks((e, label) => console.error(`honua-agent slack: ${label}: ${e instanceof Error ? e.stack : String(e)}`), { poolSize: opts.drivePool ?? scheduling.HONUA_SLACK_DRIVE_POOL });
  const engine = await Engine.open({
    env, cwd: opts.cwd, config: opts.config, now,
    stepStarted: () => tasks.stepStarted(),
    onEvent: (e) => {
      notifier?.onEvent(e);
      opts.onEvent?.(e);
    },
  });
  let http: Server | undefined;
  try {
    const client = new webApi.WebClient(settings.botToken, {
      ...(settings.apiUrl ? { slackApiUrl: settings.apiUrl } : {}),
      ...(opts.clientRetries !== undefined ? { retryConfig: { retries: opts.clientRetries } } : {}),
      logLevel: opts.logLevel ?? LogLevel.WARN,
    });
    let identity = settings.botUserId && settings.botId ? { botUserId: settings.botUserId, botId: settings.botId } : undefined;
    if (!identity) {
      const auth = await client.auth.test().catch((e: unknown) => {
        throw new AgentError("bad-input", `SLACK_BOT_TOKEN was not accepted by Slack (auth.test: ${e instanceof Error ? e.message : String(e)})`);
      });
      if (!auth.user_id || !auth.bot_id) throw new AgentError("bad-input", "SLACK_BOT_TOKEN is not a bot token (auth.test returned no bot user)");
      identity = { botUserId: auth.user_id, botId: auth.bot_id };
    }
    const store = new SlackStore(engine.store.sql, engine.store.lightSql);
    await store.setup();
    const metrics = slackMetrics(engine);
    const directory = new ApproverDirectory(client, engine.config.config);
    const paced = oneAtATime(engine, tasks);
    notifier = new ThreadNotifier({ client, engine: paced, store, directory, tasks, metrics, now, progressIntervalMs: opts.progressIntervalMs ?? RATE.progressEditMs, viewerLink: (run) => runLink(viewer, run, now()) });
    let converse: Promise<Converse | null> | undefined;
    const deps: SlackDeps = {
      engine: paced, client, store, notifier, directory, tasks, metrics, now, env, botUserId: identity.botUserId,
      plan: opts.plan ?? ((text) => planRequest(text, engine.config.config, env)),
      converse: () => (converse ??= opts.converse !== undefined ? Promise.resolve(opts.converse) : loadConverse().catch((e: unknown) => {
        console.error(`honua-agent slack: the conversation module failed to load: ${e instanceof Error ? e.message : String(e)}`);
        return null;
      })),
    };
    const slack = createSlackApp(settings, identity, deps, { clientRetries: opts.clientRetries, logLevel: opts.logLevel });
    const watcher = new GateWatcher(paced, notifier, store, now);
    const port = opts.port ?? settings.port;
    const host = opts.host ?? settings.host;
    http = createHttpServer({
      mounts: [{ prefix: "/web", handle: viewerRoute(engine, viewer, host, now) }],
      receiver: slack.receiver,
      metrics,
      acks: tasks,
      health: async () => {
        await engine.store.sql.query("SELECT 1 AS ok");
        return { mode: settings.mode, state: engine.persistence.location };
      },
    });
    const listening = http;
    await new Promise<void>((resolve, reject) => {
      listening.once("error", (e: Error) => reject(new AgentError("bad-input", `cannot listen on ${host}:${port} (${e.message}); set PORT (and HOST) to a free port`)));
      listening.listen(port, host, () => resolve());
    });
    if (settings.mode === "socket") {
      await slack.app.start().catch((e: unknown) => {
        // Slack answered (invalid_auth, not_allowed_token_type...): the app-level token is the problem.
        if (e && typeof e === "object" && "code" in e && e.code === "slack_webapi_platform_error") {
          throw new AgentError("bad-input", `SLACK_APP_TOKEN was not accepted by Slack (apps.connections.open: ${e instanceof Error ? e.message : String(e)}); it needs the connections:write scope`);
        }
        throw e;
      });
    }
    const interval = opts.expiryIntervalMs ?? scheduling.HONUA_SLACK_EXPIRY_INTERVAL_MS ?? 30_000;
    let ticking: Promise<void> | undefined;
    const tick = (): Promise<void> => (ticking ??= watcher.tick().finally(() => (ticking = undefined)));
    const timer = interval > 0 ? setInterval(() => void tick().catch((e: unknown) => console.error(`honua-agent slack: expiry timer: ${e instanceof Error ? e.message : String(e)}`)), interval) : undefined;
    timer?.unref();
    // Replicas share the store: a run whose driver was killed is resumed by whichever replica claims it first.
    // Each resume goes on in the background (a watch window can take an hour); a run is taken over once here.
    let taking: Promise<string[]> | undefined;
    const resuming = new Set<string>();
    const takeOver = (): Promise<string[]> => (taking ??= (async () => {
      const started: string[] = [];
      for (const run of await engine.orphans()) {
        if (resuming.has(run)) continue;
        resuming.add(run);
        started.push(run);
        void tasks.track(paced.resume(run).then(
          (s) => notifier?.settle(run, s),
          (e: unknown) => {
            // Another replica claimed it first: it drives the run now.
            if (!(e instanceof AgentError && e.code === "conflict")) notifier?.report(run, e);
          },
        ).finally(() => resuming.delete(run)));
      }
      return started;
    })().finally(() => (taking = undefined)));
    const takeoverMs = opts.takeoverIntervalMs ?? engine.lease.heartbeatMs;
    const takeoverTimer = takeoverMs > 0 ? setInterval(() => void takeOver().catch((e: unknown) => console.error(`honua-agent slack: takeover: ${e instanceof Error ? e.message : String(e)}`)), takeoverMs) : undefined;
    takeoverTimer?.unref();
    const addr = listening.address() as AddressInfo;
    const shown = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    let closed = false;
    return {
      mode: settings.mode,
      url: `http://${shown === "0.0.0.0" ? "127.0.0.1" : shown}:${addr.port}`,
      engine,
      tick,
      takeOver,
      idle: () => tasks.idle(),
      async close() {
        if (closed) return;
        closed = true;
        if (timer) clearInterval(timer);
        if (takeoverTimer) clearInterval(takeoverTimer);
        await ticking?.catch(() => undefined);
        await taking?.catch(() => undefined);
        await tasks.idle();
        notifier?.close();
        await stopSlackApp(slack);
        await new Promise<void>((resolve) => listening.close(() => resolve()));
        await engine.close();
      },
    };
  } catch (e) {
    if (http?.listening) await new Promise<void>((resolve) => http!.close(() => resolve()));
    await engine.close();
    throw e;
  }
}

/**
 * The transcript viewer at /web (docs/web.md), loaded when first asked for. Off a loopback host it needs
 * HONUA_WEB_SECRET or HONUA_WEB_TOKEN; without either it answers 403 saying so (Slack keeps working).
 */
function viewerRoute(engine: Engine, viewer: ReturnType<typeof webSettings>, host: string, now: () => Date) {
  const off = isLoopback(host) || viewer.secret !== null || viewer.token !== null ? null : `the transcript viewer is off: serve listens on ${host}; set HONUA_WEB_SECRET or HONUA_WEB_TOKEN to turn it on`;
  const handler = lazyModule(() => import("../web/server.js").then((m) => m.createWebHandler(engine, viewer, { prefix: "/web", now })));
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (off) {
      res.writeHead(403, { "content-type": "text/plain; charset=utf-8" });
      res.end(`${off}\n`);
      return;
    }
    void handler().then((h) => h(req, res)).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end(`the transcript viewer failed: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  };
}
