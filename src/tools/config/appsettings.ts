import { AgentError } from "../../core/errors.js";
import type { ConfigChange } from "../../core/sections.js";
import type { OpLog } from "../../store/oplog.js";
import { FileConfigStore, type ConfigFormat } from "./file.js";

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

function parseJson(text: string): JsonObject {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    // V8 quotes an excerpt of the text in its message ("..."Password": hunter2}" is not valid JSON): never repeat it.
    const why = (e as Error).message.replace(/,?\s*(\.\.\.)?".*"(\.\.\.)?\s*(is not valid JSON)?$/s, "");
    throw new AgentError("bad-input", `appsettings: not valid JSON (${why}); honua-agent edits plain JSON only (no comments or trailing commas)`);
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

/** A JSON value with where it sits in the text: edits splice the text, so everything else keeps its bytes. */
interface Node {
  kind: "object" | "array" | "scalar";
  start: number;
  end: number;
  members: { key: string; keyStart: number; value: Node }[];
}

/** Positions of every value of a text JSON.parse already accepted. */
function tree(text: string): Node {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const str = (): string => {
    const from = i++;
    while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(text.slice(from, i)) as string;
  };
  const value = (): Node => {
    ws();
    const start = i;
    const c = text[i];
    if (c === "{" || c === "[") {
      i++;
      const members: Node["members"] = [];
      ws();
      if (text[i] === (c === "{" ? "}" : "]")) return { kind: c === "{" ? "object" : "array", start, end: ++i, members };
      for (let n = 0; ; n++) {
        ws();
        const keyStart = i;
        let key = String(n);
        if (c === "{") {
          key = str();
          ws();
          i++; // :
        }
        members.push({ key, keyStart, value: value() });
        ws();
        if (text[i++] !== ",") return { kind: c === "{" ? "object" : "array", start, end: i, members };
      }
    }
    if (c === '"') str();
    else while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++;
    return { kind: "scalar", start, end: i, members: [] };
  };
  return value();
}

/** The whitespace a line starts with, for the line holding `pos`. */
const indentAt = (text: string, pos: number): string => /^[ \t]*/.exec(text.slice(text.lastIndexOf("\n", pos - 1) + 1))![0];

/** `value` rendered to sit at `indent` (objects spread over lines with the file's unit, as the file does). */
function render(value: Json, indent: string, unit: string, multiline: boolean): string {
  return multiline ? JSON.stringify(value, null, unit).replace(/\n/g, `\n${indent}`) : JSON.stringify(value);
}

/** The text with `"name": value` added as the last member of object `obj`. */
function insertMember(text: string, obj: Node, name: string, value: Json, unit: string): string {
  const last = obj.members.at(-1);
  const isRoot = obj.start === text.search(/\S/);
  const multiline = last ? text.slice(obj.start, last.keyStart).includes("\n") : isRoot || text.slice(obj.start, obj.end).includes("\n");
  if (!last) {
    const outer = indentAt(text, obj.start);
    const inner = outer + unit;
    const body = multiline ? `\n${inner}${JSON.stringify(name)}: ${render(value, inner, unit, true)}\n${outer}` : `${JSON.stringify(name)}: ${render(value, "", unit, false)}`;
    return text.slice(0, obj.start + 1) + body + text.slice(obj.end - 1);
  }
  const indent = indentAt(text, last.keyStart);
  const member = multiline ? `,\n${indent}${JSON.stringify(name)}: ${render(value, indent, unit, true)}` : `, ${JSON.stringify(name)}: ${render(value, "", unit, false)}`;
  return text.slice(0, last.value.end) + member + text.slice(last.value.end);
}

/** The text without member `index` of `obj`: exactly what `insertMember` adds, so adding then removing is a no-op. */
function removeMember(text: string, obj: Node, index: number): string {
  const m = obj.members[index]!;
  if (index > 0) return text.slice(0, obj.members[index - 1]!.value.end) + text.slice(m.value.end);
  if (obj.members.length > 1) return text.slice(0, m.keyStart) + text.slice(obj.members[1]!.keyStart);
  return text.slice(0, obj.start + 1) + text.slice(obj.end - 1);
}

/** The index of the member .NET binds `name` to (keys are case-insensitive; a later duplicate wins). */
const findMember = (obj: Node, name: string): number => obj.members.findLastIndex((m) => m.key.toLowerCase() === name.toLowerCase());

/** One change, spliced into the text: a value replaced, a member added (with the sections it needs) or removed. */
function setPath(text: string, parts: string[], value: string | null, unit: string): string {
  const trail: { obj: Node; index: number }[] = [];
  let obj = tree(text);
  for (const [i, part] of parts.entries()) {
    const index = findMember(obj, part);
    const last = i === parts.length - 1;
    if (index < 0) {
      if (value === null) return text;
      // The rest of the path does not exist: one new member holding the sections it needs.
      const nested = parts.slice(i + 1).reduceRight<Json>((inner, k) => ({ [k]: inner }), typed(value, undefined));
      return insertMember(text, obj, part, nested, unit);
    }
    const child = obj.members[index]!.value;
    if (last) {
      if (value !== null) {
        const previous = child.kind === "scalar" ? (JSON.parse(text.slice(child.start, child.end)) as Json) : undefined;
        return text.slice(0, child.start) + JSON.stringify(typed(value, previous)) + text.slice(child.end);
      }
      // A section this removal empties goes too (the key was all it held).
      let at = { obj, index };
      while (at.obj.members.length === 1 && trail.length) at = trail.pop()!;
      return removeMember(text, at.obj, at.index);
    }
    if (child.kind !== "object") {
      if (value === null) return text;
      throw new AgentError("conflict", `appsettings: ${parts.slice(0, i + 1).join("__")} is a ${child.kind === "array" ? "list" : "value"}, not a section; nothing was written`);
    }
    trail.push({ obj, index });
    obj = child;
  }
  return text;
}

/** A legacy `appsettings.json`: `Section__Key` maps to nested sections; only the changed members' text changes. */
export const appSettingsFormat: ConfigFormat = {
  describe: "appsettings.json",
  parse(text) {
    const out: Record<string, string> = {};
    flatten(parseJson(text), "", out);
    return out;
  },
  apply(text, changes: ConfigChange[]) {
    parseJson(text);
    // Edits are spliced into the text: untouched members keep their bytes (layout, 1.0, long integers), and a
    // rollback that removes what was added gives the original file back.
    const unit = /^\{\s*\n([ \t]+)"/.exec(text)?.[1] ?? "  ";
    let out = text;
    for (const c of changes) out = setPath(out, c.key.split("__"), c.after, unit);
    return out;
  },
};

export class AppSettingsConfigStore extends FileConfigStore {
  constructor(path: string, log: OpLog, deployment: string) {
    super(path, appSettingsFormat, log, deployment);
  }
}
