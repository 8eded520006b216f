/**
 * Which workflow a request asks for: each registered intent scores the request by its signals, the best score of at
 * least MIN_SCORE wins, and a tie goes to the workflow the registry lists first (the more specific one). A request
 * whose clauses pick different workflows asks for more than one change.
 */
import { Text, unique } from "../core/text.js";
import { clauses } from "../core/grammar.js";
import { byPriority, type Plannable } from "./registered.js";

const MIN_SCORE = 3;

function strongest(lower: string, sql: boolean): Plannable | undefined {
  let best: Plannable | undefined;
  let bestScore = MIN_SCORE - 1;
  for (const p of byPriority()) {
    const score = p.intent.signals.reduce((n, [re, weight]) => n + (re.test(lower) ? weight : 0), sql ? p.intent.sqlScore : 0);
    if (score > bestScore) [best, bestScore] = [p, score];
  }
  return best;
}

/** The workflow SQL alone asks for: the highest `sqlScore` (ties: the registry's order). */
function sqlOwner(): Plannable | undefined {
  let best: Plannable | undefined;
  for (const p of byPriority()) if (p.intent.sqlScore > (best?.intent.sqlScore ?? 0)) best = p;
  return best;
}

/** One workflow, several (one per change asked for, in order), or none. */
export function chooseWorkflow(t: Text, sql: boolean): Plannable | Plannable[] | undefined {
  const whole = strongest(t.lower, sql);
  if (!whole) return undefined;
  const perClause = unique(clauses(t).flatMap((c) => strongest(c.lower, false) ?? []));
  if (sql) {
    // The SQL was cut out of `t`: a prose clause asking for another change ("add redis, then DROP TABLE x") is a
    // second change, not a preamble to the SQL.
    const owner = sqlOwner();
    if (owner && perClause.some((w) => w !== owner)) return unique([owner, ...perClause]);
  }
  return perClause.length > 1 ? perClause : whole;
}
