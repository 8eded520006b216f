import { z } from "zod";
import type { ChangeSection } from "../../../core/sections.js";
import { analyze, squawk, strongest } from "../../../tools/database/analyze.js";
import { LockMode, Op, type DatabaseCapability, type SchemaSnapshot } from "../../../tools/database/types.js";

export const Finding = z.object({ rule: z.string(), message: z.string(), help: z.string().nullable() });

/** One statement as the gate shows it and the apply step runs it. */
export const PlannedStatement = z.object({
  original: z.string(),
  rewritten: z.string().nullable(),
  source: z.enum(["user", "template"]),
  ops: z.array(Op).min(1),
  strongestLock: LockMode,
  lock: z.string(),
  estimate: z.string().nullable(),
  notes: z.array(z.string()),
  destructive: z.boolean(),
  /** squawk on the statement as given, and on what runs instead (minus the rules the agent enforces itself). */
  squawkOriginal: z.array(Finding),
  squawkRewritten: z.array(Finding),
});
export type PlannedStatement = z.infer<typeof PlannedStatement>;

/** Lints and analyzes every statement against the live schema; throws bad input (nothing changed) on anything it cannot run safely. */
export async function planStatements(db: DatabaseCapability, statements: readonly { sql: string; source: "user" | "template" }[], snapshot?: SchemaSnapshot): Promise<PlannedStatement[]> {
  const snap = snapshot ?? (await db.introspect());
  const major = /^(\d+)/.exec(snap.serverVersion)?.[1] ?? "15";
  const out: PlannedStatement[] = [];
  for (const s of statements) {
    for (const a of await analyze(s.sql, snap)) {
      const squawkOriginal = await squawk(a.original, major);
      const squawkRewritten = a.rewritten ? await squawk(a.ops.map((o) => o.sql).join(";\n"), major) : squawkOriginal;
      const inverses = a.ops.map((o) => (o.inverse.kind === "impossible" ? `cannot be undone: ${o.inverse.why}` : `undo: ${o.inverse.sql}`));
      out.push({
        original: a.original, rewritten: a.rewritten, source: s.source, ops: a.ops, strongestLock: strongest(a.ops), lock: a.lock, estimate: a.estimate,
        notes: [...a.notes, ...[...new Set(inverses)]], destructive: a.destructive, squawkOriginal, squawkRewritten,
      });
    }
  }
  return out;
}

/** The `sql` change section the provision (or delete) gate shows: original, rewritten, lock, estimate, lint. */
export function sqlSection(statements: readonly PlannedStatement[]): ChangeSection {
  return {
    kind: "sql",
    title: "Schema change (each statement in its own session, lock_timeout, retried with backoff)",
    statements: statements.map((s) => ({
      original: s.original,
      rewritten: s.rewritten,
      lock: s.lock,
      estimate: s.estimate,
      notes: [
        ...s.notes,
        ...s.squawkOriginal.filter((f) => s.rewritten && !s.squawkRewritten.some((g) => g.rule === f.rule)).map((f) => `squawk ${f.rule} on the original (fixed by the rewrite): ${f.message}`),
        ...s.squawkRewritten.map((f) => `squawk ${f.rule}: ${f.message}${f.help ? ` (${f.help})` : ""}`),
      ],
    })),
  };
}
