import { check, describeExpect } from "../../../tools/database/types.js";
import type { DeploymentAdapters } from "../../../tools/types.js";
import type { Preflight } from "../../step.js";
import { databaseOf, statementsOf } from "./design.js";
import type { SchemaParams } from "./params.js";
import { planStatements } from "./safety.js";

/**
 * Before anything starts: the DDL parses, every statement is one the agent can run safely on this schema (bad input
 * otherwise, exit 2, nothing changed), and a change that is already in place starts nothing.
 */
export async function schemaPreflight(deployment: string, adapters: DeploymentAdapters, params: SchemaParams): Promise<Preflight> {
  const db = databaseOf(adapters, deployment);
  const snap = await db.introspect();
  const planned = await planStatements(db, statementsOf(params.changes), snap);
  const ends = planned.map((p) => p.ops.at(-1)!.expect);
  const notes = planned.flatMap((p) => p.notes.filter((n) => /rewritten|volatile|point of no return/.test(n)));
  if (ends.every((e) => check(e, snap) === "holds")) return { inPlace: { summary: "the schema already has this change", evidence: ends.map(describeExpect) }, refuse: null, notes };
  return { inPlace: null, refuse: null, notes };
}
