import { z } from "zod";
import { sqlText } from "../../../core/evidence.js";
import { defineTool } from "../module.js";
import { CHANGES_QUESTION } from "./intent.js";

const Args = z.strictObject({
  ddl: z.array(z.string()).nullable().describe("SQL statements, when the user gave SQL"),
  description: z.string().nullable().describe("the change in the user's words, when no SQL was given"),
});

export const tool = defineTool({
  args: Args,
  paramNames: ["changes"],
  promptRule: "ddl holds SQL statements without trailing semicolons; otherwise description holds the user's wording of the change.",
  toParams({ ddl, description }): { changes?: string[] | string } {
    const changes = ddl && ddl.length > 0 ? ddl.map((s) => s.trim().replace(/;+$/, "").trim()).filter(Boolean) : description;
    return changes === null ? {} : { changes };
  },
  invented(params, request) {
    if (!Array.isArray(params.changes)) return null;
    // SQL must be the user's SQL: the statements are run as written.
    const sql = sqlText(request);
    const foreign = params.changes.find((st) => !sql.includes(sqlText(st)));
    return foreign === undefined ? null : `SQL not in the request: ${foreign.slice(0, 80)}`;
  },
  missing: (params) => (params.changes === undefined ? { param: "changes", question: CHANGES_QUESTION } : null),
});
