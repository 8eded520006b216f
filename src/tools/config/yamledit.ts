import { isMap, isScalar, isSeq, parseDocument, type Node, type Pair, Scalar, type YAMLMap, type YAMLSeq } from "yaml";
import { AgentError } from "../../core/errors.js";

/**
 * Edits of a YAML text made by splicing it at the positions the parser reports, so every byte the edit is not
 * about stays as it was: other documents, comments, blank lines, quoting, long lines (nothing is re-wrapped).
 * Each function takes nodes parsed from exactly `text` and returns the new text; parse again before the next edit.
 */

const lineStart = (text: string, pos: number): number => text.lastIndexOf("\n", pos - 1) + 1;
/** The position after the end of the line holding `pos` (after its newline). */
const nextLine = (text: string, pos: number): number => {
  if (pos > 0 && text[pos - 1] === "\n") return pos;
  const i = text.indexOf("\n", pos);
  return i < 0 ? text.length : i + 1;
};
const column = (text: string, pos: number): number => pos - lineStart(text, pos);
export const eolOf = (text: string): string => (text.includes("\r\n") ? "\r\n" : "\n");

const range = (node: Node | null | undefined): [number, number, number] => {
  const r = node?.range;
  if (!r) throw new Error("yaml node without a source range");
  return r;
};

/** True when `value` written plain reads back as this very string (not a number, boolean, null, or something else). */
function plainSafe(value: string): boolean {
  if (value === "" || value !== value.trim() || /[\r\n]/.test(value)) return false;
  const doc = parseDocument(`k: ${value}\n`);
  return doc.errors.length === 0 && doc.get("k") === value && !value.includes(" #");
}

/** `value` as a YAML scalar in the style `like` has (plain, single or double quoted), quoted when plain would read back otherwise. */
export function renderScalar(value: string, like?: Scalar["type"]): string {
  if (like === Scalar.QUOTE_SINGLE && !/[\r\n]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  if (like === Scalar.QUOTE_DOUBLE || !plainSafe(value)) return JSON.stringify(value); // a JSON string is a YAML double-quoted scalar
  return value;
}

export const renderKey = (key: string): string => (plainSafe(key) ? key : JSON.stringify(key));

/** The text with scalar `node`'s value replaced by `value`, in the node's own quoting (a block scalar becomes a quoted one). */
export function replaceScalar(text: string, node: Scalar, value: string): string {
  const [start, end] = range(node);
  const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
  // A block scalar's range ends after its last line break: keep one so the next line stays a line of its own.
  const rendered = block ? `${JSON.stringify(value)}${eolOf(text)}` : renderScalar(value, node.type);
  return text.slice(0, start) + rendered + text.slice(end);
}

/** Where the text of a block collection item or pair ends: after the line its value ends on. */
const endOfValue = (text: string, node: Node | null | undefined, fallback: number): number => nextLine(text, node?.range ? node.range[1] : fallback);

/**
 * The text with `key: <value>` added as the last member of `map`. `value(indent)` renders what follows the colon
 * (` scalar`, or a line break and a nested block indented from `indent`).
 */
export function insertPair(text: string, map: YAMLMap, key: string, value: (indent: string) => string): string {
  const eol = eolOf(text);
  if (map.flow) {
    const [start, end] = range(map);
    const last = map.items.at(-1);
    const member = `${renderKey(key)}:${value("")}`;
    if (!last) return text.slice(0, start) + `{ ${member} }` + text.slice(end);
    const at = range((last.value ?? last.key) as Node)[1];
    return text.slice(0, at) + `, ${member}` + text.slice(at);
  }
  const first = map.items[0];
  const last = map.items.at(-1);
  if (!first || !last) throw new Error("a block map without members");
  const indent = " ".repeat(column(text, range(first.key as Node)[0]));
  const at = endOfValue(text, (last.value ?? last.key) as Node, range(last.key as Node)[1]);
  const line = `${indent}${renderKey(key)}:${value(indent)}`;
  // At the end of a file without a final newline, the new line goes after a break and the file still ends without one.
  if (at === text.length && !text.endsWith("\n")) return `${text}${eol}${line}`;
  return text.slice(0, at) + line + eol + text.slice(at);
}

/** The text without member `index` of `map` (its line or lines; comments above it stay). */
export function removePair(text: string, map: YAMLMap, index: number): string {
  const pair = map.items[index] as Pair<Node, Node | null> | undefined;
  if (!pair) return text;
  if (map.flow) {
    const [start, end] = range(map);
    if (map.items.length === 1) return text.slice(0, start) + "{}" + text.slice(end);
    const keyStart = range(pair.key)[0];
    if (index > 0) {
      const prev = map.items[index - 1] as Pair<Node, Node | null>;
      return text.slice(0, range(prev.value ?? prev.key)[1]) + text.slice(range(pair.value ?? pair.key)[1]);
    }
    const next = map.items[1] as Pair<Node, Node | null>;
    return text.slice(0, keyStart) + text.slice(range(next.key)[0]);
  }
  const keyStart = range(pair.key)[0];
  const from = lineStart(text, keyStart);
  if (text.slice(from, keyStart).trim() !== "") {
    throw new AgentError("conflict", "manifest: the key to remove shares its line with other YAML (`- key: ...`); edit it by hand");
  }
  const to = endOfValue(text, pair.value, range(pair.key)[1]);
  return cut(text, from, to);
}

/** The text without lines [from, to); removing the last line of a file without a final newline removes the break before it instead. */
function cut(text: string, from: number, to: number): string {
  if (to >= text.length && !text.endsWith("\n") && from > 0) return text.slice(0, from - (text[from - 2] === "\r" ? 2 : 1));
  return text.slice(0, from) + text.slice(to);
}

/** Where an item's `-` indicator is (block sequences). */
const dashOf = (text: string, item: Node): number => {
  const at = text.lastIndexOf("-", range(item)[0] - 1);
  if (at < 0) throw new Error("block sequence item without '-'");
  return at;
};

/**
 * The text with a map item `{ name, <field>: value }` appended to `seq`, laid out like the sequence's first item
 * (block or flow, its indentation), or as `- name: ...\n  value: ...` when the sequence has none.
 */
export function appendEnvItem(text: string, seq: YAMLSeq, entries: [string, string][]): string {
  const eol = eolOf(text);
  const flowItem = entries.map(([k, v]) => `${renderKey(k)}: ${v}`).join(", ");
  if (seq.flow) {
    const [start, end] = range(seq);
    const last = seq.items.at(-1) as Node | undefined;
    if (!last) return text.slice(0, start) + `[{ ${flowItem} }]` + text.slice(end);
    const at = range(last)[1];
    return text.slice(0, at) + `, { ${flowItem} }` + text.slice(at);
  }
  const first = seq.items[0] as Node | undefined;
  const last = seq.items.at(-1) as Node | undefined;
  if (!first || !last) throw new Error("a block sequence without items");
  const dash = " ".repeat(column(text, dashOf(text, first)));
  const inner = " ".repeat(column(text, range(first)[0]));
  const item = isMap(first) && first.flow
    ? `${dash}- { ${flowItem} }${eol}`
    : entries.map(([k, v], i) => `${i === 0 ? `${dash}-${" ".repeat(Math.max(1, inner.length - dash.length - 1))}` : inner}${renderKey(k)}: ${v}${eol}`).join("");
  const at = endOfValue(text, last, range(last)[1]);
  if (at === text.length && !text.endsWith("\n")) return `${text}${eol}${item.slice(0, -eol.length)}`;
  return text.slice(0, at) + item + text.slice(at);
}

/** A new block sequence of one env item, to follow `env:` in a map indented by `indent`; `seqIndent` is how far its `-` sits in. */
export const newEnvBlock = (text: string, entries: [string, string][], seqIndent: string): string => {
  const eol = eolOf(text);
  return `${eol}${entries.map(([k, v], i) => `${i === 0 ? `${seqIndent}- ` : `${seqIndent}  `}${renderKey(k)}: ${v}`).join(eol)}`;
};

/** The text without item `index` of `seq`. */
export function removeSeqItem(text: string, seq: YAMLSeq, index: number): string {
  const item = seq.items[index] as Node | undefined;
  if (!item) return text;
  if (seq.flow) {
    const [start, end] = range(seq);
    if (seq.items.length === 1) return text.slice(0, start) + "[]" + text.slice(end);
    if (index > 0) return text.slice(0, range(seq.items[index - 1] as Node)[1]) + text.slice(range(item)[1]);
    return text.slice(0, range(item)[0]) + text.slice(range(seq.items[1] as Node)[0]);
  }
  const from = lineStart(text, dashOf(text, item));
  return cut(text, from, endOfValue(text, item, range(item)[1]));
}

/** How far a block sequence's `-` sits in from the key that holds it, as this document writes its sequences. */
export function seqIndentOf(text: string, root: Node | null | undefined): number {
  let found: number | undefined;
  const visit = (node: unknown): void => {
    if (found !== undefined) return;
    if (isMap(node)) {
      for (const p of node.items) {
        const v = p.value;
        if (isSeq(v) && !v.flow && v.items[0] && isScalar(p.key) && p.key.range) {
          found = column(text, dashOf(text, v.items[0] as Node)) - column(text, p.key.range[0]);
          return;
        }
        visit(v);
      }
    } else if (isSeq(node)) node.items.forEach(visit);
  };
  visit(root);
  return found ?? 2;
}

/** The column of `node`'s first character in `text`. */
export const columnOf = (text: string, node: Node): number => column(text, range(node)[0]);
