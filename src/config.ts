import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { AgentError } from "./core/errors.js";
import { GateKind } from "./core/gates.js";
import { Monitoring } from "./core/monitoring.js";
import { CacheSection } from "./tools/cache/section.js";
import { ConfigSection } from "./tools/config/section.js";
import { CostSection } from "./tools/cost/section.js";
import { MetricsSection } from "./tools/metrics/section.js";
import { StorageSection } from "./tools/storage/section.js";
import { DatabaseSection } from "./tools/database/section.js";
import { ObservabilitySection } from "./tools/observability/section.js";
import { TilesSection } from "./tools/tiles/section.js";
import { TrafficSection } from "./tools/traffic/section.js";



const ApprovalTtl = z
  .object({
    provision: z.number().positive().default(24 * 60),
    traffic: z.number().positive().default(60),
    delete: z.number().positive().default(60),
    inconclusive: z.number().positive().default(60),
    rollback: z.number().positive().default(60),
  })
  .strict();

/**
 * Deployment names and aliases are shown in Slack button labels (75 characters), action ids (255) and
 * headers (150) next to other text: a DNS label's 63 characters keeps every one of them within its limit.
 */
export const DEPLOYMENT_NAME_MAX = 63;
const tooLong = (what: string, name: string): string =>
  `${what} is ${name.length} characters; at most ${DEPLOYMENT_NAME_MAX} are allowed (it is shown in Slack buttons and headers)`;

export const Deployment = z
  .object({
    provider: z.enum(["sandbox", "local", "aws"]),
    aliases: z.array(z.string().min(1).max(DEPLOYMENT_NAME_MAX, { error: (i) => tooLong("an alias", String(i.input)) })).default([]),
    approvers: z.array(z.string().min(1)).min(1, "every deployment needs at least one approver"),
    policy: z
      .object({
        twoPersonRule: z.array(GateKind).default(["delete"]),
        autoApprove: z.array(GateKind).default([]),
        /** How long an approval request stays open; nothing proceeds when it expires (it can be asked again). */
        approvalTtlMinutes: ApprovalTtl.default(ApprovalTtl.parse({})),
      })
      .strict()
      .default({ twoPersonRule: ["delete"], autoApprove: [], approvalTtlMinutes: ApprovalTtl.parse({}) }),
    monitoring: Monitoring.default(Monitoring.parse({})),
    /** Seed of the simulated deployment (sandbox provider only). */
    seed: z.number().int().optional(),
    /** Real providers: Honua's PostgreSQL/PostGIS and how schema changes run on it. */
    database: DatabaseSection.optional(),
    metadata: z.object({ store: z.string(), url: z.string().optional() }).passthrough().optional(),
    /** Real providers: the cache (Redis, ElastiCache, CloudFront or Varnish). */
    cache: CacheSection.optional(),
    /** Real providers: the raster backends, the STAC catalog that points at them, Honua's URL. */
    storage: StorageSection.optional(),
    metrics: MetricsSection.optional(),
    /** The Honua configuration the agent edits (env file, Kubernetes manifest, appsettings.json). */
    config: ConfigSection.optional(),
    /** Shorthand for `config: { kind: appsettings, path }`. */
    appsettings: z.string().min(1).optional(),
    traffic: TrafficSection.optional(),
    tiles: TilesSection.optional(),
    cost: CostSection.optional(),
    /** Real providers: the Prometheus, Alertmanager and Grafana whose rules, routes and dashboards the agent edits. */
    observability: ObservabilitySection.optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    // Which sections a deployment needs depends on the workflow planned there: that is checked when it is planned.
    if (d.config !== undefined && d.appsettings !== undefined) ctx.addIssue({ code: "custom", path: ["appsettings"], message: "give either config or appsettings (the shorthand for config: { kind: appsettings, path }), not both" });
  });
export type Deployment = z.infer<typeof Deployment>;

export const AgentConfig = z
  .object({
    deployments: z.record(z.string(), Deployment)
      // Checked beside the deployments' own problems (a refused record key would hide them).
      .superRefine((d, ctx) => {
        for (const name of Object.keys(d)) {
          if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name)) ctx.addIssue({ code: "custom", path: [name], message: "deployment names are letters, digits, - and _" });
          if (name.length > DEPLOYMENT_NAME_MAX) ctx.addIssue({ code: "custom", path: [name], message: tooLong("a deployment name", name) });
        }
      }, { when: (p) => !!p.value && typeof p.value === "object" })
      .refine((d) => Object.keys(d).length > 0, "at least one deployment is required"),
    groups: z.record(z.string(), z.array(z.string().min(1))).default({}),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;

/** The built-in config: two sandbox deployments, so every workflow can be tried with no setup. */
export const BUILTIN_CONFIG = {
  deployments: {
    prod: { provider: "sandbox", aliases: ["production"], approvers: ["oncall"], seed: 16 },
    staging: {
      provider: "sandbox",
      aliases: ["stage", "stg"],
      approvers: ["oncall"],
      seed: 17,
      monitoring: { windowMinutes: 15, stageMinutes: 5 },
    },
  },
  groups: { oncall: ["alice", "bob"] },
} as const;

/** `${VAR}` in any string value is replaced by the environment variable; a missing one is an error. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: string, errors: string[]): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Z0-9_]+)\}/gi, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        errors.push(`${path}: environment variable ${name} is not set`);
        return "";
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${path}[${i}]`, errors));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, path ? `${path}.${k}` : k, errors)]),
    );
  }
  return value;
}

export interface LoadedConfig {
  config: AgentConfig;
  /** Where it came from: a file path, or "built-in". */
  source: string;
}

/** Parse -> substitute -> validate -> check cross-references. Throws one AgentError listing every problem. */
export function parseConfig(raw: unknown, source: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const errors: string[] = [];
  const substituted = substituteEnv(raw, env, "", errors);
  const parsed = AgentConfig.safeParse(substituted);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push(`${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  if (parsed.success) {
    const seen = new Map<string, string>();
    for (const [name, d] of Object.entries(parsed.data.deployments)) {
      for (const n of [name, ...d.aliases]) {
        const key = n.toLowerCase();
        const other = seen.get(key);
        if (other && other !== name) errors.push(`deployments.${name}: name or alias "${n}" is also used by ${other}`);
        seen.set(key, name);
      }
    }
  }
  if (errors.length > 0 || !parsed.success) {
    throw new AgentError("bad-input", `invalid config (${source}):\n  - ${errors.join("\n  - ")}`);
  }
  return { config: parsed.data, source };
}

/** `HONUA_AGENT_CONFIG`, else ./honua-agent.yaml, else the built-in sandbox config. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const explicit = env.HONUA_AGENT_CONFIG;
  const path = explicit ? resolve(cwd, explicit) : resolve(cwd, "honua-agent.yaml");
  if (!existsSync(path)) {
    if (explicit) throw new AgentError("bad-input", `HONUA_AGENT_CONFIG points at ${path}, which does not exist`);
    return parseConfig(BUILTIN_CONFIG, "built-in", env);
  }
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (e) {
    throw new AgentError("bad-input", `invalid config (${path}): ${(e as Error).message}`);
  }
  return parseConfig(raw, path, env);
}

/** Names and aliases, for planners and error messages. */
export function deploymentNames(config: AgentConfig): { name: string; aliases: string[] }[] {
  return Object.entries(config.deployments).map(([name, d]) => ({ name, aliases: d.aliases }));
}

/** Canonical name for a name or alias (case-insensitive), or undefined. */
export function resolveDeployment(config: AgentConfig, nameOrAlias: string): string | undefined {
  const key = nameOrAlias.toLowerCase();
  for (const [name, d] of Object.entries(config.deployments)) {
    if (name.toLowerCase() === key || d.aliases.some((a) => a.toLowerCase() === key)) return name;
  }
  return undefined;
}

export function requireDeployment(config: AgentConfig, nameOrAlias: string): [string, Deployment] {
  const name = resolveDeployment(config, nameOrAlias);
  if (!name) {
    throw new AgentError(
      "bad-input",
      `unknown deployment "${nameOrAlias}"; known: ${Object.keys(config.deployments).join(", ")}`,
    );
  }
  return [name, config.deployments[name]!];
}

/** Users named directly or through a group. */
export function expandApprovers(config: AgentConfig, approvers: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const a of approvers) {
    const group = config.groups[a];
    if (group) group.forEach((u) => out.add(u));
    else out.add(a);
  }
  return out;
}
