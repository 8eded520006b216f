/**
 * Text utilities for reading requests: the request as typed and lower-cased side by side, spans cut out of it,
 * word lists compiled to regexes, and an edit distance for typos. Nothing here knows about workflows.
 */

/** `[start, end)` in a Text's strings. */
export type Span = readonly [number, number];

export const collapse = (s: string): string => s.replace(/\s+/g, " ").trim();
export const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
export const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
/** `(?:a|b|c)` from a list of regex fragments, so word lists stay readable as lists. */
export const oneOf = (fragments: readonly string[]): string => `(?:${fragments.join("|")})`;

/** The request twice, aligned character for character: as typed (values keep their case) and lower-cased (for matching). */
export class Text {
  private constructor(
    readonly orig: string,
    readonly lower: string,
  ) {}
  static of(s: string): Text {
    const orig = collapse(s);
    // Per code point, so the two strings stay the same length even for characters whose lower case is longer.
    const lower = Array.from(orig, (c) => (c.toLowerCase().length === c.length ? c.toLowerCase() : c)).join("");
    return new Text(orig, lower);
  }
  without(spans: readonly Span[]): Text {
    let [o, l] = [this.orig, this.lower];
    for (const [s, e] of mergeSpans(spans).reverse()) {
      o = `${o.slice(0, s)} ${o.slice(e)}`;
      l = `${l.slice(0, s)} ${l.slice(e)}`;
    }
    return new Text(collapse(o), collapse(l));
  }
  slice(s: number, e?: number): Text {
    return new Text(this.orig.slice(s, e), this.lower.slice(s, e));
  }
}

export function mergeSpans(spans: readonly Span[]): Span[] {
  const out: [number, number][] = [];
  for (const [s, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Every match of `re` in `s` (global or not), empty matches included once. */
export function matchAll(re: RegExp, s: string): RegExpExecArray[] {
  const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`);
  const out: RegExpExecArray[] = [];
  for (let m = g.exec(s); m; m = g.exec(s)) {
    out.push(m);
    if (m[0] === "") g.lastIndex++;
  }
  return out;
}

export const spansOf = (res: readonly RegExp[], s: string): Span[] =>
  res.flatMap((re) => matchAll(re, s).map((m): Span => [m.index, m.index + m[0].length]));

/** A synonym table compiled to one regex. */
export interface Lexicon<V extends string> {
  /** The regex source matching any synonym as a whole word (spaces match any run of spaces). */
  source: string;
  /** Every synonym. */
  words: string[];
  /** Each mention in `lower`, with its canonical value, in order. */
  find(lower: string): { value: V; start: number; end: number }[];
}

export function lexicon<V extends string>(entries: Record<V, readonly string[]>): Lexicon<V> {
  const byWord = new Map<string, V>();
  for (const [value, words] of Object.entries(entries) as [V, readonly string[]][]) {
    for (const w of words) byWord.set(w, value);
  }
  const alternatives = [...byWord.keys()].sort((a, b) => b.length - a.length).map((w) => escapeRe(w).replace(/ /g, "\\s+"));
  const source = `(?<![\\w])(?:${alternatives.join("|")})(?![\\w])`;
  const re = new RegExp(source);
  return {
    source,
    words: [...byWord.keys()],
    find(lower) {
      return matchAll(re, lower).flatMap((m) => {
        const value = byWord.get(collapse(m[0]));
        return value ? [{ value, start: m.index, end: m.index + m[0].length }] : [];
      });
    },
  };
}

/** Edit distance counting a swap of neighbours as one edit ("varnsih" is one away from "varnish"). */
export function editDistance(a: string, b: string): number {
  const w = b.length + 1;
  const d = new Array<number>((a.length + 1) * w).fill(0);
  const at = (i: number, j: number): number => d[i * w + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * w] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * w + j] = v;
    }
  }
  return at(a.length, b.length);
}
