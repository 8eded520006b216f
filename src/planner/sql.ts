/** SQL typed into a request: as code spans, or inline when it reads as SQL (shouted, terminated, with a column list). */
import { resolveDeployment, type AgentConfig } from "../config.js";
import { collapse } from "../core/text.js";

const DDL =
  /\b(?:(?:create|alter|drop)\s+(?:unique\s+)?(?:index|table|extension|view|materialized\s+view|schema|type|sequence|trigger|function|database)|comment\s+on|reindex|truncate|delete\s+from)\b/i;

/** DDL statements in the request, and the request with them cut out. */
export function extractSql(raw: string, config: AgentConfig): { statements: string[]; rest: string } {
  const statements: string[] = [];
  const split = (sql: string): string[] =>
    sql.split(";").map(collapse).filter((s) => s.length > 0);
  let rest = raw.replace(/```(?:sql)?([\s\S]*?)```|`([^`]+)`/gi, (span, block?: string, inline?: string) => {
    const sql = block ?? inline ?? "";
    if (!DDL.test(sql)) return span;
    statements.push(...split(sql));
    return " ";
  });
  if (statements.length > 0) return { statements, rest };

  const start = DDL.exec(rest);
  // Lower-case "create index on x" is a description; SQL is shouted, terminated or has a column list.
  if (!start || (start[0] !== start[0].toUpperCase() && !/[;(]/.test(rest.slice(start.index)))) return { statements, rest };
  const prose: string[] = [rest.slice(0, start.index)];
  const fragments = rest.slice(start.index).split(";");
  fragments.forEach((fragment, i) => {
    const at = DDL.exec(fragment);
    if (!at) return void prose.push(fragment);
    prose.push(fragment.slice(0, at.index));
    let sql = fragment.slice(at.index);
    if (i === fragments.length - 1) {
      // A trailing "on prod" typed in prose style after SQL belongs to the request, not the statement.
      const tail = /\s+(on|in|for|against|to)\s+(?:the\s+)?([A-Za-z][\w-]*)(?:\s+(?:deployment|environment|env|cluster))?\s*[.!]?\s*$/.exec(sql);
      const shouted = at[0] === at[0].toUpperCase();
      if (tail && (resolveDeployment(config, tail[2] ?? "") || (shouted && tail[1] === tail[1]?.toLowerCase()))) {
        prose.push(tail[0]);
        sql = sql.slice(0, tail.index);
      }
    }
    statements.push(...split(sql));
  });
  rest = prose.join(" ");
  return { statements, rest };
}
