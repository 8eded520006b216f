import { z } from "zod";
import { InvalidModelAnswer, hasEnvelope } from "../../../core/evidence.js";
import { defineTool } from "../module.js";
import { CHANGES_QUESTION } from "./intent.js";
import { ObservabilityChange } from "./params.js";

const Args = z.strictObject({
  changes: z
    .array(
      z.strictObject({
        kind: ObservabilityChange.shape.kind,
        action: ObservabilityChange.shape.action,
        name: z.string().nullable(),
        specJson: z.string().nullable().describe("a JSON object as a string, or null"),
      }),
    )
    .nullable(),
});

/** The spec as an object, or undefined for none; anything else is not an answer that can be planned. */
function specOf(specJson: string | null): Record<string, unknown> | undefined {
  if (specJson === null || specJson.trim() === "") return undefined;
  let spec: unknown;
  try {
    spec = JSON.parse(specJson);
  } catch {
    throw new InvalidModelAnswer(`specJson is not JSON: ${specJson.slice(0, 80)}`);
  }
  if (!spec || typeof spec !== "object" || Array.isArray(spec)) throw new InvalidModelAnswer("specJson is not a JSON object");
  // Plan params go into checkpointed state; an envelope-shaped object would be revived (or dropped) on load.
  if (hasEnvelope(spec)) throw new InvalidModelAnswer("specJson holds an object with an lc key");
  return Object.fromEntries(Object.entries(spec));
}

export const tool = defineTool({
  args: Args,
  paramNames: ["changes"],
  promptRule: 'one entry per change; specJson is a JSON object as a string (e.g. {"metric":"p95_latency_ms","op":">","threshold":500}) or null.',
  toParams({ changes }): { changes?: ObservabilityChange[] } {
    if (!changes) return {};
    return {
      changes: changes.map((c) => {
        const spec = specOf(c.specJson);
        return { kind: c.kind, action: c.action, ...(c.name !== null ? { name: c.name } : {}), ...(spec ? { spec } : {}) };
      }),
    };
  },
  // Names and specs are not compared with the request's wording.
  invented: () => null,
  missing: (params) => (params.changes === undefined ? { param: "changes", question: CHANGES_QUESTION } : null),
});
