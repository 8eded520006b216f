/**
 * What both planners share after extraction: deployment resolution (name or alias, unknown -> a question
 * naming it), the clarifying-question shape and the refusal texts, so a model answer ends exactly where an
 * offline one would.
 */
import { resolveDeployment, type AgentConfig } from "../config.js";
import type { Clarify, WorkflowId } from "./plan.js";
import { Clarify as ClarifySchema } from "./plan.js";

export const WORKFLOW_TITLES: Record<WorkflowId, string> = {
  "add-caching-layer": "add a caching layer",
  "modify-metadata-storage": "move the metadata store",
  "add-storage-backend": "add a storage backend",
  "upgrade-database-schema": "change the database schema",
  "modify-observability": "change alerts, dashboards or retention",
};

export const CAPABILITIES =
  "I can add a caching layer (redis, varnish, cloudfront), move the metadata store (postgres, sqlite, files, " +
  "elasticsearch, opensearch), add a storage backend (s3, azure-blob, gcs, filesystem), change the database schema, " +
  "or change observability (alert rules, recording rules, dashboards, alert routes, Prometheus retention).";

export const REFUSAL_TEXT = {
  "out-of-scope": `That isn't one of the changes I make. ${CAPABILITIES}`,
  destructive: `I won't do that: deleting or wiping deployments, databases, data or infrastructure is not one of my workflows. ${CAPABILITIES}`,
  manipulation: `Approvals come from the deployment's policy; a request can't skip, disable or grant them. ${CAPABILITIES}`,
} as const;

/** Questions for required details, worded as the offline planner asks them. */
export const DETAIL_QUESTIONS = {
  toStore: "Which metadata store should I move to: postgres, sqlite, files, elasticsearch, opensearch?",
  schemaChanges:
    "What schema change should I make? Give the DDL (e.g. CREATE INDEX ...) or describe it (e.g. add a GIST index on features.geom).",
  observabilityChanges:
    "What should change? I can add, modify or remove alert rules, recording rules, dashboards and alert routes, or set Prometheus retention.",
} as const;

/** The deployments a user can pick from (Slack shows them as buttons when the deployment is missing). */
export interface DeploymentChoice {
  name: string;
  aliases: string[];
}
export const deploymentChoices = (config: AgentConfig): DeploymentChoice[] =>
  Object.entries(config.deployments).map(([name, d]) => ({ name, aliases: [...d.aliases] }));

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

export function nearestDeployment(word: string, config: AgentConfig): string | undefined {
  const lower = word.toLowerCase();
  for (const [name, d] of Object.entries(config.deployments)) {
    if ([name, ...d.aliases].some((n) => lower.length >= 3 && editDistance(lower, n.toLowerCase()) <= 2)) return name;
  }
  return undefined;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** True when `word` occurs in the request as a word of its own: a model may not name a deployment nobody typed. */
export const mentioned = (request: string, word: string): boolean =>
  word.trim() !== "" && new RegExp(`(?<![\\w-])${escapeRe(word.trim())}(?![\\w-])`, "i").test(request);

export type DeploymentResolution =
  | { kind: "known"; name: string }
  | { kind: "none" }
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
  others: readonly { param: string; question: string }[],
): Clarify {
  const known = Object.keys(config.deployments).join(", ");
  const questions: { param: string; question: string }[] = [];
  if (deployment.kind === "unknown") {
    const hint = nearestDeployment(deployment.asWritten, config);
    questions.push({
      param: "deployment",
      question: `Unknown deployment "${deployment.asWritten}"${hint ? ` (did you mean ${hint}?)` : ""}. Known deployments: ${known}. Which one should I use?`,
    });
  } else if (deployment.kind === "none") {
    questions.push({
      param: "deployment",
      question: workflow ? `I can ${WORKFLOW_TITLES[workflow]}, but on which deployment? Known deployments: ${known}.` : `Which deployment? Known deployments: ${known}.`,
    });
  }
  questions.push(...others.filter((o) => o.param !== "deployment"));
  return ClarifySchema.parse({
    clarify: questions.map((q) => q.question).join(" "),
    missing: [...new Set(questions.map((q) => q.param))],
    ...(deployment.kind === "unknown" ? { unknownDeployment: deployment.asWritten } : {}),
  });
}
