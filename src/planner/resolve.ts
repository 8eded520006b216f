/**
 * What both planners share after extraction: deployment resolution (name or alias, unknown -> a question
 * naming it) and the clarifying-question shape, so a model answer ends exactly where an offline one would.
 */
import { resolveDeployment, type AgentConfig } from "../config.js";
import { editDistance, escapeRe } from "../core/text.js";
import type { Missing } from "../graph/workflows/module.js";
import { Clarify, type WorkflowId } from "./plan.js";
import { titleOf } from "./registered.js";

/** The deployments a user can pick from (Slack shows them as buttons when the deployment is missing). */
export interface DeploymentChoice {
  name: string;
  aliases: string[];
}
export const deploymentChoices = (config: AgentConfig): DeploymentChoice[] =>
  Object.entries(config.deployments).map(([name, d]) => ({ name, aliases: [...d.aliases] }));

export function nearestDeployment(word: string, config: AgentConfig): string | undefined {
  const lower = word.toLowerCase();
  for (const [name, d] of Object.entries(config.deployments)) {
    if ([name, ...d.aliases].some((n) => lower.length >= 3 && editDistance(lower, n.toLowerCase()) <= 2)) return name;
  }
  return undefined;
}

/** True when `word` occurs in the request as a word of its own: a model may not name a deployment nobody typed. */
export const mentioned = (request: string, word: string): boolean =>
  word.trim() !== "" && new RegExp(`(?<![\\w-])${escapeRe(word.trim())}(?![\\w-])`, "i").test(request);

export type DeploymentResolution =
  | { kind: "known"; name: string }
  | { kind: "none" }
  | { kind: "several" }
  | { kind: "unknown"; asWritten: string };

export function resolveAsWritten(request: string, asWritten: string | null, config: AgentConfig): DeploymentResolution {
  if (asWritten === null || asWritten.trim() === "") return { kind: "none" };
  const word = asWritten.trim();
  // A name the user never typed is a guess (or something steered into the answer): ask instead.
  if (!mentioned(request, word)) return { kind: "none" };
  const name = resolveDeployment(config, word);
  return name ? { kind: "known", name } : { kind: "unknown", asWritten: word };
}

/** A clarifying question whose deployment part reads exactly as the offline planner's. */
export function clarify(
  config: AgentConfig,
  workflow: WorkflowId | null,
  deployment: DeploymentResolution,
  others: readonly Missing[],
): Clarify {
  const known = Object.keys(config.deployments).join(", ");
  const questions: Missing[] = [];
  if (deployment.kind === "unknown") {
    const hint = nearestDeployment(deployment.asWritten, config);
    questions.push({
      param: "deployment",
      question: `Unknown deployment "${deployment.asWritten}"${hint ? ` (did you mean ${hint}?)` : ""}. Known deployments: ${known}. Which one should I use?`,
    });
  } else if (deployment.kind === "none") {
    questions.push({
      param: "deployment",
      question: workflow ? `I can ${titleOf(workflow)}, but on which deployment? Known deployments: ${known}.` : `Which deployment? Known deployments: ${known}.`,
    });
  } else if (deployment.kind === "several") {
    questions.push({
      param: "deployment",
      question: `I can ${workflow ? titleOf(workflow) : "make one change"} on one deployment at a time. Which one? Known deployments: ${known}.`,
    });
  }
  questions.push(...others.filter((o) => o.param !== "deployment"));
  return Clarify.parse({
    clarify: questions.map((q) => q.question).join(" "),
    missing: [...new Set(questions.map((q) => q.param))],
    ...(deployment.kind === "unknown" ? { unknownDeployment: deployment.asWritten } : {}),
  });
}
