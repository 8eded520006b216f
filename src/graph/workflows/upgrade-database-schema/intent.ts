import { Text, matchAll } from "../../../core/text.js";
import type { Extraction, WorkflowIntent } from "../module.js";

/** Something concrete to change; "upgrade the schema" alone is not. */
const CONCRETE_CHANGE =
  /\b(?:index(?:es)?|indices|columns?|constraints?|extensions?|tables?|views?|triggers?|sequences?|partitions?|primary key|foreign key|not null|default|rename|enum|type|postgis|gist|gin|brin|btree|unique|pending|latest|version)\b|\w\.\w|\w_\w|\(/;
/** Asked when no change was given (the model planner asks the same). */
export const CHANGES_QUESTION =
  "What schema change should I make? Give the DDL (e.g. CREATE INDEX ...) or describe it (e.g. add a GIST index on features.geom).";

function extract(t: Text, statements: readonly string[]): Extraction {
  if (statements.length > 0) return { params: { changes: [...statements] }, missing: [], claimed: [] };
  const claimed = matchAll(/\b(?:table|into|from)\s+([a-z_][\w]*)|\b([a-z_][\w]*)\s+(?:table|column)\b/, t.lower).map((m) => m[1] ?? m[2] ?? "");
  if (!CONCRETE_CHANGE.test(t.lower)) return { params: {}, missing: [{ param: "changes", question: CHANGES_QUESTION }], claimed };
  return { params: { changes: t.orig }, missing: [], claimed };
}

export const intent: WorkflowIntent = {
  signals: [
    [/\b(?:index|indexes|indices|columns?|schemas?|ddl|constraints?|not null|primary key|foreign key)\b/, 5],
    [/\b(?:extensions?|postgis|migrations?)\b/, 3],
    [/\b(?:create|drop|alter|rename|partition)\s+(?:the\s+|a\s+|an\s+)?(?:[\w.]+\s+)?tables?\b/, 5],
    [/\btables?\b/, 1],
  ],
  // SQL in a request is a schema change unless a prose clause asks for something else.
  sqlScore: 10,
  vocabulary: {
    triggers: ["schema", "schemas", "index", "indexes", "column", "columns", "extension", "extensions", "migration", "migrations"],
    notTypos: ["scheme", "schemes", "columnar", "indexed"],
    notDeployments: [
      "index", "column", "table", "tables", "schema", "database", "db", "geom", "geometry", "features", "feature",
      "postgis", "extension", "migration", "migrations", "version", "latest",
    ],
    things: ["table", "tables", "column", "columns", "index", "schema", "field", "fields", "database", "db"],
    safeObjects: ["index", "indexes", "indices", "columns?", "constraints?", "extension", "default", "table", "view", "trigger", "sequence"],
  },
  capability: "change the database schema",
  listed: 19,
  extract,
};
