import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { EarlyAckReceiver } from "./receiver.js";
import type { SlackMetrics } from "./metrics.js";

/** Slack signs requests with a timestamp; Bolt refuses old ones but not ones from the future. */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

export interface HttpOptions {
  /** Bolt's receiver for /slack/events (HTTP mode); absent in Socket Mode, where only health and metrics are served. */
  receiver?: EarlyAckReceiver;
  metrics: SlackMetrics;
  health(): Promise<Record<string, unknown>>;
  nowMs?: () => number;
  /** Counts connections arriving and requests between arrival and ack (work after acks yields to them). */
  acks?: { acksPending: number; arrivals: number };
  /** Handlers for every path under a prefix (the transcript viewer at `/web`). */
  mounts?: { prefix: string; handle(req: IncomingMessage, res: ServerResponse): void }[];
}

const send = (res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8") => {
  res.writeHead(status, { "content-type": type });
  res.end(body);
};

/**
 * The process's HTTP surface: /slack/events (through Bolt, after refusing future timestamps), /healthz,
 * /metrics. Ack latency is measured here, from the request arriving to the response being sent.
 */
export function createHttpServer(o: HttpOptions): Server {
  const nowMs = o.nowMs ?? Date.now;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    const method = (req.method ?? "GET").toUpperCase();
    if (method === "GET" && path === "/healthz") {
      o.health().then(
        (h) => send(res, 200, JSON.stringify({ ok: true, ...h }), "application/json"),
        (e: unknown) => send(res, 503, JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }), "application/json"),
      );
      return;
    }
    if (method === "GET" && path === "/metrics") {
      o.metrics.registry.metrics().then(
        (text) => send(res, 200, text, o.metrics.registry.contentType),
        (e: unknown) => send(res, 500, e instanceof Error ? e.message : String(e)),
      );
      return;
    }
    if (method === "POST" && path === "/slack/events" && o.receiver) {
      const started = performance.now();
      const ts = Number(req.headers["x-slack-request-timestamp"]);
      if (!Number.isFinite(ts) || ts > Math.floor(nowMs() / 1000) + MAX_CLOCK_SKEW_SECONDS) {
        o.metrics.rejectedRequests.inc({ reason: Number.isFinite(ts) ? "future-timestamp" : "no-timestamp" });
        req.resume();
        send(res, 401, "");
        return;
      }
      if (o.acks) o.acks.acksPending += 1;
      res.on("close", () => {
        if (o.acks) o.acks.acksPending -= 1;
      });
      res.on("finish", () => {
        if (res.statusCode === 401) o.metrics.rejectedRequests.inc({ reason: "signature-or-stale" });
        else o.metrics.ackLatency.observe({ kind: "http" }, (performance.now() - started) / 1000);
      });
      try {
        o.receiver.requestListener(req, res);
      } catch {
        send(res, 404, "");
      }
      return;
    }
    const mount = o.mounts?.find((m) => path === m.prefix || path.startsWith(`${m.prefix}/`));
    if (mount) return mount.handle(req, res);
    send(res, 404, "not found\n");
  });
  server.on("connection", () => {
    if (o.acks) o.acks.arrivals += 1;
  });
  return server;
}
