import { createHash } from "node:crypto";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { z } from "zod";
import type { MetricsSummary } from "../core/metrics.js";
import { chartPoints, chartSpec } from "../core/chart.js";
import { trusted, type Html } from "../core/html.js";

/** A metrics source's query log (MetricsQueryLog) as the transcript's evidence keeps it. */
export const QueryLog = z.object({
  source: z.string(),
  at: z.string(),
  queries: z.array(
    z.object({
      reading: z.string(),
      query: z.string(),
      start: z.string(),
      end: z.string(),
      stepSeconds: z.number(),
      points: z.array(z.object({ at: z.string(), value: z.number().nullable(), raw: z.string().nullable().optional(), samples: z.number().optional() })),
    }),
  ),
  noData: z.array(z.object({ at: z.string(), reason: z.string() })).default([]),
});
export type QueryLog = z.infer<typeof QueryLog>;

/**
 * The query logs in one evidence body: a window's evidence is the serving signal's log itself, or a log per signal
 * when other signals were watched too. Bodies of other shapes yield none (the page shows them as JSON).
 */
export function queryLogs(body: unknown): { signal: string; log: QueryLog }[] {
  const one = QueryLog.safeParse(body);
  if (one.success) return [{ signal: "serving", log: one.data }];
  if (!body || typeof body !== "object" || Array.isArray(body)) return [];
  return Object.entries(body).flatMap(([signal, b]) => {
    const r = QueryLog.safeParse(b);
    return r.success ? [{ signal, log: r.data }] : [];
  });
}

const FONT = "DejaVu Sans";

/** Charts drawn lately, by the SHA-256 of their spec: evidence never changes once kept, so a page seen again is quick. */
const drawn = new Map<string, Html>();
const DRAWN_MAX = 200;

async function toSvg(spec: TopLevelSpec): Promise<Html> {
  const key = createHash("sha256").update(JSON.stringify(spec)).digest("hex");
  const hit = drawn.get(key);
  if (hit) return hit;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    const svg = trusted(await view.toSVG());
    if (drawn.size >= DRAWN_MAX) drawn.delete(drawn.keys().next().value!);
    drawn.set(key, svg);
    return svg;
  } finally {
    view.finalize();
  }
}

/** A horizontal line drawn on one reading's chart: the baseline, or the limit over which the window rolls back. */
export interface ChartRule {
  reading: string;
  value: number;
  kind: "baseline" | "limit";
}

/**
 * One small line chart per reading (p95, error rate, hit ratio, ...) of a query log, each with its own scale, and the
 * baseline and rollback limit drawn where they apply.
 */
export function seriesSpec(log: QueryLog, rules: readonly ChartRule[] = []): TopLevelSpec | null {
  const series = log.queries.flatMap((q) => q.points.filter((p) => p.value !== null).map((p) => ({ reading: q.reading, at: p.at, value: p.value, kind: "series" })));
  if (series.length === 0) return null;
  const readings = new Set(series.map((p) => p.reading));
  const values = [...series, ...rules.filter((r) => readings.has(r.reading)).map((r) => ({ reading: r.reading, at: null, value: r.value, kind: r.kind }))];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    background: "white",
    data: { values },
    facet: { field: "reading", type: "nominal", title: null, sort: log.queries.map((q) => q.reading), header: { labelFont: FONT, labelFontSize: 11 } },
    columns: 3,
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 220,
      height: 110,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'series'" }],
          mark: { type: "line", point: { size: 18 }, color: "#2f80ed" },
          encoding: {
            x: { field: "at", type: "temporal", title: null, axis: { labelFont: FONT, format: "%H:%M", labelAngle: 0, tickCount: 4 } },
            y: { field: "value", type: "quantitative", title: null, scale: { zero: false }, axis: { labelFont: FONT } },
          },
        },
        {
          transform: [{ filter: "datum.kind !== 'series'" }],
          mark: { type: "rule", strokeDash: [5, 3], strokeWidth: 1.5 },
          encoding: {
            y: { field: "value", type: "quantitative" },
            color: { field: "kind", type: "nominal", scale: { domain: ["baseline", "limit"], range: ["#7b8794", "#c0392b"] }, legend: { title: null, labelFont: FONT, orient: "bottom" } },
          },
        },
      ],
    },
  };
}

/** The raw series behind a verdict as inline SVG; null when the log holds no numeric point. */
export async function seriesChart(log: QueryLog, rules: readonly ChartRule[] = []): Promise<Html | null> {
  const spec = seriesSpec(log, rules);
  return spec ? toSvg(spec) : null;
}

/** The run's before/after bars (the chart the Slack report attaches), as inline SVG; null with nothing to compare. */
export async function beforeAfterChart(before: MetricsSummary | null, after: MetricsSummary | null): Promise<Html | null> {
  // One side missing (a run rolled back before its after-window) would draw as a zero: no chart then.
  if (!before || !after) return null;
  const points = chartPoints(before, after);
  return points.length ? toSvg(chartSpec("before / after", points)) : null;
}
