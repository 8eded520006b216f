import { stringify } from "yaml";
import { labelFree, selectors, thresholdOf, type Selector } from "./promql.js";

/** An alert rule to prove: it fires on a synthetic bad series and stays quiet on a good one. */
export interface RuleUnderTest {
  name: string;
  expr: string;
  for: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

type Series = { series: string; values: string }[];

const minutesOf = (d: string | null): number => {
  if (!d) return 0;
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * ({ ms: 1 / 60_000, s: 1 / 60, m: 1, h: 60, d: 1440, w: 10_080, y: 525_600 }[m[2] as "m"] ?? 0);
  return Math.ceil(total);
};

const labelText = (metric: string, labels: Record<string, string>) =>
  `${metric}{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")}}`;

/** A counter growing by `perMinute` every minute, for `n` minutes. */
const counter = (perMinute: number, n: number) => `0+${perMinute}x${n}`;
const gauge = (v: number, n: number) => `${v}x${n}`;
const num = (x: number) => Number(x.toPrecision(12)).toString();

const equalOf = (sels: Selector[], metric: string): Record<string, string> => Object.assign({}, ...sels.filter((s) => s.metric === metric).map((s) => s.equal));

/**
 * Bad and good series for one alert rule, or why none can be derived. Known shapes: a latency histogram quantile, the
 * error ratio, the cache hit ratio (each over Honua's real series), and a gauge or a ratio of two gauges compared with a
 * number. Anything else is checked by promtool only, and the card says so.
 */
function seriesFor(r: RuleUnderTest, n: number): { bad: Series; good: Series; labels: Record<string, string> } | { none: string } {
  const t = thresholdOf(r.expr);
  if (!t) return { none: "the expression is not `<measure> <comparison> <number>`" };
  const sels = selectors(r.expr);
  if (sels.some((s) => s.other && !/error_total$/.test(s.metric))) return { none: "a selector uses !=, =~ or !~ matchers" };
  const metrics = [...new Set(sels.map((s) => s.metric))];
  const above = t.op === ">" || t.op === ">=";
  const below = t.op === "<" || t.op === "<=";
  if (!above && !below) return { none: `comparison ${t.op} has no bad or good side` };
  const free = labelFree(t.lhsNode, r.expr);
  const bucket = metrics.find((m) => m.endsWith("_bucket"));
  if (bucket && /histogram_quantile/.test(t.lhs) && free) {
    const v = Math.max(t.value, 1e-6);
    const les = [v / 2, v * 2, v * 4];
    const eq = equalOf(sels, bucket);
    const make = (where: "low" | "high"): Series => [
      ...les.map((le, i) => ({ series: labelText(bucket, { ...eq, le: num(le) }), values: counter(where === "low" || i === 2 ? 60 : 0, n) })),
      { series: labelText(bucket, { ...eq, le: "+Inf" }), values: counter(60, n) },
    ];
    return above ? { bad: make("high"), good: make("low"), labels: {} } : { bad: make("low"), good: make("high"), labels: {} };
  }
  if (metrics.includes("honua_request_error_total") && free && above && t.value < 1) {
    const count = metrics.find((m) => m.endsWith("_count")) ?? "honua_serving_request_duration_ms_count";
    const errors = (perMinute: number): Series => [
      { series: labelText("honua_request_error_total", { ...equalOf(sels, "honua_request_error_total"), in_band: "true", error_code: "500" }), values: counter(perMinute, n) },
      { series: labelText(count, equalOf(sels, count)), values: counter(60, n) },
    ];
    return { bad: errors(60), good: errors(0), labels: {} };
  }
  if (metrics.includes("honua_cache_hits_total") && metrics.includes("honua_cache_misses_total") && free && below && t.value > 0 && t.value <= 1) {
    const cache = (hits: number, misses: number): Series => [
      { series: labelText("honua_cache_hits_total", equalOf(sels, "honua_cache_hits_total")), values: counter(hits, n) },
      { series: labelText("honua_cache_misses_total", equalOf(sels, "honua_cache_misses_total")), values: counter(misses, n) },
    ];
    return { bad: cache(0, 60), good: cache(60, 0), labels: {} };
  }
  // A gauge, or a ratio of two gauges with the same labels, compared with a number.
  const step = Math.max(1, Math.abs(t.value));
  const badV = above ? t.value + step : t.value - step;
  const goodV = above ? t.value - step : t.value + step;
  const lhs = t.lhsNode;
  const plain = (node: typeof lhs) => node.name === "VectorSelector";
  if (plain(lhs) && sels.length === 1) {
    const s = sels[0]!;
    const mk = (v: number): Series => [{ series: labelText(s.metric, s.equal), values: gauge(v, n) }];
    return { bad: mk(badV), good: mk(goodV), labels: s.equal };
  }
  if (lhs.name === "BinaryExpr" && lhs.getChild("Div") && sels.length === 2 && plain(lhs.firstChild!) && plain(lhs.lastChild!) && JSON.stringify(sels[0]!.equal) === JSON.stringify(sels[1]!.equal)) {
    const [a, b] = sels as [Selector, Selector];
    const mk = (v: number): Series => [
      { series: labelText(a.metric, a.equal), values: gauge(v * 100, n) },
      { series: labelText(b.metric, b.equal), values: gauge(100, n) },
    ];
    return { bad: mk(badV), good: mk(goodV), labels: a.equal };
  }
  if (lhs.name === "AggregateExpr" && free && sels.length === 1 && !sels[0]!.metric.endsWith("_total")) {
    const s = sels[0]!;
    const mk = (v: number): Series => [{ series: labelText(s.metric, s.equal), values: gauge(v, n) }];
    return { bad: mk(badV), good: mk(goodV), labels: {} };
  }
  return { none: "the expression's shape has no synthetic series here (not a histogram quantile, error or hit ratio, or a gauge)" };
}

/**
 * promtool unit tests (`promtool test rules`) for `rules` in `ruleFiles`: for each rule, one test whose input is a bad
 * series (the alert must fire once `for` has passed) and one whose input is a good series (no alert). Returns the test
 * file and, per rule it could not test, why.
 */
export function unitTests(ruleFiles: readonly string[], rules: readonly RuleUnderTest[]): { yaml: string | null; tested: string[]; untested: { rule: string; why: string }[] } {
  const tests: unknown[] = [];
  const tested: string[] = [];
  const untested: { rule: string; why: string }[] = [];
  for (const r of rules) {
    const hold = minutesOf(r.for);
    const evalAt = hold + 10;
    const n = evalAt + 10;
    const s = Object.values(r.annotations).some((a) => a.includes("{{"))
      ? { none: "its annotations are templates, whose rendered text a unit test would have to guess" }
      : seriesFor(r, n);
    if ("none" in s) {
      untested.push({ rule: r.name, why: s.none });
      continue;
    }
    tested.push(r.name);
    tests.push({
      name: `${r.name} fires on a bad series`,
      interval: "1m",
      input_series: s.bad,
      alert_rule_test: [{ eval_time: `${evalAt}m`, alertname: r.name, exp_alerts: [{ exp_labels: { ...s.labels, ...r.labels }, ...(Object.keys(r.annotations).length ? { exp_annotations: r.annotations } : {}) }] }],
    });
    tests.push({
      name: `${r.name} stays quiet on a good series`,
      interval: "1m",
      input_series: s.good,
      alert_rule_test: [{ eval_time: `${evalAt}m`, alertname: r.name, exp_alerts: [] }],
    });
  }
  if (tests.length === 0) return { yaml: null, tested, untested };
  return { yaml: stringify({ rule_files: [...ruleFiles], evaluation_interval: "1m", tests }), tested, untested };
}
