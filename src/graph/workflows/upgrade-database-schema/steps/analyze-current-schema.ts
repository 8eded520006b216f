import { z } from "zod";
import { MetricsSummary } from "../../../../core/metrics.js";
import { snapshot } from "../../../../tools/metrics/observe.js";
import { defineStep } from "../../../step.js";
import { databaseOf, schemaObjects } from "../design.js";

export const SchemaSummary = z.object({
  database: z.string(),
  serverVersion: z.string(),
  tables: z.array(z.object({ name: z.string(), rows: z.number(), bytes: z.number(), indexes: z.array(z.string()), invalidIndexes: z.array(z.string()) })),
  extensions: z.array(z.string()),
  longTransactions: z.array(z.object({ pid: z.number(), seconds: z.number(), query: z.string() })),
  /** Smoke-query timings before the change (median of 3), ms. */
  smoke: z.array(z.object({ name: z.string(), sql: z.string(), ms: z.number().nullable(), error: z.string().nullable() })),
  baseline: MetricsSummary.nullable(),
  snapshotRef: z.string(),
  /** Every index, table, column, constraint and extension by name: what the integrity check compares. */
  objects: z.array(z.string()),
  notes: z.array(z.string()),
});

export const AnalyzeCurrentSchema = defineStep({
  name: "AnalyzeCurrentSchema",
  description: "Read the live schema from the catalogs (tables and sizes, indexes and validity, constraints, extensions, long transactions); time the smoke queries",
  input: z.object({ lookbackMinutes: z.number().positive() }),
  output: SchemaSummary,
  prepare: () => ({ lookbackMinutes: 60 }),
  async run(ctx, { lookbackMinutes }) {
    const db = databaseOf(ctx.adapters, ctx.deployment);
    const s = await db.introspect();
    const snapshotRef = await ctx.attach("schema-before", s);
    const smoke = [];
    for (const q of db.smokeQueries) {
      try {
        smoke.push({ name: q.name, sql: q.sql, ms: await db.time(q.sql, 3), error: null });
      } catch (e) {
        smoke.push({ name: q.name, sql: q.sql, ms: null, error: e instanceof Error ? e.message : String(e) });
      }
    }
    const notes: string[] = [];
    let baseline: MetricsSummary | null = null;
    try {
      baseline = await snapshot(ctx.adapters, lookbackMinutes, ctx.deploymentConfig.monitoring.sampleEveryMinutes);
    } catch (e) {
      notes.push(`no serving baseline (${e instanceof Error ? e.message : String(e)}): the database's own signal watches the change`);
    }
    for (const t of s.longTransactions) notes.push(`transaction open ${t.seconds}s (pid ${t.pid}): a CONCURRENTLY build waits for it to end`);
    const invalid = s.indexes.filter((i) => !i.valid);
    for (const i of invalid) notes.push(`index ${i.schema}.${i.name} is INVALID (an interrupted CONCURRENTLY build?)`);
    const out = {
      database: db.describe(),
      serverVersion: s.serverVersion,
      tables: s.tables.map((t) => ({ name: `${t.schema}.${t.name}`, rows: t.rows, bytes: t.bytes, indexes: s.indexes.filter((i) => i.schema === t.schema && i.table === t.name).map((i) => i.name), invalidIndexes: s.indexes.filter((i) => i.schema === t.schema && i.table === t.name && !i.valid).map((i) => i.name) })),
      extensions: s.extensions.map((e) => `${e.name} ${e.version}`),
      longTransactions: s.longTransactions.map((t) => ({ pid: t.pid, seconds: t.seconds, query: t.query })),
      smoke,
      baseline,
      snapshotRef,
      objects: [...schemaObjects(s)],
      notes,
    };
    return { output: out, reason: `${s.tables.length} tables, ${s.indexes.length} indexes${invalid.length ? ` (${invalid.length} INVALID)` : ""}, extensions ${s.extensions.map((e) => e.name).join(", ")}`, ...(baseline ? { metrics: { before: baseline } } : {}) };
  },
});
