import { AgentError } from "../../core/errors.js";
import { maskUrl } from "../../core/secrets.js";

/** One HTTP call with a timeout; a network failure names the service and URL. */
export async function call(what: string, url: string, init: RequestInit = {}, timeoutMs = 15_000): Promise<{ status: number; text: string }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new AgentError("unavailable", `${what} at ${maskUrl(url)} is not reachable: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { status: res.status, text: await res.text() };
}

export async function callJson(what: string, url: string, init: RequestInit = {}): Promise<unknown> {
  const r = await call(what, url, init);
  if (r.status < 200 || r.status >= 300) throw new AgentError("failed", `${what} answered ${r.status} to ${init.method ?? "GET"} ${maskUrl(url)}: ${r.text.slice(0, 300)}`);
  try {
    return JSON.parse(r.text) as unknown;
  } catch {
    throw new AgentError("failed", `${what} answered ${maskUrl(url)} with something that is not JSON: ${r.text.slice(0, 120)}`);
  }
}

/** Samples of `name` in a Prometheus text exposition, each with its labels. */
export function exposition(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) continue;
    const m = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[1] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}
