import { z } from "zod";
import { describeSection } from "../sections.js";

const SecretRef = z.string().regex(/^env:[A-Za-z_][A-Za-z0-9_]*$/, "credentials are given by reference only: env:VARIABLE (the value stays in the environment)");

/**
 * `observability:` the Prometheus whose rules the agent edits (its URL, the folder its `rule_files` glob reads, where
 * its retention flags live), the Alertmanager (URL and config file) and Grafana (URL and a token reference).
 */
export const ObservabilitySection = z
  .object({
    prometheus: z
      .object({
        url: z.url(),
        /** The folder Prometheus's `rule_files` reads (`rules/*.yml`); the agent writes `honua-agent.rules.yml` there. */
        rulesDir: z.string().min(1),
        /** Kubernetes GitOps: PrometheusRule manifests are written here too (the operator loads them). */
        manifestsDir: z.string().min(1).optional(),
        /** The file holding `--storage.tsdb.retention.time` (compose file, manifest, systemd defaults); a change needs a restart. */
        retentionFile: z.string().min(1).optional(),
      })
      .strict(),
    alertmanager: z.object({ url: z.url(), configFile: z.string().min(1) }).strict().optional(),
    grafana: z.object({ url: z.url(), token: SecretRef.optional(), folderUid: z.string().min(1).optional() }).strict().optional(),
    /** Where promtool and amtool are (default /usr/bin). */
    tools: z.object({ promtool: z.string().min(1).optional(), amtool: z.string().min(1).optional() }).strict().optional(),
    /** How long a reload or a test alert's delivery is waited for. */
    confirmSeconds: z.number().positive().max(600).default(30),
  })
  .strict();
export type ObservabilitySection = z.infer<typeof ObservabilitySection>;

export const OBSERVABILITY_EXAMPLE =
  "observability: { prometheus: { url: http://127.0.0.1:9090, rulesDir: /etc/prometheus/rules }, alertmanager: { url: http://127.0.0.1:9093, configFile: /etc/prometheus/alertmanager.yml }, grafana: { url: http://grafana:3000, token: env:GRAFANA_TOKEN } }";

describeSection("observability", { what: "the Prometheus, Alertmanager and Grafana whose rules, routes and dashboards the agent edits", example: OBSERVABILITY_EXAMPLE });
