/**
 * Slack's Block Kit limits, and the one way text is shortened to fit them. Slack refuses a whole message
 * (`invalid_blocks`) when one element is over its limit, so every builder keeps inside these.
 */
export const LIMIT = {
  blocks: 50,
  homeBlocks: 100,
  /** Slack truncates top-level `text` at 40,000; kept to 4,000 so notifications stay readable. */
  text: 4000,
  section: 3000,
  header: 150,
  contextElements: 10,
  contextText: 2000,
  actionsElements: 25,
  button: 75,
  actionId: 255,
  blockId: 255,
  buttonValue: 2000,
  confirmTitle: 100,
  confirmText: 300,
} as const;

/**
 * Slack's rate limits that the bot's own pacing keeps under. chat.update is a Tier 3 method (about 50 calls a minute
 * per workspace); the progress message is edited at most once per `progressEditMs`, which keeps a run that reports
 * progress continuously at 50 edits a minute.
 */
export const RATE = {
  chatUpdatePerMinute: 50,
  progressEditMs: 60_000 / 50,
} as const;

/** Length as Slack counts it: code points, so an emoji is one character, not two UTF-16 units. */
export function codePoints(s: string, from = 0, to = s.length): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

const GRAPHEMES = new Intl.Segmenter("en", { granularity: "grapheme" });
/** What must stay whole: Slack's own sequences (mentions, dates, links) and the entities escaping leaves. */
const ATOM = /<(?:[@#!][^<>]*|(?:https?|mailto):[^<>]*)>|&(?:amp|lt|gt);/y;

/**
 * `s` in at most `max` characters (code points), the cut marked with `…`. The cut falls between whole
 * characters as a reader sees them (never inside a surrogate pair, an emoji sequence or a combining mark),
 * and never inside `<@U…>`, `<!subteam^…>`, `<!date^…|…>`, `<http…|…>` or `&amp;`/`&lt;`/`&gt;`: such a
 * sequence is kept whole or left out.
 */
export function clip(s: string, max: number): string {
  if (s.length <= max || (s.length <= 2 * max && codePoints(s) <= max)) return s;
  if (max < 1) return "";
  const budget = max - 1;
  let used = 0;
  let cut = 0;
  let atom: { start: number; end: number } | null = null;
  while (cut < s.length) {
    const c = s.charCodeAt(cut);
    let end = cut + (c >= 0xd800 && c <= 0xdbff && cut + 1 < s.length && (s.charCodeAt(cut + 1) & 0xfc00) === 0xdc00 ? 2 : 1);
    let n = 1;
    ATOM.lastIndex = cut;
    const isAtom = (c === 0x3c || c === 0x26) && ATOM.test(s);
    if (isAtom) {
      end = ATOM.lastIndex;
      n = codePoints(s, cut, end);
    }
    if (used + n > budget) break;
    if (isAtom) atom = { start: cut, end };
    used += n;
    cut = end;
  }
  // Back to the start of the character a reader sees there (an emoji sequence, a letter and its accents).
  // Between two ASCII characters there is always a boundary but in CR LF, so the segmenter is asked only otherwise.
  const before = s.charCodeAt(cut - 1);
  const after = s.charCodeAt(cut);
  if (cut > 0 && (before >= 0x80 || after >= 0x80)) {
    const g = GRAPHEMES.segment(s).containing(cut);
    if (g && g.index < cut) cut = g.index;
  } else if (before === 0x0d && after === 0x0a) cut -= 1;
  // ...which may begin with an atom's last character (`>` followed by a combining mark): the atom goes too.
  if (atom && cut > atom.start && cut < atom.end) cut = atom.start;
  return `${s.slice(0, cut).trimEnd()}…`;
}

interface FitOptions {
  sep?: string;
  more?: (n: number) => string;
  itemMax?: number;
}

/**
 * Items joined by `sep` in at most `max` characters; those that do not fit are counted instead
 * ("…and 12 more"), so a long list never pushes what follows it out of its block. With `render`, only the
 * items that are shown are rendered.
 */
export function fitList(items: readonly string[], max: number, o?: FitOptions): string;
export function fitList<T>(items: readonly T[], max: number, o: FitOptions & { render: (item: T) => string }): string;
export function fitList<T>(items: readonly T[], max: number, o: FitOptions & { render?: (item: T) => string } = {}): string {
  const sep = o.sep ?? "\n";
  const more = o.more ?? ((n: number) => `…and ${n} more`);
  const render = o.render ?? String;
  const tail = codePoints(sep) + codePoints(more(items.length));
  const itemMax = Math.max(1, Math.min(o.itemMax ?? max, max - tail));
  let out = "";
  let used = 0;
  for (let i = 0; i < items.length; i++) {
    const item = clip(render(items[i]!), itemMax);
    const cost = (i > 0 ? codePoints(sep) : 0) + codePoints(item);
    const last = i === items.length - 1;
    if (used + cost + (last ? 0 : tail) > max) return clip(i > 0 ? `${out}${sep}${more(items.length - i)}` : more(items.length), max);
    out += `${i > 0 ? sep : ""}${item}`;
    used += cost;
  }
  return out;
}
