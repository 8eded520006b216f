/**
 * What to say when a deployment's metrics answer nothing. Honua serves `/metrics` only when HONUA_OBSERVABILITY
 * is true, and its default `.env.example` and Helm values leave it off, so "no data" most often means "never turned
 * on": the message says how to turn it on.
 */

/** How to turn on Honua's `/metrics`, for `source` (the deployment, or the series the agent asked for). */
export function noDataHint(source: string): string {
  return (
    `No Honua metrics from ${source}. Honua's /metrics is off unless HONUA_OBSERVABILITY=true (its default .env.example and Helm values leave it off). ` +
    `To turn it on, set HONUA_OBSERVABILITY=true in the deployment's environment: the compose .env file, the ConfigMap or Secret its pods load ` +
    `(a ConfigMap change needs a rollout restart), or with the Helm chart config.env.HONUA_OBSERVABILITY="true" plus a scrape target ` +
    `(metrics.serviceMonitor.enabled=true, or metrics.serviceAnnotations.enabled=true). Then check that the metrics source scrapes ` +
    `Observability__Prometheus__Path (default /metrics) on it.`
  );
}
