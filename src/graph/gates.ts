import { createHash } from "node:crypto";
import { canonicalJson } from "../core/canonical.js";
import { expandApprovers, type AgentConfig } from "../config.js";
import { GateKind } from "../core/gates.js";
import type { GatePayload } from "./state.js";
import type { DecisionKind } from "../core/gates.js";

/** The hash an approval is bound to: everything the approver was shown. */
export function planHash(payload: GatePayload): string {
  return createHash("sha256").update(canonicalJson(payload)).digest("hex").slice(0, 16);
}

export { canonicalJson };

export type PolicyVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Who acts. `groups` are external groups (e.g. Slack user-group ids or handles) whose membership the caller
 * verified; they match deployment approvers alongside the config's own groups.
 */
export type Actor = string | { user: string; groups?: readonly string[] };
export interface Identity {
  user: string;
  groups: string[];
}
export const identity = (a: Actor): Identity => (typeof a === "string" ? { user: a, groups: [] } : { user: a.user, groups: [...(a.groups ?? [])] });

/** Whether the actor is one of the deployment's approvers, by name or through a config or verified group. */
export function isApprover(config: AgentConfig, deployment: string, actor: Actor): boolean {
  const d = config.deployments[deployment];
  if (!d) return false;
  const who = identity(actor);
  const allowed = expandApprovers(config, d.approvers);
  // A verified external group counts whether it is listed directly or inside one of the config's groups.
  return allowed.has(who.user) || who.groups.some((g) => allowed.has(g) || d.approvers.includes(g));
}

/** Everyone who may decide on a deployment, for messages ("approvers: ..."). */
export const approverList = (config: AgentConfig, deployment: string): string =>
  [...expandApprovers(config, config.deployments[deployment]?.approvers ?? [])].sort().join(", ");

/**
 * Who may decide a gate: the deployment's approvers (users or groups). On gate kinds under the
 * two-person rule the requester may not approve their own change. Whoever requested a run may also continue
 * or cancel it while paused, and reject it at a gate: none of these bypasses a gate.
 */
export function mayDecide(
  config: AgentConfig,
  deployment: string,
  gate: { kind: DecisionKind; requestedBy: string },
  actor: Actor,
  decision: "approve" | "reject",
): PolicyVerdict {
  const d = config.deployments[deployment];
  if (!d) return { ok: false, reason: `unknown deployment ${deployment}` };
  const who = identity(actor);
  const approver = isApprover(config, deployment, who);
  // The requester may continue or cancel their own paused run, and withdraw (reject) their own change at any gate
  // but a rollback request: rejecting that one would keep a change someone asked to undo.
  const ownRequest = who.user === gate.requestedBy && (gate.kind === "paused" || (decision === "reject" && gate.kind !== "rollback"));
  if (!approver && !ownRequest) {
    return { ok: false, reason: `${who.user} may not decide on ${deployment}; approvers: ${approverList(config, deployment)}` };
  }
  if (decision === "approve" && GateKind.safeParse(gate.kind).success && d.policy.twoPersonRule.includes(gate.kind as GateKind) && who.user === gate.requestedBy) {
    return {
      ok: false,
      reason: `two-person rule: ${who.user} requested this run and may not approve its own ${gate.kind} on ${deployment}; another approver must`,
    };
  }
  return { ok: true };
}

/** Gate kinds a deployment's policy approves without a human; the decision is recorded as "auto". */
export function autoApproves(config: AgentConfig, deployment: string, kind: DecisionKind): boolean {
  const d = config.deployments[deployment];
  const gk = GateKind.safeParse(kind);
  return gk.success && !!d && d.policy.autoApprove.includes(gk.data);
}
