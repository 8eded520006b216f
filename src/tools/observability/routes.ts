import { parse } from "yaml";
import { z } from "zod";

const Route: z.ZodType<RouteNode> = z.lazy(() =>
  z.looseObject({
    receiver: z.string().optional(),
    matchers: z.array(z.string()).optional(),
    match: z.record(z.string(), z.string()).optional(),
    match_re: z.record(z.string(), z.string()).optional(),
    continue: z.boolean().optional(),
    routes: z.array(Route).optional(),
  }),
);
interface RouteNode {
  receiver?: string | undefined;
  matchers?: string[] | undefined;
  match?: Record<string, string> | undefined;
  match_re?: Record<string, string> | undefined;
  continue?: boolean | undefined;
  routes?: RouteNode[] | undefined;
}

function matcher(m: string): ((labels: Record<string, string>) => boolean) | null {
  const x = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$/.exec(m);
  if (!x) return null;
  const [, k, op, v] = x as unknown as [string, string, string, string];
  const re = new RegExp(`^(?:${v})$`);
  return (l) => {
    const got = l[k] ?? "";
    return op === "=" ? got === v : op === "!=" ? got !== v : op === "=~" ? re.test(got) : !re.test(got);
  };
}

function matches(r: RouteNode, labels: Record<string, string>): boolean {
  for (const m of r.matchers ?? []) {
    const f = matcher(m);
    if (!f || !f(labels)) return false;
  }
  for (const [k, v] of Object.entries(r.match ?? {})) if ((labels[k] ?? "") !== v) return false;
  for (const [k, v] of Object.entries(r.match_re ?? {})) if (!new RegExp(`^(?:${v})$`).test(labels[k] ?? "")) return false;
  return true;
}

function walk(r: RouteNode, labels: Record<string, string>, inherited: string): string[] {
  const receiver = r.receiver ?? inherited;
  const out: string[] = [];
  for (const child of r.routes ?? []) {
    if (!matches(child, labels)) continue;
    out.push(...walk(child, labels, receiver));
    if (!child.continue) break;
  }
  return out.length ? out : [receiver];
}

/**
 * The receivers Alertmanager's routing tree sends `labels` to (first matching child unless `continue`), for the
 * sandbox where amtool may not be installed; real deployments ask `amtool config routes test`.
 */
export function routeReceivers(config: string, labels: Record<string, string>): string[] {
  const doc = z.looseObject({ route: Route }).parse(parse(config));
  return [...new Set(walk(doc.route, labels, doc.route.receiver ?? ""))];
}

/** The integrations (`webhook`, `slack`, `email`, ...) the named receivers notify through: Alertmanager counts notifications per integration. */
export function integrationsOf(config: string, receivers: readonly string[]): string[] {
  const doc = z.looseObject({ receivers: z.array(z.looseObject({ name: z.string() })).default([]) }).safeParse(parse(config));
  if (!doc.success) return [];
  const out = new Set<string>();
  for (const r of doc.data.receivers) {
    if (!receivers.includes(r.name)) continue;
    for (const k of Object.keys(r)) if (k.endsWith("_configs")) out.add(k.slice(0, -"_configs".length));
  }
  return [...out].sort();
}
