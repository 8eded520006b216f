import { AgentError } from "../core/errors.js";

/** How the Slack front connects, resolved once from the environment. */
export type SlackSettings = {
  botToken: string;
  /** Web API base, e.g. `https://slack.com/api/` or a proxy; tests point it at a local fake. */
  apiUrl: string | undefined;
  /** Port for /slack/events (HTTP mode) and /healthz, /metrics (both modes). */
  port: number;
  host: string;
  /** Known bot identity (skips auth.test); otherwise auth.test is called once at startup. */
  botUserId: string | undefined;
  botId: string | undefined;
} & ({ mode: "socket"; appToken: string; signingSecret: string | undefined } | { mode: "http"; signingSecret: string; appToken?: undefined });

/** True when the environment asks for the Slack front (used by the default command). */
export const slackConfigured = (env: NodeJS.ProcessEnv): boolean => !!env.SLACK_BOT_TOKEN;

/**
 * Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP with SLACK_SIGNING_SECRET.
 * Throws one error naming every missing or malformed variable, so a half-configured bot never starts.
 */
export function slackSettings(env: NodeJS.ProcessEnv): SlackSettings {
  const problems: string[] = [];
  const botToken = env.SLACK_BOT_TOKEN?.trim();
  if (!botToken) problems.push("SLACK_BOT_TOKEN is not set (the bot token, xoxb-..., from OAuth & Permissions)");
  else if (!botToken.startsWith("xoxb-")) problems.push("SLACK_BOT_TOKEN should be a bot token starting with xoxb-");
  const appToken = env.SLACK_APP_TOKEN?.trim() || undefined;
  if (appToken && !appToken.startsWith("xapp-")) problems.push("SLACK_APP_TOKEN should be an app-level token starting with xapp- (Basic Information > App-Level Tokens, scope connections:write)");
  const signingSecret = env.SLACK_SIGNING_SECRET?.trim() || undefined;
  if (!appToken && !signingSecret) {
    problems.push("SLACK_SIGNING_SECRET is not set (Basic Information > Signing Secret); it is required in HTTP mode. For Socket Mode set SLACK_APP_TOKEN instead");
  }
  const portText = env.PORT ?? "3000";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) problems.push(`PORT must be a port number, got "${portText}"`);
  const apiUrl = env.SLACK_API_URL?.trim() || undefined;
  if (apiUrl && !/^https?:\/\//.test(apiUrl)) problems.push(`SLACK_API_URL must be an http(s) URL, got "${apiUrl}"`);
  if (problems.length > 0) throw new AgentError("bad-input", `Slack is not configured:\n  - ${problems.join("\n  - ")}`);
  const common = {
    botToken: botToken!,
    apiUrl: apiUrl ? (apiUrl.endsWith("/") ? apiUrl : `${apiUrl}/`) : undefined,
    port,
    host: env.HOST ?? "0.0.0.0",
    botUserId: env.SLACK_BOT_USER_ID || undefined,
    botId: env.SLACK_BOT_ID || undefined,
  };
  return appToken ? { ...common, mode: "socket", appToken, signingSecret } : { ...common, mode: "http", signingSecret: signingSecret! };
}
