import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { AgentError, describeIssues } from "../core/errors.js";
import { Engine } from "../engine.js";
import { checkAccess, requireAuthFor, signPath, webSettings, type Access, type WebSettings } from "./auth.js";
import { RunsQuery, runView, runsView } from "./data.js";
import type { Html } from "../core/html.js";
import { errorPage, runPage, runsPage, type Linker } from "./pages.js";

/** Sent with every answer: nothing but inline styles and data: images may load; no script runs; no referrer leaks a link. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

const RunId = z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, "a run id is letters, digits and . _ : - (at most 100)");

export interface WebHandlerOptions {
  /** Where the viewer is mounted (`/web` inside `serve`); signatures are over the path below it. */
  prefix?: string;
  /** Wall clock for link expiry (tests inject one). */
  now?: () => Date;
  /** Runs per page of the list (RUNS_PAGE_SIZE). */
  pageSize?: number;
}

export type WebHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function send(req: IncomingMessage, res: ServerResponse, status: number, body: Html | string, extra: Record<string, string> = {}): void {
  const text = String(body);
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "text/html; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...extra });
  res.end(req.method === "HEAD" ? undefined : text);
}

/** The links a page may carry under the access its request has. */
function linker(s: WebSettings, access: Access & { ok: true }, here: string, prefix: string): Linker {
  return (path, query = {}) => {
    const qs = new URLSearchParams(query).toString();
    if (access.via !== "link") return `${prefix}${path}${qs ? `?${qs}` : ""}`;
    // A link signed for the runs list reaches every run's page; one signed for a run reaches that page only.
    if (path !== here && here !== "/") return null;
    return `${prefix}${signPath(s.secret!, path, access.exp)}${qs ? `&${qs}` : ""}`;
  };
}

/** The viewer's request handler: GET `/` (the runs list) and `/runs/RUN` (a run's page), read-only. */
export function createWebHandler(engine: Engine, settings: WebSettings, o: WebHandlerOptions = {}): WebHandler {
  const prefix = (o.prefix ?? "").replace(/\/+$/, "");
  const now = o.now ?? (() => new Date());
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://viewer.invalid");
    const method = (req.method ?? "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") return send(req, res, 405, "the viewer is read-only: GET only\n", { allow: "GET, HEAD" });
    if (prefix && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return send(req, res, 404, errorPage(404, "not found"));
    const path = url.pathname.slice(prefix.length) || "/";
    const access = checkAccess(settings, { path, query: url.searchParams, authorization: req.headers.authorization }, now().getTime());
    if (!access.ok) return send(req, res, 403, errorPage(403, `forbidden: ${access.reason}`));
    const link = linker(settings, access, path, prefix);
    try {
      if (path === "/") {
        const given = Object.fromEntries([...url.searchParams].filter(([k, v]) => k !== "exp" && k !== "sig" && v !== ""));
        const q = RunsQuery.safeParse(given);
        if (!q.success) return send(req, res, 400, errorPage(400, `bad filter: ${describeIssues(q.error)} (filters: deployment, workflow, status, requester; page)`));
        const hidden: Record<string, string> = access.via === "link" ? { exp: url.searchParams.get("exp")!, sig: url.searchParams.get("sig")! } : {};
        return send(req, res, 200, runsPage(await runsView(engine, q.data, o.pageSize), q.data, link, hidden));
      }
      const m = /^\/runs\/([^/]+)$/.exec(path);
      if (m) {
        let id: string;
        try {
          id = decodeURIComponent(m[1]!);
        } catch {
          return send(req, res, 400, errorPage(400, "bad run id: not valid percent-encoding"));
        }
        const run = RunId.safeParse(id);
        if (!run.success) return send(req, res, 400, errorPage(400, `bad run id: ${describeIssues(run.error)}`));
        return send(req, res, 200, await runPage(await runView(engine, run.data), link));
      }
      return send(req, res, 404, errorPage(404, "not found: the viewer has / (runs) and /runs/RUN"));
    } catch (e) {
      if (e instanceof AgentError && e.code === "not-found") return send(req, res, 404, errorPage(404, e.message));
      if (e instanceof AgentError && e.code === "bad-input") return send(req, res, 400, errorPage(400, e.message));
      console.error(`honua-agent web: ${req.method} ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return send(req, res, 500, errorPage(500, `the page could not be built: ${e instanceof Error ? e.message : String(e)}`));
    }
  };
}

export interface WebOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  host?: string;
  port?: number;
  now?: () => Date;
  pageSize?: number;
}

export interface WebServer {
  url: string;
  settings: WebSettings;
  engine: Engine;
  close(): Promise<void>;
}

/**
 * `honua-agent web`: the viewer on its own port (127.0.0.1:8088 by default). Refuses a non-loopback host without a
 * secret or token before anything is opened.
 */
export async function startWeb(o: WebOptions = {}): Promise<WebServer> {
  const env = o.env ?? process.env;
  const host = o.host ?? "127.0.0.1";
  const port = o.port ?? 8088;
  const settings = webSettings(env);
  requireAuthFor(host, settings);
  const engine = await Engine.open({ env, cwd: o.cwd, now: o.now });
  const handle = createWebHandler(engine, settings, { now: o.now, ...(o.pageSize ? { pageSize: o.pageSize } : {}) });
  const server: Server = createServer((req, res) => void handle(req, res));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e: Error) => reject(new AgentError("bad-input", `cannot listen on ${host}:${port} (${e.message}); pick another --port`)));
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    await engine.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const shown = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  let closed = false;
  return {
    url: `http://${shown}:${addr.port}`,
    settings,
    engine,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await engine.close();
    },
  };
}
