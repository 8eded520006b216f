/**
 * Text utilities for reading requests: the request as typed and lower-cased side by side, spans cut out of it,
 * word lists compiled to regexes, and an edit distance for typos. Nothing here knows about workflows.
 */

/**
 * The longest request read, in characters, in every front (command line, chat, Slack, thread questions). Longer
 * text is refused before any pattern, model or store sees it: reading stays bounded in time whatever is sent.
 */
export const MAX_REQUEST_CHARS = 4000;

/** Why a request is not read (too long), or null when it may be. */
export function requestTooLong(text: string): string | null {
  if (text.length <= MAX_REQUEST_CHARS) return null;
  return `the request is ${text.length.toLocaleString("en-US")} characters; requests are read up to ${MAX_REQUEST_CHARS.toLocaleString("en-US")}. Nothing was planned or changed: ask again in fewer words`;
}

/** Something that says whether a text matches: a RegExp, or a composition of them like `inOrder`. */
export interface Matcher {
  test(text: string): boolean;
}

/**
 * `a.*b.*c` without its backtracking: each pattern found after the previous one's match ends. One left-to-right
 * pass (the earliest-ending match of each is the best start for the next), where the regex would rescan the
 * rest of the text from every place the first word occurs.
 */
export function inOrder(...patterns: readonly RegExp[]): Matcher {
  const searches = patterns.map((p) => new RegExp(p.source, p.flags.includes("g") ? p.flags : `${p.flags}g`));
  return {
    test(text: string): boolean {
      let from = 0;
      for (const re of searches) {
        re.lastIndex = from;
        const m = re.exec(text);
        if (!m) return false;
        from = m.index + Math.max(m[0].length, 1);
      }
      return true;
    },
  };
}

/** What `between` found: the prefix's start, the text between prefix and suffix, the suffix match and where it ends. */
export interface Between {
  index: number;
  inner: string;
  suffix: RegExpExecArray;
  end: number;
}

/**
 * `prefix(.+?)suffix` without its backtracking: the first prefix match, then the first suffix match at least one
 * character after it. The regex would, for every place the prefix occurs, walk the rest of the text trying the
 * suffix at each character (quadratic on text that repeats the prefix and never completes it).
 */
export function between(text: string, prefix: RegExp, suffix: RegExp): Between | null {
  const p = new RegExp(prefix.source, prefix.flags.replace("g", ""));
  const m = p.exec(text);
  if (!m) return null;
  const from = m.index + m[0].length;
  const s = new RegExp(suffix.source, suffix.flags.includes("g") ? suffix.flags : `${suffix.flags}g`);
  s.lastIndex = from + 1;
  const t = s.exec(text);
  if (!t) return null;
  return { index: m.index, inner: text.slice(from, t.index), suffix: t, end: t.index + t[0].length };
}

/** Any of the matchers. */
export const anyOf = (...ms: readonly Matcher[]): Matcher => ({ test: (text) => ms.some((m) => m.test(text)) });

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

/** Money as people write it: `-$264.29`, `$1,636.90`; small amounts with more digits when asked (`$0.0042`). */
export function usd(x: number, opts: { smallDigits?: number } = {}): string {
  const digits = opts.smallDigits !== undefined && Math.abs(x) < 1 ? opts.smallDigits : 2;
  return `${x < 0 ? "-" : ""}$${Math.abs(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}
