import { existsSync } from "node:fs";
import type { AppsV1Api, CoreV1Api, KubeConfig, V1Deployment } from "@kubernetes/client-node";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import { maskUrl } from "../../core/secrets.js";
import { systemClock, type Clock } from "../../core/clock.js";

type Client = typeof import("@kubernetes/client-node");
let client: Promise<Client> | undefined;
/** The client takes over a second to import: loaded when a rollout first runs, not with every command. */
const loadClient = (): Promise<Client> => (client ??= import("@kubernetes/client-node"));

const DNS_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * `config.rollout` of a `kind: k8s` config: the Deployment whose pods load the ConfigMaps/Secrets the agent edits,
 * restarted (as `kubectl rollout restart` does) and waited for (as `kubectl rollout status` does) before a
 * config change counts as applied.
 */
export const RolloutOptions = z
  .object({
    deployment: z.string().max(253).regex(DNS_NAME, "a Deployment name: lower-case letters, digits, '-' and '.' (e.g. honua)"),
    /** Default: config.resource.namespace, else `default`. */
    namespace: z.string().max(63).regex(DNS_LABEL, "a namespace name: lower-case letters, digits and '-' (e.g. geo)").optional(),
    /**
     * true: the agent applies the edited ConfigMap/Secret (server-side apply, field manager honua-agent).
     * false (default): a GitOps controller syncs the folder; the agent waits until the cluster object carries the change.
     */
    apply: z.boolean().default(false),
    /** For the whole of it: the sync (or apply), the restart and the new pods becoming ready. */
    timeoutSeconds: z.number().positive().max(3600, "at most 3600 seconds (an hour)").default(600),
    /** How often the cluster is asked. */
    pollSeconds: z.number().positive().max(60).default(2),
    /** Default: $KUBECONFIG, ~/.kube/config, or the pod's service account when honua-agent runs in the cluster. */
    kubeconfig: z.string().min(1).optional(),
    /** A context of the kubeconfig other than its current one. */
    context: z.string().min(1).optional(),
  })
  .strict();
export type RolloutOptions = z.infer<typeof RolloutOptions>;

export interface ObjectRef {
  kind: "ConfigMap" | "Secret" | "Deployment" | "StatefulSet";
  name: string;
  namespace: string;
}

/** An object the config change edited, with its content as the manifests now hold it. */
export interface ChangedObject {
  ref: ObjectRef;
  manifest: Record<string, unknown>;
}

export const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";
/** Carries the idempotency key of the apply that restarted the pods: a replay finds it and does not restart again. */
export const RESTART_KEY = "honua.io/restart-key";
const FIELD_MANAGER = "honua-agent";

const Restarted = z.object({ generation: z.number(), at: z.string() });
const RolledOut = z.object({ deployment: z.string(), generation: z.number(), restarted: z.boolean(), seconds: z.number() });

const label = (r: { kind: string; namespace: string; name: string }) => `${r.kind} ${r.namespace}/${r.name}`;

/** A Kubernetes API error as a message that never carries what the server echoed (it may hold Secret data). */
function apiError(k8s: Client, e: unknown, what: string, server: string): AgentError {
  if (e instanceof AgentError) return e;
  if (e instanceof k8s.ApiException) {
    const code = e.code;
    let reason = "";
    try {
      const body: unknown = typeof e.body === "string" ? JSON.parse(e.body) : e.body;
      if (body && typeof body === "object" && "reason" in body && typeof body.reason === "string") reason = ` ${body.reason}`;
    } catch {
      // not a Status object: the code says enough
    }
    if (code === 401 || code === 403) return new AgentError("forbidden", `${what}: the Kubernetes API answered ${code}${reason}; the kubeconfig's user needs get and patch on deployments, configmaps and secrets in that namespace`);
    if (code === 404) return new AgentError("not-found", `${what}: not found in the cluster (${code}${reason})`);
    if (code === 409) return new AgentError("conflict", `${what}: the Kubernetes API answered ${code}${reason}`);
    return new AgentError("failed", `${what}: the Kubernetes API answered ${code}${reason}`);
  }
  const err = e as { code?: string; message?: string };
  const why = err.code ?? maskUrl(String(err.message ?? e)).split("\n")[0]!.slice(0, 200);
  return new AgentError("unavailable", `${what}: cannot reach the Kubernetes API at ${maskUrl(server)} (${why}); check config.rollout.kubeconfig / context`);
}

function loadKubeConfig(k8s: Client, o: RolloutOptions): KubeConfig {
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) {
    if (!existsSync(o.kubeconfig)) throw new AgentError("bad-input", `config.rollout.kubeconfig: ${o.kubeconfig} does not exist`);
    try {
      kc.loadFromFile(o.kubeconfig);
    } catch (e) {
      throw new AgentError("bad-input", `config.rollout.kubeconfig: ${o.kubeconfig} is not a kubeconfig (${(e as Error).message.split("\n")[0]})`);
    }
  } else {
    kc.loadFromDefault();
    // With nothing to load the client falls back to http://localhost:8080, which is no cluster of this deployment.
    if (kc.getCurrentCluster()?.name === "cluster" && kc.getCurrentCluster()?.server === "http://localhost:8080" && !process.env.KUBECONFIG) {
      throw new AgentError("unavailable", "no Kubernetes cluster is configured for the rollout: no $KUBECONFIG, no ~/.kube/config, and honua-agent does not run in a pod. Set config.rollout.kubeconfig");
    }
  }
  if (o.context) {
    if (!kc.getContextObject(o.context)) throw new AgentError("bad-input", `config.rollout.context: the kubeconfig has no context ${o.context} (it has ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`);
    kc.setCurrentContext(o.context);
  }
  if (!kc.getCurrentCluster()) throw new AgentError("bad-input", "config.rollout: the kubeconfig's current context names no cluster");
  return kc;
}

/** Plain JSON (the client's typed objects and the manifest's alike), for comparing. */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v ?? null)) as unknown;
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const strings = (v: unknown): Record<string, string> => Object.fromEntries(Object.entries(obj(v)).map(([k, x]) => [k, String(x)]));
const b64 = (v: string) => Buffer.from(v, "base64").toString("utf8");

/** A Secret's keys as the API server stores them (stringData merged into data), decoded. */
const secretData = (m: Record<string, unknown>): Record<string, string> => ({
  ...Object.fromEntries(Object.entries(strings(m.data)).map(([k, v]) => [k, b64(v)])),
  ...strings(m.stringData),
});

/** A container list's env as name -> literal value or the reference it names. */
function envOf(containers: unknown): string {
  const out = (Array.isArray(containers) ? containers : []).map((c) => {
    const co = obj(c);
    const env = (Array.isArray(co.env) ? co.env : []).map((e) => {
      const eo = obj(e);
      const from = obj(eo.valueFrom);
      const ref = Object.entries(from).map(([k, r]) => `${k}:${String(obj(r).name ?? "")}/${String(obj(r).key ?? obj(r).fieldPath ?? "")}`).join(",");
      return [eo.name, ref || String(eo.value ?? "")];
    });
    return [co.name, env, plain(co.envFrom)];
  });
  return JSON.stringify(out);
}

/** True when the cluster object carries the manifest's content (what a GitOps sync would have applied). */
function carries(ref: ObjectRef, manifest: Record<string, unknown>, live: unknown): boolean {
  const l = obj(plain(live));
  if (ref.kind === "ConfigMap") return JSON.stringify(strings(manifest.data)) === JSON.stringify(strings(l.data)) && JSON.stringify(strings(manifest.binaryData)) === JSON.stringify(strings(l.binaryData));
  if (ref.kind === "Secret") {
    const a = secretData(manifest);
    const b = secretData(l);
    return Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);
  }
  const spec = (m: Record<string, unknown>) => obj(obj(obj(m.spec).template).spec).containers;
  return envOf(spec(manifest)) === envOf(spec(l));
}

/** What a Deployment's status says about its rollout: null when done, else what it waits for. */
export function rolloutProgress(d: V1Deployment, generation: number): string | null {
  const s = d.status ?? {};
  const want = Math.max(generation, d.metadata?.generation ?? 0);
  if ((s.observedGeneration ?? 0) < want) return `waiting for the Deployment controller to observe generation ${want}`;
  const progressing = s.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.reason === "ProgressDeadlineExceeded") {
    throw new AgentError("failed", `the rollout exceeded its progress deadline (${progressing.message ?? "ProgressDeadlineExceeded"})`);
  }
  const replicas = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < replicas) return `${updated} of ${replicas} new replicas updated`;
  if (total > updated) return `${total - updated} old replicas pending termination`;
  if (available < updated) return `${available} of ${updated} updated replicas available`;
  return null;
}

/**
 * Makes a config change in Kubernetes live: applies the edited objects (or waits for a GitOps controller to sync
 * them), restarts the Deployment when a ConfigMap or Secret it loads changed, and waits until its new pods are
 * ready. Replay-safe: the restart carries the idempotency key in the pod template (and in the journal), so a
 * replay after a crash does not restart twice but still waits; a completed rollout under a key is not redone.
 */
export class KubernetesRollout {
  readonly deployment: string;
  readonly namespace: string;
  readonly kubeconfig: string | undefined;
  private kc: KubeConfig | undefined;
  private readonly clock: Clock;

  constructor(
    private readonly options: RolloutOptions,
    private readonly log: OpLog,
    private readonly owner: string,
    deps: { kubeConfig?: KubeConfig; clock?: Clock; namespace?: string | undefined } = {},
  ) {
    this.deployment = options.deployment;
    this.kubeconfig = options.kubeconfig;
    this.namespace = options.namespace ?? deps.namespace ?? "default";
    this.kc = deps.kubeConfig;
    this.clock = deps.clock ?? systemClock;
  }

  private get target(): string {
    return `deployment ${this.namespace}/${this.deployment}`;
  }

  /** For the approval card: what happens after the files are written. */
  describe(objects: ObjectRef[]): string {
    const loaded = objects.filter((o) => o.kind === "ConfigMap" || o.kind === "Secret");
    const first = this.options.apply ? `server-side apply ${objects.map(label).join(", ")}` : `wait until the cluster carries ${objects.map(label).join(", ")} (GitOps sync)`;
    const restart = loaded.length ? `rollout restart ${this.target}` : `the rollout of ${this.target}`;
    return `${first}, then ${restart} and wait until its new pods are ready (timeout ${this.options.timeoutSeconds} s)`;
  }

  private async clients(): Promise<{ k8s: Client; apps: AppsV1Api; core: CoreV1Api; server: string }> {
    const k8s = await loadClient();
    this.kc ??= loadKubeConfig(k8s, this.options);
    return { k8s, apps: this.kc.makeApiClient(k8s.AppsV1Api), core: this.kc.makeApiClient(k8s.CoreV1Api), server: this.kc.getCurrentCluster()?.server ?? "?" };
  }

  /**
   * `restartOnlyAfter`: restart only when the pods were restarted under that key (an undo of an apply whose
   * rollout failed: if its restart never happened, the pods still run the config the undo puts back).
   */
  async settle(objects: ChangedObject[], idempotencyKey: string, o: { restartOnlyAfter?: string } = {}): Promise<void> {
    if (this.log.get(this.owner, "k8s-rollout", idempotencyKey, RolledOut)) return;
    const unsupported = objects.find((o) => o.ref.kind === "StatefulSet");
    if (unsupported) throw new AgentError("unavailable", `${label(unsupported.ref)}: the rollout waits for Deployments only; restart the StatefulSet by hand`);
    const { k8s, apps, core, server } = await this.clients();
    const { PatchStrategy, setHeaderOptions } = k8s;
    const started = this.clock.now().getTime();
    const deadline = started + this.options.timeoutSeconds * 1000;
    const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      // A request the API server never answers must not outlive the timeout (real time: this is the network).
      const wait = Math.max(1_000, deadline - this.clock.now().getTime());
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AgentError("unavailable", `${what}: the Kubernetes API at ${maskUrl(server)} did not answer within ${Math.round(wait / 1000)} s`)), wait);
      });
      try {
        return await Promise.race([fn(), hung]);
      } catch (e) {
        throw apiError(k8s, e, what, server);
      } finally {
        clearTimeout(timer);
      }
    };

    for (const changed of objects) {
      const { kind, name } = changed.ref;
      const namespace = changed.ref.namespace;
      const body = { ...changed.manifest, metadata: { ...obj(changed.manifest.metadata), name, namespace } };
      if (this.options.apply) {
        const ssa = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
        const args = { name, namespace, body, fieldManager: FIELD_MANAGER, force: true };
        await call(`server-side apply of ${label(changed.ref)}`, () =>
          kind === "ConfigMap" ? core.patchNamespacedConfigMap(args, ssa) : kind === "Secret" ? core.patchNamespacedSecret(args, ssa) : apps.patchNamespacedDeployment(args, ssa));
        continue;
      }
      // GitOps: the controller applies the folder; the restart must not come before the new content is there.
      for (;;) {
        const live = await call(`reading ${label(changed.ref)}`, () =>
          kind === "ConfigMap" ? core.readNamespacedConfigMap({ name, namespace }) : kind === "Secret" ? core.readNamespacedSecret({ name, namespace }) : apps.readNamespacedDeployment({ name, namespace }),
        ).catch((e: unknown) => {
          if (e instanceof AgentError && e.code === "not-found") return null; // not created by the controller yet
          throw e;
        });
        if (live && carries(changed.ref, changed.manifest, live)) break;
        if (this.clock.now().getTime() >= deadline) {
          throw new AgentError("failed", `${label(changed.ref)} in the cluster does not carry the change after ${this.options.timeoutSeconds} s (config.rollout.apply is false: a GitOps controller is expected to sync the manifests; is it running and is the change committed?); the pods were not restarted`);
        }
        await this.clock.sleep(this.options.pollSeconds * 1000);
      }
    }

    const read = () => call(`reading ${this.target}`, () => apps.readNamespacedDeployment({ name: this.deployment, namespace: this.namespace }));
    const current = await read();
    let generation = current.metadata?.generation ?? 0;
    const restartedUnder = (key: string) => this.log.get(this.owner, "k8s-restart", key, Restarted) !== undefined || current.spec?.template.metadata?.annotations?.[RESTART_KEY] === key;
    const restart = objects.some((x) => x.ref.kind === "ConfigMap" || x.ref.kind === "Secret") && (o.restartOnlyAfter === undefined || restartedUnder(o.restartOnlyAfter));
    if (restart) {
      // The pod template says whether this key's restart happened (a crash may have come before the journal); the
      // journal alone would not do: an apply undone after a failed rollout and then replayed must restart again.
      const done = current.spec?.template.metadata?.annotations?.[RESTART_KEY] === idempotencyKey ? { generation } : undefined;
      if (!done) {
        const at = this.clock.now().toISOString();
        const patch = { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: at, [RESTART_KEY]: idempotencyKey } } } } };
        const patched = await call(`rollout restart of ${this.target}`, () =>
          apps.patchNamespacedDeployment({ name: this.deployment, namespace: this.namespace, body: patch, fieldManager: FIELD_MANAGER }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch)));
        generation = patched.metadata?.generation ?? generation + 1;
        this.log.put(this.owner, "k8s-restart", idempotencyKey, { generation, at });
      } else generation = Math.max(generation, done.generation);
    }

    let last = "";
    for (let d = current; ; d = await read()) {
      const waiting = (() => {
        try {
          return rolloutProgress(d, generation);
        } catch (e) {
          throw new AgentError("failed", `${this.target}: ${(e as Error).message}. See \`kubectl -n ${this.namespace} rollout status deployment/${this.deployment}\``);
        }
      })();
      if (waiting === null) break;
      last = waiting;
      if (this.clock.now().getTime() >= deadline) {
        throw new AgentError("failed", `${this.target} did not finish its rollout within ${this.options.timeoutSeconds} s (${last}). See \`kubectl -n ${this.namespace} rollout status deployment/${this.deployment}\``);
      }
      await this.clock.sleep(this.options.pollSeconds * 1000);
    }
    const seconds = Math.round((this.clock.now().getTime() - started) / 100) / 10;
    this.log.put(this.owner, "k8s-rollout", idempotencyKey, { deployment: `${this.namespace}/${this.deployment}`, generation, restarted: restart, seconds });
  }
}
