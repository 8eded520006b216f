import { AgentError } from "../../errors.js";
import type { ConfigChange } from "../../graph/state.js";
import type { OpLog } from "../../providers/oplog.js";
import { FileConfigStore, type ConfigFormat } from "./file.js";

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

function parseJson(text: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new AgentError("bad-input", `appsettings: not valid JSON (${(e as Error).message}); honua-agent edits plain JSON only (no comments or trailing commas)`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new AgentError("bad-input", "appsettings: the top level must be an object");
  return v as JsonObject;
}

/** `{"Cache": {"Enabled": true}}` -> `Cache__Enabled=true`, arrays by index, as .NET configuration flattens them. */
function flatten(node: Json, prefix: string, out: Record<string, string>): void {
  if (Array.isArray(node)) node.forEach((v, i) => flatten(v, prefix ? `${prefix}__${i}` : String(i), out));
  else if (isObject(node)) for (const [k, v] of Object.entries(node)) flatten(v, prefix ? `${prefix}__${k}` : k, out);
  else if (node !== null && prefix) out[prefix] = String(node);
}

/** Keeps the JSON type a reader would expect: booleans and plain numbers stay typed when that reads back the same. */
function typed(value: string, previous: Json | undefined): Json {
  if (typeof previous === "string") return value;
  if (value === "true" || value === "false") return value === "true";
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(value) && String(Number(value)) === value) return Number(value);
  return value;
}

/** The key of `obj` that .NET would bind `name` to (configuration keys are case-insensitive). */
const findKey = (obj: JsonObject, name: string): string | undefined => Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());

function setPath(root: JsonObject, parts: string[], value: string | null): void {
  const trail: { node: JsonObject; key: string }[] = [];
  let node: JsonObject = root;
  for (const [i, part] of parts.entries()) {
    const key = findKey(node, part) ?? part;
    if (i === parts.length - 1) {
      if (value !== null) {
        node[key] = typed(value, node[key]);
        return;
      }
      delete node[key];
      // A section this removal emptied goes too (the key was all it held).
      for (let t = trail.length - 1; t >= 0; t--) {
        const { node: parent, key: k } = trail[t]!;
        const child = parent[k];
        if (isObject(child) && Object.keys(child).length === 0) delete parent[k];
        else break;
      }
      return;
    }
    let child = node[key];
    if (!isObject(child)) {
      if (value === null) return;
      if (child !== undefined) throw new AgentError("conflict", `appsettings: ${parts.slice(0, i + 1).join("__")} is a ${Array.isArray(child) ? "list" : "value"}, not a section; nothing was written`);
      child = {};
      node[key] = child;
    }
    trail.push({ node, key });
    node = child;
  }
}

/** A legacy `appsettings.json`: `Section__Key` maps to nested sections; the file's indentation is kept. */
export const appSettingsFormat: ConfigFormat = {
  describe: "appsettings.json",
  caseInsensitive: true,
  parse(text) {
    const out: Record<string, string> = {};
    flatten(parseJson(text), "", out);
    return out;
  },
  apply(text, changes: ConfigChange[]) {
    const root = parseJson(text);
    for (const c of changes) setPath(root, c.key.split("__"), c.after);
    const indent = /^\{\s*\n([ \t]+)"/.exec(text)?.[1] ?? "  ";
    return `${JSON.stringify(root, null, indent)}${text.endsWith("\n") ? "\n" : ""}`;
  },
};

export class AppSettingsConfigStore extends FileConfigStore {
  constructor(path: string, log: OpLog, deployment: string) {
    super(path, appSettingsFormat, log, deployment);
  }
}
