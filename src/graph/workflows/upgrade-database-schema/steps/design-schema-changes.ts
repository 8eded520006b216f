import { z } from "zod";
import { defineStep } from "../../../step.js";
import { statementsOf } from "../design.js";
import { SchemaParams } from "../params.js";

export const Designed = z.object({
  statements: z.array(z.object({ sql: z.string(), source: z.enum(["user", "template"]), template: z.string().nullable() })).min(1),
  strategy: z.array(z.string()),
});

export const DesignSchemaChanges = defineStep({
  name: "DesignSchemaChanges",
  description: "Turn the request into DDL: the user's statements as given, or a template for the common changes; state the compatibility strategy",
  input: z.object({ params: SchemaParams }),
  output: Designed,
  prepare: (view) => ({ params: SchemaParams.parse(view.params) }),
  async run(_ctx, { params }) {
    const statements = statementsOf(params.changes);
    const strategy = [
      "expand only: new indexes, nullable columns and extensions are invisible to the running Honua version, so no downtime and no code change is needed first",
      "constraints go in NOT VALID, then VALIDATE, so existing rows are checked without blocking writes",
      "destructive changes (DROP) are a delete gate, after the backup, and only once no Honua version reads what they drop",
    ];
    return { output: { statements, strategy }, reason: statements.map((s) => (s.source === "template" ? `${s.template}: ${s.sql}` : s.sql)).join("; ") };
  },
});
