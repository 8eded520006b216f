import { z } from "zod";

/** One Honua setting as a change: `before` as found (null: unset), `after` as written (null: removed). */
export const ConfigChange = z.object({ key: z.string(), before: z.string().nullable(), after: z.string().nullable() });
export type ConfigChange = z.infer<typeof ConfigChange>;

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type Scalar = z.infer<typeof Scalar>;

/**
 * What a gate shows beyond config, resources and traffic: each a typed section, rendered by one function for the
 * terminal, the Slack card and the conversation, and every byte of it inside the plan hash the approval is bound to.
 */
export const ChangeSection = z.discriminatedUnion("kind", [
  /** DDL as the user gave it and as it will run, with the lock it takes and what that costs at this table size. */
  z.object({
    kind: z.literal("sql"),
    title: z.string().default("SQL"),
    statements: z.array(
      z.object({
        original: z.string(),
        /** The safe form that runs instead (CONCURRENTLY, NOT VALID + VALIDATE); null when the original runs as given. */
        rewritten: z.string().nullable(),
        /** The lock level taken ("SHARE UPDATE EXCLUSIVE on features"). */
        lock: z.string(),
        /** How long it holds it, or runs, at this table's size. */
        estimate: z.string().nullable(),
        notes: z.array(z.string()).default([]),
      }),
    ),
  }),
  /** Field to field, with the transform between. */
  z.object({
    kind: z.literal("mapping"),
    title: z.string(),
    rows: z.array(z.object({ from: z.string(), to: z.string(), transform: z.string().nullable() })),
  }),
  /** Rows and columns (placement rules and their effect, validation counts). */
  z.object({
    kind: z.literal("table"),
    title: z.string(),
    columns: z.array(z.string()).min(1),
    rows: z.array(z.array(Scalar)),
  }),
  /** A file's change as a unified diff (rule, route and dashboard files), secrets masked. */
  z.object({ kind: z.literal("textDiff"), title: z.string(), path: z.string().nullable(), diff: z.string() }),
]);
export type ChangeSection = z.infer<typeof ChangeSection>;

const cell = (v: Scalar): string => (v === null ? "" : String(v));

/** A section as plain lines: the one rendering the terminal, the Slack card (as code) and the conversation share. */
export function renderSection(s: ChangeSection): { title: string; lines: string[] } {
  switch (s.kind) {
    case "sql":
      return {
        title: s.title,
        lines: s.statements.flatMap((st, i) => [
          `${i + 1}. ${st.rewritten ?? st.original}`,
          ...(st.rewritten ? [`   (you gave: ${st.original})`] : []),
          `   lock: ${st.lock}${st.estimate ? ` · ${st.estimate}` : ""}`,
          ...st.notes.map((n) => `   note: ${n}`),
        ]),
      };
    case "mapping":
      return { title: s.title, lines: s.rows.map((r) => `${r.from} -> ${r.to}${r.transform ? ` (${r.transform})` : ""}`) };
    case "table": {
      const rows = [s.columns, ...s.rows.map((r) => r.map(cell))];
      const widths = s.columns.map((_, i) => Math.min(40, Math.max(...rows.map((r) => (r[i] ?? "").length))));
      const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
      return { title: s.title, lines: [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)] };
    }
    case "textDiff":
      return { title: s.path ? `${s.title} (${s.path})` : s.title, lines: s.diff.split("\n") };
  }
}
