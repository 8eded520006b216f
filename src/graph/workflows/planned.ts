import { z } from "zod";
import type { GateKind } from "../../core/gates.js";
import { AgentError } from "../../core/errors.js";
import { defineStep, type RunView, type Step } from "../step.js";

/**
 * A step whose gate is part of the contract but whose adapters are not in this version yet.
 * Running it fails loudly; nothing pretends to have happened.
 */
export function notYetAvailable(workflow: string, name: string, gate?: GateKind | ((view: RunView) => GateKind)): Step {
  return defineStep({
    name,
    description: name,
    input: z.null(),
    output: z.null(),
    prepare: () => null,
    run: async () => {
      throw new AgentError("unavailable", `${workflow}/${name} is not available in this version of honua-agent`);
    },
    ...(gate ? { gate: { kind: gate, describe: async () => ({ action: name, why: "", risk: "", change: {} }) } } : {}),
  });
}

export const hasDrop = (view: RunView): boolean => {
  const changes = view.params.changes;
  const text = Array.isArray(changes) ? changes.join(";") : String(changes ?? "");
  return /\bdrop\b/i.test(text);
};

export const hasRemoval = (view: RunView): boolean => {
  const changes = view.params.changes;
  return Array.isArray(changes) && changes.some((c) => typeof c === "object" && c !== null && (c as { action?: unknown }).action === "remove");
};
