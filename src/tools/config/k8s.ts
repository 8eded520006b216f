import { readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { isMap, isScalar, isSeq, parseAllDocuments, type Document, type Node, type Scalar, type YAMLMap, type YAMLSeq } from "yaml";
import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { ConfigChange } from "../../core/sections.js";
import type { OpLog } from "../../store/oplog.js";
import type { ObjectRef, KubernetesRollout } from "../rollout/k8s.js";
import { FileConfigStore, type ConfigLayout, type ConfigSnapshot } from "./file.js";
import { isSecretLiteral, secretMarker } from "../../core/secrets.js";
import { appendEnvItem, columnOf, eolOf, insertPair, newEnvBlock, removePair, removeSeqItem, renderKey, renderScalar, replaceScalar, seqIndentOf } from "./yamledit.js";

/** Which object in the manifests is the configured target: where a key that is set nowhere yet is added. */
export const K8sTarget = z
  .object({
    kind: z.enum(["ConfigMap", "Secret", "Deployment", "StatefulSet"]),
    name: z.string().min(1),
    namespace: z.string().min(1).optional(),
    /** The container whose environment is Honua's (of the Deployment, or of the one that loads this ConfigMap/Secret); may be left out when there is one. */
    container: z.string().min(1).optional(),
  })
  .strict();
export type K8sTarget = z.infer<typeof K8sTarget>;

const where = (t: { kind: string; name: string; namespace?: string | undefined }) => `${t.kind} ${t.namespace ? `${t.namespace}/` : ""}${t.name}`;

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

/** One document of the manifests, with where it is. */
interface Obj {
  path: string;
  index: number;
  doc: Document.Parsed;
  kind: string;
  name: string;
  /** metadata.namespace, or the namespace the deployment is configured with. */
  namespace: string;
}

/** Where a setting's value is written: a ConfigMap/Secret key, a container's `env` entry, or a reference nothing here resolves. */
type Place =
  | { kind: "data"; obj: Obj; field: "data" | "stringData"; key: string; via?: { obj: Obj; container: number; index: number } }
  | { kind: "env"; obj: Obj; container: number; index: number }
  | { kind: "ref"; obj: Obj; ref: string }
  | { kind: "image"; obj: Obj; container: number };

/**
 * Honua's container image, read and written like a key of its environment (journalled, undone, diffed the same
 * way) so a new Honua version is rolled out through the same apply-then-wait as a config change. `@` is not a
 * character any environment key of Honua's has.
 */
export const IMAGE_KEY = "@image";

/** `registry/honua-server:1.3.0` with its tag (or digest) replaced by `version`. */
export function imageWithVersion(image: string, version: string): string {
  const at = image.indexOf("@");
  const base = at >= 0 ? image.slice(0, at) : image;
  const slash = base.lastIndexOf("/");
  const colon = base.lastIndexOf(":");
  const repo = colon > slash ? base.slice(0, colon) : base;
  return `${repo}:${version}`;
}

interface Entry {
  value: string;
  secret: boolean;
  place: Place;
}

const str = (v: unknown): string => (isScalar(v) ? String(v.value ?? "") : v === undefined || v === null ? "" : String(v));
const decode = (b64: string): string => Buffer.from(b64, "base64").toString("utf8");
const encode = (value: string): string => Buffer.from(value, "utf8").toString("base64");
const refOf = (o: Obj): ObjectRef => ({ kind: o.kind as ObjectRef["kind"], name: o.name, namespace: o.namespace });

export interface K8sLayoutOptions {
  /** A manifest file, or a folder whose *.yaml / *.yml files are read together. */
  path: string;
  target: K8sTarget;
  /** The namespace of objects that name none (the rollout's, or the target's, or `default`). */
  namespace: string;
  /** The Deployment whose environment this is, when the target is a ConfigMap/Secret it loads (else found by its envFrom). */
  workload?: string | undefined;
}

/** Everything the manifests say about Honua's environment. */
interface Model {
  objects: Obj[];
  entries: Map<string, Entry>;
  target: Obj;
  /** The workload and container whose environment this is, when the manifests hold it. */
  container: { obj: Obj; index: number; map: YAMLMap } | null;
  /** envFrom sources the manifests do not hold: their keys are not seen. */
  unseen: string[];
}

/**
 * Honua's environment as Kubernetes assembles it from a manifest stream or a folder of manifests (a GitOps
 * folder, or what `helm template` renders): the container's `envFrom` ConfigMaps and Secrets in order (a later
 * source wins over an earlier one), then its `env` list (which wins over every `envFrom` source; a later entry over
 * an earlier one), with `valueFrom` references resolved when the object they name is there. A Secret's `data` is
 * base64 (read decoded, written encoded), its `stringData` plain and winning over `data`. Edits are spliced into
 * the text of the one document they touch: every other byte of every file stays as it was.
 */
export class K8sLayout implements ConfigLayout {
  readonly describe: string;

  constructor(private readonly o: K8sLayoutOptions) {
    this.describe = `Kubernetes ${where(o.target)}`;
  }

  async paths(): Promise<string[]> {
    const s = await stat(this.o.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") throw new AgentError("not-found", `${this.describe}: ${this.o.path} does not exist`);
      throw e;
    });
    if (!s.isDirectory()) return [this.o.path];
    const names = (await readdir(this.o.path)).filter((n) => [".yaml", ".yml"].includes(extname(n)) && !n.startsWith(".")).sort();
    if (names.length === 0) throw new AgentError("not-found", `${this.describe}: ${this.o.path} holds no *.yaml or *.yml manifest`);
    return names.map((n) => join(this.o.path, n));
  }

  private model(files: ReadonlyMap<string, string>): Model {
    const objects: Obj[] = [];
    for (const [path, text] of files) {
      let docs: Document.Parsed[];
      try {
        docs = parseManifest(text);
      } catch (e) {
        if (e instanceof AgentError && files.size > 1) throw new AgentError(e.code, `${path}: ${e.message}`);
        throw e;
      }
      docs.forEach((doc, index) => {
        const kind = doc.get("kind");
        const name = doc.getIn(["metadata", "name"]);
        if (typeof kind !== "string" || typeof name !== "string") return;
        const ns = doc.getIn(["metadata", "namespace"]);
        objects.push({ path, index, doc, kind, name, namespace: typeof ns === "string" ? ns : this.o.namespace });
      });
    }
    const t = this.o.target;
    const find = (kind: string, name: string, namespace?: string): Obj | undefined => {
      const hits = objects.filter((x) => x.kind === kind && x.name === name && (namespace === undefined || x.namespace === namespace));
      if (hits.length > 1) throw new AgentError("bad-input", `${this.o.path}: ${hits.length} objects are ${kind} ${name}${namespace ? ` in ${namespace}` : ""}; give metadata.namespace`);
      return hits[0];
    };
    const target = find(t.kind, t.name, t.namespace);
    if (!target) throw new AgentError("not-found", `${this.o.path}: no ${t.kind} named ${t.name}${t.namespace ? ` in ${t.namespace}` : ""}`);

    const container = this.workload(objects, target, find);
    const entries = new Map<string, Entry>();
    const unseen: string[] = [];
    const dataOf = (obj: Obj): [string, string, "data" | "stringData"][] => {
      const out: [string, string, "data" | "stringData"][] = [];
      for (const field of obj.kind === "Secret" ? (["data", "stringData"] as const) : (["data"] as const)) {
        const m = obj.doc.get(field, true);
        if (m === undefined || m === null || (isScalar(m) && m.value === null)) continue;
        if (!isMap(m)) throw new AgentError("bad-input", `${where(obj)}: ${field} is not a map`);
        for (const p of m.items) out.push([str(p.key), field === "data" && obj.kind === "Secret" ? decode(str(p.value)) : str(p.value), field]);
      }
      return out;
    };
    const load = (obj: Obj, prefix = "") => {
      for (const [key, value, field] of dataOf(obj)) entries.set(prefix + key, { value, secret: obj.kind === "Secret", place: { kind: "data", obj, field, key } });
    };
    if (!container) {
      load(target);
      return { objects, entries, target, container, unseen };
    }
    const { obj: wl, map } = container;
    const image = map.get("image", true);
    if (isScalar(image) && typeof image.value === "string" && image.value) entries.set(IMAGE_KEY, { value: image.value, secret: false, place: { kind: "image", obj: wl, container: container.index } });
    const envFrom = map.get("envFrom", true);
    for (const src of isSeq(envFrom) ? envFrom.items : []) {
      if (!isMap(src)) continue;
      const prefix = str(src.get("prefix", true));
      for (const [field, kind] of [["configMapRef", "ConfigMap"], ["secretRef", "Secret"]] as const) {
        const ref = src.get(field, true);
        if (!isMap(ref)) continue;
        const name = str(ref.get("name", true));
        const obj = find(kind, name, wl.namespace);
        if (obj) load(obj, prefix);
        else unseen.push(`${kind} ${name}`);
      }
    }
    const env = map.get("env", true);
    (isSeq(env) ? env.items : []).forEach((item, index) => {
      if (!isMap(item)) return;
      const name = str(item.get("name", true));
      const from = item.get("valueFrom", true);
      if (!isMap(from)) {
        entries.set(name, { value: str(item.get("value", true)), secret: false, place: { kind: "env", obj: wl, container: container.index, index } });
        return;
      }
      for (const [field, kind, label] of [["secretKeyRef", "Secret", "secret"], ["configMapKeyRef", "ConfigMap", "configmap"]] as const) {
        const ref = from.get(field, true);
        if (!isMap(ref)) continue;
        const refName = str(ref.get("name", true));
        const key = str(ref.get("key", true));
        const obj = find(kind, refName, wl.namespace);
        const hit = obj ? dataOf(obj).filter(([k]) => k === key).at(-1) : undefined;
        entries.set(name, obj && hit
          ? { value: hit[1], secret: kind === "Secret", place: { kind: "data", obj, field: hit[2], key, via: { obj: wl, container: container.index, index } } }
          : { value: `k8s:${label}:${refName}/${key}`, secret: false, place: { kind: "ref", obj: wl, ref: `k8s:${label}:${refName}/${key}` } });
        return;
      }
      const field = from.get("fieldRef", true);
      const ref = isMap(field) ? `k8s:field:${str(field.get("fieldPath", true))}` : "k8s:valueFrom";
      entries.set(name, { value: ref, secret: false, place: { kind: "ref", obj: wl, ref } });
    });
    return { objects, entries, target, container, unseen };
  }

  /** The container whose environment this is: the target's own, or that of the workload loading the target. */
  private workload(objects: Obj[], target: Obj, find: (kind: string, name: string, ns?: string) => Obj | undefined): Model["container"] {
    const t = this.o.target;
    const pick = (obj: Obj, wanted: (c: YAMLMap) => boolean, required: boolean): Model["container"] => {
      const containers = obj.doc.getIn(["spec", "template", "spec", "containers"], true);
      if (!isSeq(containers)) {
        if (!required) return null;
        throw new AgentError("bad-input", `${where(obj)}: spec.template.spec.containers is missing`);
      }
      const all = containers.items.map((c, index) => ({ c, index })).filter((x): x is { c: YAMLMap; index: number } => isMap(x.c));
      const named = all.filter((x) => (t.container === undefined || x.c.get("name") === t.container) && wanted(x.c));
      if (named.length === 1) return { obj, index: named[0]!.index, map: named[0]!.c };
      if (!required && named.length === 0) return null; // a workload that does not load the target is not Honua's
      if (t.container) throw new AgentError("bad-input", `${where(obj)}: no container named ${t.container}`);
      throw new AgentError("bad-input", `${where(obj)} has ${named.length || all.length} containers${required ? "" : ` loading ${where(t)}`}; name Honua's with config.resource.container`);
    };
    if (t.kind === "Deployment" || t.kind === "StatefulSet") return pick(target, () => true, true);
    const loads = (c: YAMLMap): boolean => {
      const refKind = target.kind === "Secret" ? ["secretRef", "secretKeyRef"] : ["configMapRef", "configMapKeyRef"];
      const hit = (m: unknown): boolean => isMap(m) && refKind.some((k) => { const r = m.get(k, true); return isMap(r) && str(r.get("name", true)) === target.name; });
      const envFrom = c.get("envFrom", true);
      const env = c.get("env", true);
      return (isSeq(envFrom) && envFrom.items.some(hit)) || (isSeq(env) && env.items.some((i) => isMap(i) && hit(i.get("valueFrom", true))));
    };
    const candidates = this.o.workload !== undefined
      ? [find("Deployment", this.o.workload, target.namespace)].filter((x): x is Obj => x !== undefined)
      : objects.filter((x) => (x.kind === "Deployment" || x.kind === "StatefulSet") && x.namespace === target.namespace);
    const consumers = candidates.map((obj) => pick(obj, loads, false)).filter((x): x is NonNullable<Model["container"]> => x !== null);
    if (consumers.length > 1) {
      throw new AgentError("bad-input", `${where(target)} is loaded by ${consumers.map((c) => where(c.obj)).join(" and ")}; name the one that runs Honua with config.rollout.deployment`);
    }
    if (this.o.workload !== undefined && candidates.length === 1 && consumers.length === 0) {
      throw new AgentError("bad-input", `${where(candidates[0]!)} does not load ${where(target)} (no envFrom or valueFrom names it): a key added there would never reach Honua`);
    }
    return consumers[0] ?? null;
  }

  parse(files: ReadonlyMap<string, string>): ConfigSnapshot {
    const m = this.model(files);
    const values: Record<string, string> = {};
    const secret = new Set<string>();
    for (const [k, e] of m.entries) {
      values[k] = e.value;
      if (e.secret) secret.add(k);
    }
    return { values, secret };
  }

  /** The objects `changes` write to (a new key: the target). */
  touched(files: ReadonlyMap<string, string>, changes: ConfigChange[]): ObjectRef[] {
    const m = this.model(files);
    const out = new Map<string, ObjectRef>();
    for (const c of changes) {
      const e = m.entries.get(c.key);
      const obj = e ? (e.place.kind === "data" && e.place.via && c.after === null ? e.place.via.obj : e.place.obj) : c.after === null ? null : m.target;
      if (obj) out.set(`${obj.kind}/${obj.namespace}/${obj.name}`, refOf(obj));
    }
    return [...out.values()];
  }

  /** The envFrom sources the manifests do not hold. */
  unseen(files: ReadonlyMap<string, string>): string[] {
    return this.model(files).unseen;
  }

  /** The object `ref` as plain JSON, from the current files (what is applied to the cluster). */
  manifestOf(files: ReadonlyMap<string, string>, ref: ObjectRef): Record<string, unknown> {
    const obj = this.model(files).objects.find((o) => o.kind === ref.kind && o.name === ref.name && o.namespace === ref.namespace);
    if (!obj) throw new AgentError("not-found", `${this.o.path}: no ${where(ref)}`);
    return obj.doc.toJS() as Record<string, unknown>;
  }

  apply(files: ReadonlyMap<string, string>, changes: ConfigChange[]): Map<string, string> {
    const texts = new Map(files);
    const touched = new Set<string>();
    for (const c of changes) {
      const m = this.model(texts);
      const e = m.entries.get(c.key);
      const { path, text } = this.edit(m, texts, c, e);
      texts.set(path, text);
      touched.add(path);
    }
    return new Map([...touched].map((p) => [p, texts.get(p)!]));
  }

  private edit(m: Model, texts: ReadonlyMap<string, string>, c: ConfigChange, e: Entry | undefined): { path: string; text: string } {
    if (e?.place.kind === "ref") {
      throw new AgentError("conflict", `${where(e.place.obj)}: ${c.key} comes from ${e.place.ref}${e.place.ref.startsWith("k8s:field") ? "" : ", which is not in " + this.o.path}; honua-agent does not overwrite references`);
    }
    // Unset through a valueFrom: the env entry goes, not the key it names (a pod whose secretKeyRef names a
    // missing key does not start).
    const place = e?.place.kind === "data" && e.place.via && c.after === null ? { kind: "env" as const, ...e.place.via } : e?.place;
    if (place?.kind === "image" || c.key === IMAGE_KEY) {
      if (place?.kind !== "image" || c.after === null) throw new AgentError("bad-input", `${this.o.path}: Honua's container image can be replaced, never added or removed`);
      const image = containerMap(place.obj, place.container).get("image", true);
      if (!isScalar(image) || !image.range) throw new Error("image vanished between edits");
      return { path: place.obj.path, text: replaceScalar(texts.get(place.obj.path)!, image, c.after) };
    }
    if (place?.kind === "data") return this.editData(texts, place, c);
    if (place?.kind === "env") {
      const { obj, container, index } = place;
      const text = texts.get(obj.path)!;
      const env = envSeq(obj, container);
      const item = env.items[index] as YAMLMap;
      if (c.after === null) {
        const next = removeSeqItem(text, env, index);
        // An `env` list the agent emptied goes, as it was created for the agent's keys: a rollback gives the original bytes back.
        if (env.items.length > 1 || env.flow) return { path: obj.path, text: next };
        const again = this.model(new Map([...texts, [obj.path, next]]));
        const cm = containerMap(again.objects.find((o) => o.path === obj.path && o.index === obj.index)!, container);
        return { path: obj.path, text: removePair(next, cm, cm.items.findIndex((p) => str(p.key) === "env")) };
      }
      const value = item.get("value", true);
      if (isScalar(value) && value.range && value.value !== null) return { path: obj.path, text: replaceScalar(text, value, c.after) };
      if (item.has("value")) throw new AgentError("bad-input", `${where(obj)}: env ${c.key} has an empty value; give it one (value: "") and ask again`);
      return { path: obj.path, text: insertPair(text, item, "value", () => ` ${renderScalar(c.after!)}`) };
    }
    if (c.after === null) return { path: m.target.path, text: texts.get(m.target.path)! };
    // Set nowhere: added to the target.
    const t = m.target;
    if (t.kind === "ConfigMap" || t.kind === "Secret") {
      const field = t.kind === "Secret" && isMap(t.doc.get("stringData", true)) ? "stringData" : "data";
      return this.editData(texts, { kind: "data", obj: t, field, key: this.unprefixed(m, c.key) }, c);
    }
    const wl = m.container!;
    const text = texts.get(wl.obj.path)!;
    const item: [string, string][] = [["name", renderScalar(c.key)], ["value", renderScalar(c.after)]];
    const env = wl.map.get("env", true);
    if (isSeq(env) && env.items.length > 0) return { path: wl.obj.path, text: appendEnvItem(text, env, item) };
    if (isSeq(env) && env.flow) return { path: wl.obj.path, text: appendEnvItem(text, env, item) };
    if (env !== undefined && !(isScalar(env) && env.value === null)) throw new AgentError("bad-input", `${where(wl.obj)}: container env is not a list`);
    let base = text;
    let cm = wl.map;
    if (env !== undefined) {
      base = removePair(text, cm, cm.items.findIndex((p) => str(p.key) === "env")); // `env:` with nothing after it
      cm = containerMap(this.model(new Map([...texts, [wl.obj.path, base]])).objects.find((o) => o.path === wl.obj.path && o.index === wl.obj.index)!, wl.index);
    }
    const seqIndent = seqIndentOf(base, wl.obj.doc.contents as Node);
    const keyCol = columnOf(base, cm.items[0]!.key as Node);
    return { path: wl.obj.path, text: insertPair(base, cm, "env", () => newEnvBlock(base, item, " ".repeat(keyCol + seqIndent))) };
  }

  /** A key added to the target ConfigMap/Secret: without the prefix its envFrom entry gives every key. */
  private unprefixed(m: Model, key: string): string {
    const envFrom = m.container?.map.get("envFrom", true);
    for (const src of isSeq(envFrom) ? envFrom.items : []) {
      if (!isMap(src)) continue;
      const ref = src.get(m.target.kind === "Secret" ? "secretRef" : "configMapRef", true);
      if (!isMap(ref) || str(ref.get("name", true)) !== m.target.name) continue;
      const prefix = str(src.get("prefix", true));
      if (!key.startsWith(prefix)) throw new AgentError("bad-input", `${where(m.target)} is loaded with prefix ${prefix}: ${key} cannot be added there`);
      return key.slice(prefix.length);
    }
    return key;
  }

  private editData(texts: ReadonlyMap<string, string>, place: Extract<Place, { kind: "data" }>, c: ConfigChange): { path: string; text: string } {
    const { obj, key } = place;
    let text = texts.get(obj.path)!;
    const fresh = () => this.model(new Map([...texts, [obj.path, text]])).objects.find((o) => o.path === obj.path && o.index === obj.index)!;
    if (c.after === null) {
      // From `data` and `stringData` both: a key left in either would still be set.
      for (const field of obj.kind === "Secret" ? (["stringData", "data"] as const) : (["data"] as const)) {
        const doc = fresh().doc;
        const m = doc.get(field, true);
        if (!isMap(m)) continue;
        const i = m.items.findIndex((p) => str(p.key) === key);
        if (i < 0) continue;
        if (m.items.length === 1 && !m.flow) {
          // The map goes with its last key (the agent added both, or the key was all it held).
          const root = doc.contents as YAMLMap;
          text = removePair(text, root, root.items.findIndex((p) => str(p.key) === field));
        } else text = removePair(text, m, i);
      }
      return { path: obj.path, text };
    }
    const encoded = obj.kind === "Secret" && place.field === "data" ? encode(c.after) : c.after;
    const doc = obj.doc;
    const m = doc.get(place.field, true);
    if (isMap(m)) {
      const pair = m.items.find((p) => str(p.key) === key);
      if (pair && isScalar(pair.value) && pair.value.range && pair.value.value !== null) return { path: obj.path, text: replaceScalar(text, pair.value as Scalar, encoded) };
      if (pair) throw new AgentError("bad-input", `${where(obj)}: ${place.field}.${key} is not a plain value`);
      return { path: obj.path, text: insertPair(text, m, key, () => ` ${renderScalar(encoded)}`) };
    }
    if (m !== undefined && !(isScalar(m) && m.value === null)) throw new AgentError("bad-input", `${where(obj)}: ${place.field} is not a map`);
    const root = doc.contents;
    if (!isMap(root)) throw new AgentError("bad-input", `${where(obj)}: not a YAML map`);
    const nested = (indent: string) => `${eolOf(text)}${indent}  ${renderKey(key)}: ${renderScalar(encoded)}`;
    if (m !== undefined) {
      text = removePair(text, root, root.items.findIndex((p) => str(p.key) === place.field));
      const again = fresh().doc.contents as YAMLMap;
      return { path: obj.path, text: insertPair(text, again, place.field, nested) };
    }
    return { path: obj.path, text: insertPair(text, root, place.field, nested) };
  }

  /** The text with every Secret value replaced by its marker: what a diff of it may show. */
  display(_path: string, text: string): string {
    let docs: Document.Parsed[];
    try {
      docs = parseManifest(text);
    } catch {
      return text.replace(/^(\s*[\w.-]+:\s*).+$/gm, "$1***"); // unparseable: show its shape, no value
    }
    const spans: { start: number; node: Scalar; value: string }[] = [];
    for (const doc of docs) {
      // A literal credential in an env entry: its value sits on a line of its own, where the diff's own masking
      // (by key name on the same line) does not see it.
      const containers = doc.getIn(["spec", "template", "spec", "containers"], true);
      for (const c of isSeq(containers) ? containers.items : []) {
        const env = isMap(c) ? c.get("env", true) : undefined;
        for (const item of isSeq(env) ? env.items : []) {
          const value = isMap(item) ? item.get("value", true) : undefined;
          if (!isMap(item) || !isScalar(value) || !value.range || value.value === null) continue;
          if (isSecretLiteral(str(item.get("name", true)), str(value))) spans.push({ start: value.range[0], node: value, value: secretMarker(str(value)) });
        }
      }
      if (doc.get("kind") !== "Secret") continue;
      for (const field of ["data", "stringData"] as const) {
        const m = doc.get(field, true);
        if (!isMap(m)) continue;
        for (const p of m.items) {
          if (!isScalar(p.value) || !p.value.range) continue;
          const raw = str(p.value);
          spans.push({ start: p.value.range[0], node: p.value, value: secretMarker(field === "data" ? decode(raw) : raw) });
        }
      }
    }
    let out = text;
    for (const s of spans.sort((a, b) => b.start - a.start)) out = replaceScalar(out, s.node, s.value);
    return out;
  }
}

function containerMap(obj: Obj, index: number): YAMLMap {
  const c = obj.doc.getIn(["spec", "template", "spec", "containers", index], true);
  if (!isMap(c)) throw new Error("container vanished between edits");
  return c;
}

function envSeq(obj: Obj, container: number): YAMLSeq {
  const env = containerMap(obj, container).get("env", true);
  if (!isSeq(env)) throw new Error("env vanished between edits");
  return env;
}

/**
 * Honua's environment in Kubernetes manifests (see K8sLayout), as a ConfigStore. A change to a ConfigMap or
 * Secret is not live until the pods that load it restart: with `rollout` configured, apply() returns once the
 * Deployment has been restarted and its new pods are ready; without it, such a change is refused (nothing would
 * make it live) unless `rollout` is `false` (something else restarts the pods, e.g. Reloader).
 */
export class K8sConfigStore extends FileConfigStore {
  private readonly k8s: K8sLayout;

  constructor(path: string, target: K8sTarget, log: OpLog, deployment: string, readonly rollout: KubernetesRollout | false | undefined = undefined, namespace?: string) {
    const layout = new K8sLayout({ path, target, namespace: namespace ?? (rollout ? rollout.namespace : undefined) ?? target.namespace ?? "default", workload: rollout ? rollout.deployment : undefined });
    super(path, layout, log, deployment);
    this.k8s = layout;
  }

  imageRollout(): string | null {
    if (!this.rollout) return null;
    return this.rollout.describe([{ kind: "Deployment", name: this.rollout.deployment, namespace: this.rollout.namespace }]);
  }

  protected override undoNote(): string {
    return this.rollout ? ` in ${this.path} and rolled out again` : "";
  }

  protected override async beforeWrite(changes: ConfigChange[], files: ReadonlyMap<string, string>, idempotencyKey: string): Promise<void> {
    const objects = this.k8s.touched(files, changes);
    const loaded = objects.filter((o) => o.kind === "ConfigMap" || o.kind === "Secret");
    if (this.rollout === undefined && loaded.length > 0) {
      throw new AgentError("bad-input", `${loaded.map(where).join(", ")}: Kubernetes does not restart pods when a ConfigMap or Secret changes, so this change would not be live and the next step would measure the old config. Configure config.rollout: { deployment: <name> } (docs/local.md), or rollout: false when something else restarts the pods; nothing was written`);
    }
    // What the rollout must apply or wait for, recorded before the write: a replay after a crash finds it even
    // when the change removed the key it was about.
    this.log.put(this.deployment, "k8s-config-objects", idempotencyKey, objects);
  }

  protected override async settle(changes: ConfigChange[], idempotencyKey: string, undoing?: string): Promise<void> {
    if (!this.rollout) return;
    const files = await this.load();
    const recorded = this.log.get(this.deployment, "k8s-config-objects", idempotencyKey, ObjectRefs);
    const objects = recorded ?? this.k8s.touched(files, changes);
    // Pods read their environment when they start: an undo restarts them only if the apply it undoes did.
    await this.rollout.settle(objects.map((ref) => ({ ref, manifest: this.k8s.manifestOf(files, ref) })), idempotencyKey, undoing === undefined ? {} : { restartOnlyAfter: undoing });
  }

  protected override notes(pending: ConfigChange[], files: ReadonlyMap<string, string>): string[] {
    const unseen = this.k8s.unseen(files);
    const objects = pending.length ? this.k8s.touched(files, pending) : [];
    const loaded = objects.some((o) => o.kind === "ConfigMap" || o.kind === "Secret");
    const out: string[] = [];
    if (unseen.length) out.push(`note: ${unseen.join(", ")} (loaded with envFrom) ${unseen.length === 1 ? "is" : "are"} not in ${this.path}: keys set there are not seen`);
    if (objects.length && this.rollout) out.push(`then: ${this.rollout.describe(objects)}`);
    else if (loaded && this.rollout === undefined) out.push("refused at apply: a ConfigMap/Secret change needs config.rollout to become live");
    else if (loaded) out.push("note: not live until the pods restart (config.rollout is false: something else restarts them)");
    return out;
  }
}

const ObjectRefs = z.array(z.object({ kind: z.enum(["ConfigMap", "Secret", "Deployment", "StatefulSet"]), name: z.string(), namespace: z.string() }));
