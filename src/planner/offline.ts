/**
 * The deterministic planner: free text -> one typed plan, a clarifying question, or a refusal.
 * It runs when no model key is configured and is the baseline the model planner is evaluated against.
 * Conservative by design: when the deployment or the change itself is unclear it asks, it never guesses.
 * This file is the generic engine; what each workflow's requests look like is its folder's intent.
 */
import type { AgentConfig } from "../config.js";
import { Text, requestTooLong, spansOf } from "../core/text.js";
import { chooseWorkflow } from "./choose.js";
import { knownDeployments, unknownDeployment } from "./deployment.js";
import { MANIPULATION, fixTypos, normalizeChars, tidy } from "./hygiene.js";
import { Clarify, PlanResult } from "./plan.js";
import { refusalText } from "./registered.js";
import { refusal } from "./refusals.js";
import { clarify, type DeploymentResolution } from "./resolve.js";
import { extractSql } from "./sql.js";

export function planOffline(request: string, config: AgentConfig): PlanResult {
  const tooLong = requestTooLong(request);
  return tooLong ? { refuse: tooLong } : readRequest(request, config);
}

/**
 * The reading itself, for text of any length: every pass over it is linear (the hostile-input property test runs
 * it on Slack-sized text, ten times the request limit, to show that).
 */
export function readRequest(request: string, config: AgentConfig): PlanResult {
  const keep = new Set(Object.entries(config.deployments).flatMap(([n, d]) => [n, ...d.aliases].map((w) => w.toLowerCase())));
  const { statements, rest } = extractSql(normalizeChars(request), config);
  const typed = Text.of(fixTypos(rest, keep));
  const manipulation = spansOf(MANIPULATION, typed.lower);
  const text = tidy(typed.without(manipulation));

  const refused = refusal(text.lower, statements);
  if (refused) return { refuse: refusalText(refused) };
  const workflow = chooseWorkflow(text, statements.length > 0);
  if (!workflow) return { refuse: refusalText(manipulation.length > 0 ? "manipulation" : "out-of-scope") };
  if (Array.isArray(workflow)) {
    const titles = workflow.map((w) => w.title).join("; ");
    return Clarify.parse({ clarify: `That is more than one change (${titles}). I run one workflow at a time: which should I do first?`, missing: ["workflow"] });
  }

  const deployment = knownDeployments(text, config);
  const extraction = workflow.intent.extract(tidy(text.without(deployment.spans)), statements);
  let resolution: DeploymentResolution;
  if (deployment.kind === "known") resolution = { kind: "known", name: deployment.name };
  else if (deployment.kind === "several") resolution = { kind: "several" };
  else {
    const unknown = unknownDeployment(text, new Set(extraction.claimed));
    resolution = unknown ? { kind: "unknown", asWritten: unknown } : { kind: "none" };
  }
  if (resolution.kind !== "known" || extraction.missing.length > 0) return clarify(config, workflow.id, resolution, extraction.missing);
  // Parsing is the last line of defence: a param the schema rejects is a planner bug, never a plan.
  return PlanResult().parse({ workflow: workflow.id, deployment: resolution.name, params: extraction.params });
}
