/**
 * HTML built from tagged templates: every interpolated value is escaped unless it is already `Html` (markup this
 * module or a renderer built). Untrusted text (requests, step output, comments) can only ever arrive as text.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text for an element's content or a quoted attribute. */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

const piece = (v: HtmlValue): string => {
  if (v instanceof Html) return v.value;
  if (v === null || v === undefined || v === false) return "";
  if (Array.isArray(v)) return v.map(piece).join("");
  return escapeHtml(String(v));
};

/** `html\`<p>${text}</p>\``: the literal parts as written, every value escaped (arrays joined, null/false empty). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += piece(v) + (strings[i + 1] ?? "");
  });
  return new Html(out);
}

/** Markup produced elsewhere and trusted as such (an SVG chart rendered by vega from numbers and our own labels). */
export const trusted = (markup: string): Html => new Html(markup);

/** A value as indented JSON in a <pre>, escaped. */
export const jsonBlock = (v: unknown): Html => html`<pre class="json">${JSON.stringify(v, null, 2) ?? "null"}</pre>`;
