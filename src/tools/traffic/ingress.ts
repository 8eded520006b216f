import { readFile } from "node:fs/promises";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { atomicWrite, textDiff } from "../config/file.js";
import { sha256 } from "../../core/secrets.js";
import { findObject, parseManifest } from "../config/k8s.js";
import type { TrafficRouter } from "../types.js";
import { VerifyOptions, verifyShare } from "./nginx.js";

export const CANARY = "nginx.ingress.kubernetes.io/canary";
export const CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight";

export const IngressTrafficOptions = z
  .object({
    kind: z.literal("ingress"),
    /** The manifest (GitOps folder) holding the canary Ingress; the GitOps controller applies it. */
    path: z.string().min(1),
    /** metadata.name (and namespace) of the canary Ingress, the one pointing at the candidate Service. */
    name: z.string().min(1),
    namespace: z.string().min(1).optional(),
    feature: z.string().min(1).default("cache"),
    /** Optional check through the ingress once the controller has applied the change. */
    verify: VerifyOptions.optional(),
  })
  .strict();
export type IngressTrafficOptions = z.infer<typeof IngressTrafficOptions>;

const ShareResult = z.object({ percent: z.number(), beforeHash: z.string(), afterHash: z.string(), diff: z.string(), observed: z.number().nullable() });

/**
 * ingress-nginx canary annotations on a canary Ingress in a manifest file: `canary: "true"` and
 * `canary-weight: "N"`. The file is edited through the `yaml` document model (comments kept) and written
 * atomically; 0 % keeps the canary Ingress with weight 0, which ingress-nginx serves nothing through.
 */
export class IngressTraffic implements TrafficRouter {
  constructor(
    readonly options: IngressTrafficOptions,
    private readonly log: OpLog,
    private readonly deployment: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  features(): readonly string[] {
    return [this.options.feature];
  }

  private feature(f: string): void {
    if (f !== this.options.feature) throw new AgentError("unavailable", `deployment ${this.deployment}: the canary Ingress moves "${this.options.feature}" traffic, not "${f}"`);
  }

  private target() {
    return { kind: "Ingress", name: this.options.name, namespace: this.options.namespace };
  }

  private async text(): Promise<string> {
    try {
      return await readFile(this.options.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new AgentError("not-found", `traffic.path: ${this.options.path} does not exist`);
      throw e;
    }
  }

  async share(feature: string): Promise<number> {
    this.feature(feature);
    const doc = findObject(parseManifest(await this.text()), this.target(), this.options.path);
    const canary = doc.getIn(["metadata", "annotations", CANARY]);
    if (String(canary) !== "true") return 0;
    const w = Number(doc.getIn(["metadata", "annotations", CANARY_WEIGHT]) ?? 0);
    if (!Number.isFinite(w)) throw new AgentError("bad-input", `${this.options.path}: ${CANARY_WEIGHT} is not a number`);
    return w;
  }

  async setShare(feature: string, percent: number, idempotencyKey: string): Promise<void> {
    this.feature(feature);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new AgentError("bad-input", `traffic share must be an integer 0..100, got ${percent}`);
    await this.log.once(this.deployment, "ingress-share", idempotencyKey, ShareResult, async () => {
      const before = await this.text();
      const docs = parseManifest(before);
      const doc = findObject(docs, this.target(), this.options.path);
      doc.setIn(["metadata", "annotations", CANARY], "true");
      doc.setIn(["metadata", "annotations", CANARY_WEIGHT], String(percent));
      const next = docs.map((d) => d.toString()).join("");
      // Optimistic: the file must not have moved while it was edited in memory.
      if (sha256(await this.text()) !== sha256(before)) throw new AgentError("conflict", `${this.options.path} changed while honua-agent was editing it; nothing was written`);
      if (next !== before) await atomicWrite(this.options.path, next);
      let observed: number | null = null;
      if (this.options.verify) observed = (await verifyShare(this.options.verify, percent, `canary Ingress ${this.options.name}`, this.fetchImpl)).observed;
      return { percent, beforeHash: sha256(before), afterHash: sha256(next), diff: textDiff(before, next, this.options.path), observed };
    });
  }
}
