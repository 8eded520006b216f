/**
 * Signed Slack requests fired all at once from a worker thread: its own event loop, like Slack on the other end of
 * the network, so the process under test being busy cannot delay the sending. One worker for the whole bench
 * (starting a thread per burst would be counted in the CPU of each click). Used by bench:slack and bench:slack:replicas.
 */
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { Worker } from "node:worker_threads";

export interface Sent {
  /** Epoch ms (sub-millisecond) just before the request was sent, on the host's wall clock. */
  sentAt: number;
  /** Time to the HTTP response: the ack. */
  ackMs: number;
  /** The HTTP status; 0 when the request failed without one. */
  status: number;
}

const SENDER = `
const { parentPort } = require("node:worker_threads");
const { createHmac } = require("node:crypto");
const { performance } = require("node:perf_hooks");
const { readlinkSync } = require("node:fs");
// Linux: this thread's id, so the process under test can leave the sender's CPU out of its own.
let tid = null;
try { tid = Number(readlinkSync("/proc/thread-self").split("/").pop()); } catch {}
parentPort.postMessage({ tid });
parentPort.on("message", ({ url, clicks, secret }) => {
  fetch(url + "/warmup").then((r) => r.arrayBuffer(), () => undefined).then(() => Promise.all(clicks.map(async ({ id, body }) => {
    const ts = Math.floor(Date.now() / 1000);
    const sig = "v0=" + createHmac("sha256", secret).update("v0:" + ts + ":" + body).digest("hex");
    const headers = { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": String(ts), "x-slack-signature": sig };
    if (id !== undefined) headers["x-bench-click"] = String(id);
    const sentAt = performance.timeOrigin + performance.now();
    try {
      const res = await fetch(url + "/slack/events", { method: "POST", body, headers });
      await res.arrayBuffer();
      return { sentAt, ackMs: performance.timeOrigin + performance.now() - sentAt, status: res.status };
    } catch {
      return { sentAt, ackMs: performance.timeOrigin + performance.now() - sentAt, status: 0 };
    }
  }))).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ error: String(e) }));
});
`;

export class BurstSender {
  private worker: Promise<Worker> | undefined;
  /** The sending thread's Linux thread id (null where /proc/thread-self cannot be read). */
  private tid: number | null = null;

  constructor(private readonly secret: string) {}

  /** Starts the worker once (callers at the same time share it) and learns its thread id (its first message). */
  ready(): Promise<Worker> {
    return (this.worker ??= (async () => {
      const worker = new Worker(SENDER, { eval: true });
      const [hello] = (await once(worker, "message")) as [{ tid: number | null }];
      this.tid = hello.tid;
      return worker;
    })());
  }

  /**
   * CPU ms the sending thread has used so far (Linux schedstat, in ns), NaN where that is not available. It is the
   * load generator's work (signing, undici, reading the acks), Slack's side of the wire: subtracted from the process's
   * CPU, what is left is the agent's own (and the in-process Slack Web API fake's, which is not subtracted).
   */
  cpuMs(): number {
    if (this.tid === null) return NaN;
    try {
      return Number(readFileSync(`/proc/${process.pid}/task/${this.tid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
    } catch {
      return NaN;
    }
  }

  /** Posts every body to `url`/slack/events at once, signed; `id`, when given, goes in an `x-bench-click` header. */
  async send(url: string, clicks: readonly { body: string; id?: number }[]): Promise<Sent[]> {
    const worker = await this.ready();
    const out = await new Promise<unknown>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.postMessage({ url, clicks, secret: this.secret });
    });
    worker.removeAllListeners("error");
    if (!Array.isArray(out)) throw new Error(`burst failed: ${JSON.stringify(out)}`);
    return out as Sent[];
  }

  async close(): Promise<void> {
    await (await this.worker)?.terminate();
  }
}
