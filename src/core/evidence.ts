/**
 * What a workflow's tool checks a model's answer against: the request as the user typed it. A value the user never
 * said is the model's invention (or something steered into the answer), and the answer is not used.
 */
import { editDistance } from "./text.js";

/** The model's answer does not fit the contract; the rules answer instead. */
export class InvalidModelAnswer extends Error {
  override name = "InvalidModelAnswer";
}

/** The arguments without their nulls: a param the user did not give stays absent. */
export function withoutNulls<A extends object>(args: A): { [K in keyof A]?: Exclude<A[K], null> } {
  const out: { [K in keyof A]?: Exclude<A[K], null> } = {};
  for (const k of Object.keys(args) as (keyof A)[]) {
    const v = args[k];
    if (v !== null) out[k] = v as Exclude<A[typeof k], null>;
  }
  return out;
}

/** True when any object inside `v` has an `lc` key: LangChain's serialization envelope, revived when a checkpoint loads. */
export const hasEnvelope = (v: unknown): boolean =>
  !!v && typeof v === "object" && (Array.isArray(v) ? v.some(hasEnvelope) : "lc" in v || Object.values(v).some(hasEnvelope));

/** The request lower-cased with its spacing collapsed. */
export const lowered = (s: string): string => s.toLowerCase().replace(/\s+/g, " ");

/** SQL compared as typed: case, spacing, backticks and semicolons aside. */
export const sqlText = (s: string): string => s.toLowerCase().replace(/[`;]+/g, " ").replace(/\s+/g, " ").trim();

/** `n` in the request as a number of its own. */
export const numberIn = (request: string, n: number): boolean => new RegExp(`(?<![\\d.])${n}(?![\\d]|\\.\\d)`).test(request);

/** Checks of values against one request. */
export interface Said {
  /** The request, lower-cased. */
  text: string;
  /** An enum value named by one of its words (`table`), or by a typo of its own name ("varnsih"). */
  named(table: Readonly<Record<string, RegExp>>, value: unknown): boolean;
  /** A string value that is in the request as typed (case and spacing aside). */
  verbatim(value: unknown): boolean;
}

export function said(request: string): Said {
  const text = lowered(request);
  let words: string[] | undefined;
  // A typo of the value's own name counts: the rules correct the same typos.
  const typo = (value: string) =>
    value.length >= 5 && (words ??= text.match(/[a-z][a-z-]{3,}/g) ?? []).some((w) => w[0] === value[0] && editDistance(w, value) <= (value.length >= 8 ? 2 : 1));
  return {
    text,
    named: (table, value) => typeof value !== "string" || (table[value]?.test(text) ?? false) || typo(value),
    verbatim: (value) => typeof value !== "string" || text.includes(lowered(value.trim())),
  };
}
