import { isMap, isScalar, isSeq, parseAllDocuments, type Document, YAMLMap, YAMLSeq } from "yaml";
import { z } from "zod";
import { AgentError } from "../../errors.js";
import type { ConfigChange } from "../../graph/state.js";
import type { OpLog } from "../../providers/oplog.js";
import { FileConfigStore, type ConfigFormat } from "./file.js";

/** Which object in the manifest holds Honua's environment. */
export const K8sTarget = z
  .object({
    kind: z.enum(["ConfigMap", "Deployment", "StatefulSet"]),
    name: z.string().min(1),
    namespace: z.string().min(1).optional(),
    /** Deployment/StatefulSet: the container whose `env` is Honua's; may be left out when there is one container. */
    container: z.string().min(1).optional(),
  })
  .strict();
export type K8sTarget = z.infer<typeof K8sTarget>;

const where = (t: K8sTarget) => `${t.kind} ${t.namespace ? `${t.namespace}/` : ""}${t.name}`;

export function parseManifest(text: string): Document.Parsed[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new AgentError("bad-input", "manifest: not a YAML stream");
  for (const d of docs) {
    // The parser's message quotes the offending lines, which may hold a credential: only its first line is kept.
    if (d.errors.length) throw new AgentError("bad-input", `manifest: ${d.errors[0]!.message.split("\n")[0]!.replace(/:$/, "")}`);
  }
  return docs;
}

/** The document of `target` in a multi-document manifest; exactly one must match. */
export function findObject(docs: Document.Parsed[], target: { kind: string; name: string; namespace?: string | undefined }, what = "manifest"): Document.Parsed {
  const hits = docs.filter((d) =>
    d.get("kind") === target.kind &&
    d.getIn(["metadata", "name"]) === target.name &&
    (target.namespace === undefined || (d.getIn(["metadata", "namespace"]) ?? "default") === target.namespace));
  if (hits.length === 0) throw new AgentError("not-found", `${what}: no ${target.kind} named ${target.name}${target.namespace ? ` in ${target.namespace}` : ""}`);
  if (hits.length > 1) throw new AgentError("bad-input", `${what}: ${hits.length} objects match ${target.kind} ${target.name}; give metadata.namespace`);
  return hits[0]!;
}

function containerEnv(doc: Document.Parsed, t: K8sTarget, create: boolean, removeEmpty = false): YAMLSeq | undefined {
  const containers = doc.getIn(["spec", "template", "spec", "containers"], true);
  if (!isSeq(containers)) throw new AgentError("bad-input", `${where(t)}: spec.template.spec.containers is missing`);
  const items = containers.items.filter(isMap);
  const pick = t.container ? items.filter((c) => c.get("name") === t.container) : items;
  if (pick.length !== 1) {
    throw new AgentError("bad-input", t.container
      ? `${where(t)}: no container named ${t.container}`
      : `${where(t)} has ${items.length} containers; name Honua's with config.resource.container`);
  }
  const c = pick[0]!;
  const env: unknown = c.get("env", true);
  if (removeEmpty) {
    if (isSeq(env) && env.items.length === 0 && !env.flow) c.delete("env"); // a written `env: []` stays
    return undefined;
  }
  if (env === undefined || env === null) {
    if (!create) return undefined;
    const seq = new YAMLSeq();
    c.set("env", seq);
    return seq;
  }
  if (!isSeq(env)) throw new AgentError("bad-input", `${where(t)}: container env is not a list`);
  return env;
}

/** An env entry's value as the agent sees it: literal values as they are, `valueFrom` as a reference it never resolves. */
function envValue(item: YAMLMap): string | undefined {
  const from = item.get("valueFrom", true);
  if (isMap(from)) {
    const secret = from.get("secretKeyRef", true);
    if (isMap(secret)) return `k8s:secret:${String(secret.get("name"))}/${String(secret.get("key"))}`;
    const cm = from.get("configMapKeyRef", true);
    if (isMap(cm)) return `k8s:configmap:${String(cm.get("name"))}/${String(cm.get("key"))}`;
    const field = from.get("fieldRef", true);
    if (isMap(field)) return `k8s:field:${String(field.get("fieldPath"))}`;
    return "k8s:valueFrom";
  }
  const v = item.get("value");
  return v === undefined || v === null ? "" : String(v);
}

/**
 * Honua's environment in a Kubernetes manifest of a GitOps folder: a ConfigMap's `data`, or a Deployment's
 * container `env`. Edits go through the `yaml` document model, so comments, order and the other documents
 * of the stream stay as they were.
 */
export function k8sFormat(target: K8sTarget): ConfigFormat {
  return {
    describe: `Kubernetes ${where(target)}`,
    caseInsensitive: false,
    parse(text) {
      const doc = findObject(parseManifest(text), target);
      const out: Record<string, string> = {};
      if (target.kind === "ConfigMap") {
        const data = doc.get("data", true);
        if (data !== undefined && !isMap(data)) throw new AgentError("bad-input", `${where(target)}: data is not a map`);
        for (const pair of data?.items ?? []) {
          const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
          out[k] = isScalar(pair.value) ? String(pair.value.value ?? "") : String(pair.value ?? "");
        }
        return out;
      }
      for (const item of containerEnv(doc, target, false)?.items ?? []) {
        if (!isMap(item)) continue;
        const v = envValue(item);
        if (v !== undefined) out[String(item.get("name"))] = v;
      }
      return out;
    },
    apply(text, changes: ConfigChange[]) {
      const docs = parseManifest(text);
      const doc = findObject(docs, target);
      if (target.kind === "ConfigMap") {
        for (const c of changes) {
          if (c.after === null) doc.deleteIn(["data", c.key]);
          else doc.setIn(["data", c.key], c.after); // `yaml` quotes strings that would read back as another type
        }
      } else {
        const env = containerEnv(doc, target, changes.some((c) => c.after !== null))!;
        for (const c of changes) {
          const idx = env?.items.findIndex((i) => isMap(i) && i.get("name") === c.key) ?? -1;
          const existing = idx >= 0 ? (env.items[idx] as YAMLMap) : undefined;
          if (existing?.has("valueFrom")) {
            throw new AgentError("conflict", `${where(target)}: ${c.key} comes from ${envValue(existing)}; honua-agent does not overwrite references`);
          }
          if (c.after === null) {
            if (idx >= 0) env.items.splice(idx, 1);
          } else if (existing) existing.set("value", c.after);
          else env.add(doc.createNode({ name: c.key, value: c.after }));
        }
        // An `env` list the agent emptied goes, as it was created for the agent's keys: a rollback gives the original bytes back.
        if (env && env.items.length === 0 && changes.some((c) => c.after === null)) containerEnv(doc, target, false, true);
      }
      return docs.map((d) => d.toString()).join("");
    },
  };
}

export class K8sConfigStore extends FileConfigStore {
  constructor(path: string, target: K8sTarget, log: OpLog, deployment: string) {
    super(path, k8sFormat(target), log, deployment);
  }
}
