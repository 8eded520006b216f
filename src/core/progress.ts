import { z } from "zod";
import { AgentError, describeIssues } from "./errors.js";

/** What a long step counts as it goes (a batch copy's rows, an upload's bytes, a bucket's objects, a migration's statements). */
export const ProgressUnit = z.enum(["records", "bytes", "objects", "statements", "seconds"]);
export type ProgressUnit = z.infer<typeof ProgressUnit>;

/**
 * Structured progress of one running step: `done` of `total` units, at `rate` units per second (measured by the step on
 * the run's clock). Progress is shown, never recorded: a step that reports a thousand batches still leaves one step
 * record, and a resumable cursor belongs in the checkpoint, not here.
 */
export const Progress = z
  .object({
    done: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    total: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    unit: ProgressUnit,
    /** Units per second; 0 when nothing has been measured yet. */
    rate: z.number().finite().min(0),
    /** The latest readings behind it, for a watch window ("p95 41 ms, errors 0.10%"). */
    note: z.string().max(300).optional(),
  })
  .strict()
  .refine((p) => p.done <= p.total, { message: "done must not exceed total", path: ["done"] });
export type Progress = z.infer<typeof Progress>;

const UNIT_SINGULAR: Record<ProgressUnit, string> = { records: "record", bytes: "byte", objects: "object", statements: "statement", seconds: "second" };

/** A span of a watch window as people say it: `45s`, `12m 30s`, `1h 5m`. */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s / 60}m`;
  const m = Math.round((s % 3600) / 60);
  return m ? `${Math.floor(s / 3600)}h ${m}m` : `${s / 3600}h`;
}

const grouped = (n: number): string => Math.round(n).toLocaleString("en-US");

/** Bytes in the unit a reader expects (KiB, MiB, ...); other units as grouped integers. */
function amount(n: number, unit: ProgressUnit): string {
  if (unit !== "bytes") return grouped(n);
  const steps = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < steps.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${grouped(v)} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${steps[i]}`;
}

/** The share done, floored so 100% means all of it; null when there is nothing to do. */
export function percentDone(p: Progress): number | null {
  return p.total === 0 ? null : Math.floor((p.done / p.total) * 100);
}

/**
 * One line, the same in the terminal, the Slack progress message and the conversation:
 * `1,200 of 5,000 records (24%) · 310 records/s`, `3.50 MiB of 10.0 MiB (35%) · 1.20 MiB/s`.
 */
export function renderProgress(p: Progress): string {
  const pct = percentDone(p);
  if (p.unit === "seconds") {
    // A watch window: elapsed of its length, what is left, the latest readings.
    return `watched ${span(p.done)} of ${span(p.total)}${pct === null ? "" : ` (${pct}%)`}, ${span(p.total - p.done)} left${p.note ? ` · ${p.note}` : ""}`;
  }
  const noun = p.unit === "bytes" ? "" : ` ${p.total === 1 ? UNIT_SINGULAR[p.unit] : p.unit}`;
  const of = `${amount(p.done, p.unit)} of ${amount(p.total, p.unit)}${noun}${pct === null ? "" : ` (${pct}%)`}`;
  if (p.rate <= 0) return p.note ? `${of} · ${p.note}` : of;
  const rate = p.unit === "bytes" ? `${amount(p.rate, "bytes")}/s` : `${p.rate >= 10 ? grouped(p.rate) : p.rate.toFixed(1)} ${p.unit}/s`;
  return `${of} · ${rate}`;
}

/** Parses what a step reports, naming the step and each bad field: a bug in the step, said clearly. */
export function parseProgress(step: string, value: unknown): Progress {
  const r = Progress.safeParse(value);
  if (r.success) return r.data;
  throw new AgentError("bad-input", `step ${step} reported progress that is not {done, total, unit: records|bytes|objects|statements, rate}: ${describeIssues(r.error, "progress")}`);
}
