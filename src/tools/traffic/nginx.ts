import { spawn } from "node:child_process";
import { readFile, unlink } from "node:fs/promises";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { atomicWrite } from "../config/file.js";
import { maskUrl } from "../../core/secrets.js";
import type { TrafficRouter } from "../types.js";

/** Sampling real requests through the splitter to check the share it serves. */
export const VerifyOptions = z
  .object({
    /** A URL served through the splitter. */
    url: z.url(),
    /** Response header naming the backend that answered (e.g. `add_header X-Honua-Upstream $honua_backend always;`). */
    header: z.string().min(1).default("x-honua-upstream"),
    /** Value of that header when the candidate answered. */
    candidate: z.string().min(1),
    requests: z.number().int().min(20).max(5000).default(300),
    concurrency: z.number().int().min(1).max(64).default(8),
    /** A reload finishes old workers gracefully; keep sampling this long before calling the split wrong. */
    timeoutSeconds: z.number().positive().default(15),
  })
  .strict();
export type VerifyOptions = z.infer<typeof VerifyOptions>;

const Argv = z.array(z.string().min(1)).min(1);

export const NginxTrafficOptions = z
  .object({
    kind: z.literal("nginx"),
    /** The conf include (http context) the agent owns and rewrites; nginx.conf must `include` it. */
    include: z.string().min(1).regex(/^[^*?[\]]*[^*?[\]/]$/, "the one file the agent owns and rewrites, not a glob or a folder (nginx's include may be one; this may not)"),
    /** The feature this splitter moves (the workflows use `cache`). */
    feature: z.string().min(1).default("cache"),
    /** The variable the include sets; `proxy_pass http://$honua_backend;` uses it. */
    variable: z.string().regex(/^\$[A-Za-z_][A-Za-z0-9_]*$/).default("$honua_backend"),
    /** What splits: `$request_id` spreads every request; `$remote_addr` keeps a client on one side. */
    key: z.string().min(1).default("$request_id"),
    /** Upstream names (nginx `upstream` blocks): the current Honua and the one with the change. */
    primary: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    candidate: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    /** Commands, as argv: check the configuration, then reload it. */
    test: Argv.default(["nginx", "-t"]),
    reload: Argv.default(["nginx", "-s", "reload"]),
    verify: VerifyOptions.omit({ candidate: true }).optional(),
  })
  .strict();
export type NginxTrafficOptions = z.infer<typeof NginxTrafficOptions>;

const MARK = "# Managed by honua-agent";
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function renderSplit(o: NginxTrafficOptions, percent: number): string {
  const lines = [
    `${MARK} (feature ${o.feature}): the share of requests sent to ${o.candidate}. Edits here are overwritten.`,
    `split_clients "${o.key}" ${o.variable} {`,
  ];
  if (percent <= 0) lines.push(`    * ${o.primary};`);
  else if (percent >= 100) lines.push(`    * ${o.candidate};`);
  else lines.push(`    ${percent}% ${o.candidate};`, `    * ${o.primary};`);
  lines.push("}", "");
  return lines.join("\n");
}

/** The candidate's share in an include this adapter wrote; a missing file is 0 %. */
export function parseSplit(text: string, o: NginxTrafficOptions): number {
  if (!text.trim()) return 0;
  // Written by the agent, or a hand-made starting point: one split_clients block setting our variable,
  // routing only to the two configured upstreams. Anything else is someone else's file.
  const body = text.split("\n").filter((l) => !/^\s*(#|$)/.test(l)).join("\n");
  const block = new RegExp(`^\\s*split_clients\\s+("[^"]*"|\\S+)\\s+${escapeRe(o.variable)}\\s*\\{([^}]*)\\}\\s*$`).exec(body);
  const entries = block ? [...block[2]!.matchAll(/\s*([0-9.]+%|\*)\s+([A-Za-z0-9_.-]+)\s*;/g)] : [];
  const leftover = block ? block[2]!.replace(/\s*([0-9.]+%|\*)\s+([A-Za-z0-9_.-]+)\s*;/g, "").trim() : "x";
  if (!block || leftover || entries.some((e) => e[2] !== o.primary && e[2] !== o.candidate)) {
    throw new AgentError("conflict", `${o.include} is not a split_clients block for ${o.variable} between ${o.primary} and ${o.candidate}; refusing to interpret or overwrite it`);
  }
  let share = 0;
  for (const [, weight, target] of entries) {
    if (target !== o.candidate) continue;
    share += weight === "*" ? 100 - entries.filter((e) => e[1] !== "*").reduce((a, e) => a + Number(e[1]!.slice(0, -1)), 0) : Number(weight!.slice(0, -1));
  }
  return share;
}

export function run(argv: string[], timeoutMs = 30_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", (e) => resolve({ code: 127, output: `${output}${e.message}` }));
    child.on("close", (code) => resolve({ code: code ?? 1, output: output.trim() }));
  });
}

/** Sends `requests` requests and returns the share (percent) answered by the candidate. */
export async function sampleShare(v: VerifyOptions, fetchImpl: typeof fetch = fetch): Promise<{ percent: number; answered: number; errors: number }> {
  let next = 0, cand = 0, answered = 0, errors = 0;
  const worker = async () => {
    while (next < v.requests) {
      next++;
      try {
        const res = await fetchImpl(v.url, { signal: AbortSignal.timeout(5000), headers: { "cache-control": "no-cache" } });
        await res.arrayBuffer();
        const h = res.headers.get(v.header);
        if (h === null) {
          errors++;
          continue;
        }
        answered++;
        if (h.trim() === v.candidate) cand++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: v.concurrency }, worker));
  return { percent: answered ? (cand / answered) * 100 : NaN, answered, errors };
}

/** Within binomial noise (4 sigma, at least 3 points); 0 and 100 must be exact. */
export function shareMatches(observed: number, expected: number, n: number): boolean {
  if (expected <= 0 || expected >= 100) return observed === expected;
  const p = expected / 100;
  const tol = Math.max(3, 400 * Math.sqrt((p * (1 - p)) / n));
  return Math.abs(observed - expected) <= tol;
}

/** Samples until the served share matches `expected` or the timeout passes; throws with what was seen. */
export async function verifyShare(v: VerifyOptions, expected: number, what: string, fetchImpl: typeof fetch = fetch): Promise<{ observed: number; requests: number }> {
  const deadline = Date.now() + v.timeoutSeconds * 1000;
  let last = { percent: NaN, answered: 0, errors: 0 };
  do {
    last = await sampleShare(v, fetchImpl);
    if (last.answered >= v.requests / 2 && shareMatches(last.percent, expected, last.answered)) return { observed: Number(last.percent.toFixed(1)), requests: last.answered };
    await new Promise((r) => setTimeout(r, 250));
  } while (Date.now() < deadline);
  const seen = last.answered ? `${last.percent.toFixed(1)}% of ${last.answered} answers (${last.errors} without the ${v.header} header or failed)` : `no answer carried the ${v.header} header (${last.errors} requests)`;
  throw new AgentError("failed", `${what} should serve ${expected}% to the candidate; sampling ${maskUrl(v.url)} saw ${seen}`);
}

const ShareResult = z.object({ percent: z.number(), observed: z.number().nullable(), requests: z.number() });
/** Journalled before the include is rewritten: the share nginx served (`from`) and the one being set (`to`). */
const Intent = z.object({ from: z.number(), to: z.number() });
/** Journalled once nginx runs what the include says (reloaded), or still runs what it ran before (test refused). */
const Settled = z.object({ percent: z.number() });

/**
 * nginx `split_clients` as the TrafficRouter: writes the include atomically, `nginx -t` (the old include is put
 * back if the test fails), reloads, then samples real requests through nginx to check the served split.
 */
export class NginxTraffic implements TrafficRouter {
  constructor(
    readonly options: NginxTrafficOptions,
    private readonly log: OpLog,
    private readonly deployment: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  features(): readonly string[] {
    return [this.options.feature];
  }

  private feature(f: string): void {
    if (f !== this.options.feature) throw new AgentError("unavailable", `deployment ${this.deployment}: the nginx splitter moves "${this.options.feature}" traffic, not "${f}"`);
  }

  private async current(): Promise<string> {
    try {
      return await readFile(this.options.include, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return "";
      throw e;
    }
  }

  async share(feature: string): Promise<number> {
    this.feature(feature);
    const onDisk = parseSplit(await this.current(), this.options);
    // A rewrite whose reload was never confirmed (a crash between the two, a failed reload): nginx may be serving
    // either side of it, so the larger share is reported and a rollback to 0 is not skipped.
    const last = this.log.all(this.deployment, "nginx-intent", Intent).at(-1);
    if (last && this.log.get(this.deployment, "nginx-settled", last.key, Settled) === undefined) return Math.max(onDisk, last.result.from, last.result.to);
    return onDisk;
  }

  private async exists(): Promise<boolean> {
    try {
      await readFile(this.options.include);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  /** Puts the include back as it was, including "there was none". */
  private async restore(before: string, existed: boolean): Promise<void> {
    if (existed) await atomicWrite(this.options.include, before);
    else await unlink(this.options.include).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e)));
  }

  async setShare(feature: string, percent: number, idempotencyKey: string): Promise<void> {
    this.feature(feature);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new AgentError("bad-input", `traffic share must be an integer 0..100, got ${percent}`);
    const o = this.options;
    await this.log.once(this.deployment, "nginx-share", idempotencyKey, ShareResult, async () => {
      const existed = await this.exists();
      const before = await this.current();
      const from = parseSplit(before, o); // refuses a file the agent does not own
      const next = renderSplit(o, percent);
      this.log.put(this.deployment, "nginx-intent", idempotencyKey, { from, to: percent });
      if (next !== before) await atomicWrite(o.include, next);
      // Tested and reloaded even when the include already reads `next`: a replay after a crash between the write
      // and the reload finds the file written but nginx still serving the old split.
      const t = await run(o.test);
      if (t.code !== 0) {
        if (next !== before) await this.restore(before, existed);
        this.log.put(this.deployment, "nginx-settled", idempotencyKey, { percent: from });
        throw new AgentError("failed", `nginx rejected the split (${o.test.join(" ")} exited ${t.code}); the previous include is back and nothing was reloaded: ${t.output.slice(-800)}`);
      }
      const r = await run(o.reload);
      if (r.code !== 0) {
        if (next !== before) await this.restore(before, existed);
        throw new AgentError("failed", `${o.reload.join(" ")} exited ${r.code}; the previous include is back: ${r.output.slice(-800)}`);
      }
      this.log.put(this.deployment, "nginx-settled", idempotencyKey, { percent });
      if (!o.verify) return { percent, observed: null, requests: 0 };
      const seen = await verifyShare({ ...o.verify, candidate: o.candidate }, percent, `nginx (${o.include})`, this.fetchImpl);
      return { percent, observed: seen.observed, requests: seen.requests };
    });
  }
}
