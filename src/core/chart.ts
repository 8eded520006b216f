import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { MetricsSummary } from "./metrics.js";

interface Point {
  metric: string;
  phase: "before" | "after";
  value: number;
}

const FONT = "DejaVu Sans";

/** The before/after numbers worth a bar each; a metric missing on either side is left out. */
export function chartPoints(before: MetricsSummary | null, after: MetricsSummary | null): Point[] {
  const metrics: [string, (m: MetricsSummary) => number | null][] = [
    ["p95 latency (ms)", (m) => m.p95Ms],
    ["error rate (%)", (m) => (m.errorRate === null ? null : Number((m.errorRate * 100).toFixed(3)))],
    ["cache hit ratio (%)", (m) => (m.hitRatio === null ? null : Number((m.hitRatio * 100).toFixed(1)))],
    ["origin load (req/s)", (m) => m.originRequestsPerSecond],
    ["monthly cost (USD)", (m) => m.monthlyCostUsd],
  ];
  const out: Point[] = [];
  for (const [metric, pick] of metrics) {
    const b = before ? pick(before) : null;
    const a = after ? pick(after) : null;
    if (b === null && a === null) continue;
    out.push({ metric, phase: "before", value: b ?? 0 }, { metric, phase: "after", value: a ?? 0 });
  }
  return out;
}

/** A vega-lite spec: one small bar chart per metric, each with its own scale. */
export function chartSpec(title: string, points: Point[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: title, font: FONT, fontSize: 14 },
    background: "white",
    data: { values: points },
    facet: { column: { field: "metric", type: "nominal", title: null, sort: [...new Set(points.map((p) => p.metric))], header: { labelFont: FONT, labelFontSize: 11 } } },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 110,
      height: 160,
      layer: [
        {
          mark: { type: "bar" },
          encoding: {
            x: { field: "phase", type: "nominal", sort: ["before", "after"], title: null, axis: { labelAngle: 0, labelFont: FONT } },
            y: { field: "value", type: "quantitative", title: null, axis: { labelFont: FONT } },
            color: { field: "phase", type: "nominal", sort: ["before", "after"], scale: { range: ["#9aa5b1", "#2f80ed"] }, legend: null },
          },
        },
        {
          mark: { type: "text", dy: -6, font: FONT, fontSize: 10 },
          encoding: {
            x: { field: "phase", type: "nominal", sort: ["before", "after"] },
            y: { field: "value", type: "quantitative" },
            text: { field: "value", type: "quantitative", format: ",.4~g" },
          },
        },
      ],
    },
  };
}

/**
 * Renders the before/after chart to PNG: vega-lite -> vega -> SVG (vega's own headless renderer) -> resvg.
 * Returns null when there is nothing to compare (no metrics on either side).
 */
export async function renderChartPng(title: string, before: MetricsSummary | null, after: MetricsSummary | null): Promise<Buffer | null> {
  const points = chartPoints(before, after);
  if (points.length === 0) return null;
  const view = new vega.View(vega.parse(compile(chartSpec(title, points)).spec), { renderer: "none" });
  try {
    const svg = await view.toSVG(2);
    return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: FONT }, background: "white" }).render().asPng();
  } finally {
    view.finalize();
  }
}
