import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import { AgentError, describeIssues } from "../core/errors.js";

/**
 * The viewer's settings, from the environment: `HONUA_WEB_SECRET` signs links, `HONUA_WEB_TOKEN` is a bearer token,
 * `HONUA_WEB_BASE_URL` is where the Slack report's links point, `HONUA_WEB_LINK_TTL_HOURS` how long they last.
 */
export const WebSettings = z.object({
  secret: z.string().min(32, "HONUA_WEB_SECRET must be at least 32 characters (e.g. openssl rand -hex 32)").nullable(),
  token: z.string().min(32, "HONUA_WEB_TOKEN must be at least 32 characters (e.g. openssl rand -hex 32)").nullable(),
  baseUrl: z
    .url({ protocol: /^https?$/, error: "HONUA_WEB_BASE_URL must be an http(s) URL, e.g. https://honua-agent.example.org" })
    .transform((u) => u.replace(/\/+$/, ""))
    .nullable(),
  linkTtlHours: z.coerce.number().positive("HONUA_WEB_LINK_TTL_HOURS must be a positive number of hours").max(24 * 90, "HONUA_WEB_LINK_TTL_HOURS is at most 2160 (90 days)"),
});
export type WebSettings = z.infer<typeof WebSettings>;

const blank = (v: string | undefined): string | null => (v === undefined || v.trim() === "" ? null : v);

export function webSettings(env: NodeJS.ProcessEnv): WebSettings {
  const r = WebSettings.safeParse({
    secret: blank(env.HONUA_WEB_SECRET),
    token: blank(env.HONUA_WEB_TOKEN),
    baseUrl: blank(env.HONUA_WEB_BASE_URL),
    linkTtlHours: blank(env.HONUA_WEB_LINK_TTL_HOURS) ?? 168,
  });
  if (!r.success) throw new AgentError("bad-input", `viewer settings: ${describeIssues(r.error)}`);
  return r.data;
}

/** 127.0.0.0/8, ::1 and `localhost`: reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^::ffff:127\./.test(h);
  return false;
}

/** Refuses a host other than loopback without a way to check who asks. */
export function requireAuthFor(host: string, s: WebSettings): void {
  if (isLoopback(host) || s.secret !== null || s.token !== null) return;
  throw new AgentError(
    "bad-input",
    `refusing to serve transcripts on ${host} without access control: set HONUA_WEB_SECRET (signed, expiring links) or HONUA_WEB_TOKEN (a bearer token), at least 32 characters each, or bind 127.0.0.1`,
  );
}

const mac = (secret: string, path: string, exp: number): string => createHmac("sha256", secret).update(`${path}\n${exp}`).digest("hex");

/** `?exp=&sig=` for `path` (a pathname), valid until `exp` (Unix seconds). */
export function signPath(secret: string, path: string, exp: number): string {
  return `${path}?exp=${exp}&sig=${mac(secret, path, exp)}`;
}

/** A link to a run's page valid for the configured time, or null when no base URL is configured. */
export function runLink(s: WebSettings, run: string, now: Date): string | null {
  if (s.baseUrl === null) return null;
  const path = `/runs/${encodeURIComponent(run)}`;
  if (s.secret === null) return `${s.baseUrl}${path}`;
  return `${s.baseUrl}${signPath(s.secret, path, Math.floor(now.getTime() / 1000 + s.linkTtlHours * 3600))}`;
}

/** Equal-time comparison of two strings of any lengths (their SHA-256 digests are compared). */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

export type Access =
  | { ok: true; via: "open" | "token" }
  | { ok: true; via: "link"; exp: number }
  | { ok: false; reason: string };

/**
 * Whether a request may see `path`. With neither a secret nor a token configured (loopback only), every request may.
 * Otherwise it needs `Authorization: Bearer <token>` or a link signed for this very path that has not expired.
 */
export function checkAccess(s: WebSettings, req: { path: string; query: URLSearchParams; authorization: string | undefined }, nowMs: number): Access {
  if (s.secret === null && s.token === null) return { ok: true, via: "open" };
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.authorization ?? "")?.[1];
  if (bearer !== undefined) {
    if (s.token !== null && sameSecret(bearer, s.token)) return { ok: true, via: "token" };
    return { ok: false, reason: "the bearer token is not the configured one" };
  }
  const exp = req.query.get("exp");
  const sig = req.query.get("sig");
  if (exp === null || sig === null) return { ok: false, reason: "this page needs a signed link (?exp=&sig=) or a bearer token" };
  if (s.secret === null) return { ok: false, reason: "signed links are not accepted here (no HONUA_WEB_SECRET); use the bearer token" };
  if (!/^\d{1,12}$/.test(exp) || !/^[0-9a-f]{64}$/.test(sig)) return { ok: false, reason: "the link's exp or sig is malformed" };
  const expires = Number(exp);
  if (!sameSecret(sig, mac(s.secret, req.path, expires))) return { ok: false, reason: "the link's signature does not match this page" };
  if (expires * 1000 <= nowMs) return { ok: false, reason: `the link expired at ${new Date(expires * 1000).toISOString()}; ask for a new one` };
  return { ok: true, via: "link", exp: expires };
}
