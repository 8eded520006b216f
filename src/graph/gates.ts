import { createHash } from "node:crypto";
import { expandApprovers, type AgentConfig } from "../config.js";
import type { DecisionKind, GatePayload } from "./state.js";

/** Canonical JSON: object keys sorted, so the same payload always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The hash an approval is bound to: everything the approver was shown. */
export function planHash(payload: GatePayload): string {
  return createHash("sha256").update(canonicalJson(payload)).digest("hex").slice(0, 16);
}

export type PolicyVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Who may decide a gate: the deployment's approvers (users or groups). On gate kinds under the
 * two-person rule the requester may not approve their own change (rejecting it is always allowed).
 */
export function mayDecide(
  config: AgentConfig,
  deployment: string,
  gate: { kind: DecisionKind; requestedBy: string },
  user: string,
  decision: "approve" | "reject",
): PolicyVerdict {
  const d = config.deployments[deployment];
  if (!d) return { ok: false, reason: `unknown deployment ${deployment}` };
  const allowed = expandApprovers(config, d.approvers);
  if (!allowed.has(user)) {
    return { ok: false, reason: `${user} may not decide on ${deployment}; approvers: ${[...allowed].sort().join(", ")}` };
  }
  if (
    decision === "approve" &&
    gate.kind !== "inconclusive" &&
    d.policy.twoPersonRule.includes(gate.kind) &&
    user === gate.requestedBy
  ) {
    return {
      ok: false,
      reason: `two-person rule: ${user} requested this run and may not approve its own ${gate.kind} on ${deployment}; another approver must`,
    };
  }
  return { ok: true };
}

/** Gate kinds a deployment's policy approves without a human; the decision is recorded as "auto". */
export function autoApproves(config: AgentConfig, deployment: string, kind: DecisionKind): boolean {
  const d = config.deployments[deployment];
  return kind !== "inconclusive" && !!d && d.policy.autoApprove.includes(kind);
}
