import { parser } from "@prometheus-io/lezer-promql";
import type { SyntaxNode } from "@lezer/common";

/** A vector selector in an expression: the metric name and its equality matchers. */
export interface Selector {
  metric: string;
  equal: Record<string, string>;
  /** True when it also has a !=, =~ or !~ matcher (synthetic series cannot be derived from those). */
  other: boolean;
}

const COMPARISONS: Record<string, string> = { Gtr: ">", Lss: "<", Gte: ">=", Lte: "<=", Eql: "==", Neq: "!=" };

function unquote(s: string): string {
  try {
    return JSON.parse(s.startsWith("'") ? `"${s.slice(1, -1).replace(/"/g, '\\"')}"` : s.startsWith("`") ? JSON.stringify(s.slice(1, -1)) : s) as string;
  } catch {
    return s.slice(1, -1);
  }
}

/** Every vector selector of `expr` (lezer-promql's grammar; promtool is what validates). */
export function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (n) => {
      if (n.name !== "VectorSelector") return;
      const node = n.node;
      const id = node.getChild("Identifier");
      const sel: Selector = { metric: id ? expr.slice(id.from, id.to) : "", equal: {}, other: false };
      const matchers = node.getChild("LabelMatchers");
      if (matchers) {
        for (let m = matchers.firstChild; m; m = m.nextSibling) {
          if (!/LabelMatcher$/.test(m.name)) continue;
          const name = m.getChild("LabelName");
          const op = m.getChild("MatchOp");
          const value = m.getChild("StringLiteral");
          if (!name || !op || !value) {
            // {"name"} or a quoted __name__: the metric name given as a string.
            const q = m.getChild("QuotedLabelName") ?? m.getChild("StringLiteral");
            if (q && !sel.metric) sel.metric = unquote(expr.slice(q.from, q.to));
            continue;
          }
          const k = expr.slice(name.from, name.to);
          const v = unquote(expr.slice(value.from, value.to));
          const o = expr.slice(op.from, op.to);
          if (k === "__name__" && o === "=") sel.metric = v;
          else if (o === "=") sel.equal[k] = v;
          else sel.other = true;
        }
      }
      out.push(sel);
    },
  });
  return out;
}

/** The metric names an expression reads. */
export const metricNames = (expr: string): string[] => [...new Set(selectors(expr).map((s) => s.metric).filter((m) => m !== ""))];

/** True when lezer-promql finds a syntax error (for the sandbox without promtool, and for inputs; promtool has the last word). */
export function hasSyntaxError(expr: string): boolean {
  let bad = false;
  parser.parse(expr).iterate({ enter: (n) => void (n.type.isError && (bad = true)) });
  return bad;
}

/** `<lhs> <comparison> <number>` at the top of an alert expression, with where the number sits. */
export interface Threshold {
  lhs: string;
  op: string;
  value: number;
  /** Character offsets of the number in the expression. */
  from: number;
  to: number;
  lhsNode: SyntaxNode;
}

export function thresholdOf(expr: string): Threshold | null {
  const top = parser.parse(expr).topNode.firstChild;
  if (!top || top.name !== "BinaryExpr") return null;
  let op: SyntaxNode | null = null;
  for (let c = top.firstChild; c; c = c.nextSibling) if (COMPARISONS[c.name]) op = c;
  const last = top.lastChild;
  if (!op || !last || last.name !== "NumberDurationLiteral" || !top.firstChild) return null;
  const value = Number(expr.slice(last.from, last.to));
  if (!Number.isFinite(value)) return null;
  return { lhs: expr.slice(top.firstChild.from, top.firstChild.to), op: COMPARISONS[op.name]!, value, from: last.from, to: last.to, lhsNode: top.firstChild };
}

/** True when the expression's result carries no labels (every path aggregates them away), so an alert's labels are its rule's. */
export function labelFree(n: SyntaxNode, src: string): boolean {
  switch (n.name) {
    case "NumberDurationLiteral":
      return true;
    case "ParenExpr":
      return n.firstChild ? labelFree(n.firstChild, src) : false;
    case "AggregateExpr": {
      const mod = n.getChild("AggregateModifier");
      return !mod || (mod.getChild("By") !== null && mod.getChild("GroupingLabels")?.getChild("LabelName") === null);
    }
    case "FunctionCall": {
      const name = src.slice(n.from, n.to).split("(")[0]!.trim();
      const body = n.getChild("FunctionCallBody");
      if (name === "histogram_quantile" && body) {
        const agg = body.getChild("AggregateExpr");
        if (!agg) return false;
        const labels = agg.getChild("AggregateModifier")?.getChild("GroupingLabels")?.getChildren("LabelName").map((l) => src.slice(l.from, l.to)) ?? [];
        return agg.getChild("AggregateModifier")?.getChild("By") !== null && labels.length === 1 && labels[0] === "le";
      }
      return false;
    }
    case "BinaryExpr": {
      const kids: SyntaxNode[] = [];
      for (let c = n.firstChild; c; c = c.nextSibling) if (!/^(?:Add|Sub|Mul|Div|Mod|Pow|Or|And|Unless|BoolModifier|MatchingModifierClause)$/.test(c.name)) kids.push(c);
      return kids.length === 2 && kids.every((k) => labelFree(k, src));
    }
    default:
      return false;
  }
}
