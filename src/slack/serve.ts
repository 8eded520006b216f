import { AgentError, EXIT } from "../core/errors.js";
import { startServer } from "./server.js";

/**
 * The `serve` command: starts the Slack front and runs until SIGINT/SIGTERM, then drains work in flight.
 * Incomplete configuration exits 2 with the missing variable named; nothing is started.
 */
export async function serveCommand(env: NodeJS.ProcessEnv = process.env): Promise<never> {
  let server;
  try {
    server = await startServer({ env });
  } catch (e) {
    process.stderr.write(`honua-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof AgentError && e.code === "bad-input" ? EXIT.badInput : EXIT.failed);
  }
  process.stderr.write(
    server.mode === "socket"
      ? `honua-agent: Slack connected in Socket Mode; health and metrics on ${server.url}/healthz, ${server.url}/metrics\n`
      : `honua-agent: Slack events on ${server.url}/slack/events; health and metrics on ${server.url}/healthz, ${server.url}/metrics\n`,
  );
  // Work after an ack reports its own errors in the thread; should anything still escape, one stray promise
  // must not take down the bot and every run it is driving (their state is checkpointed; this is logged).
  process.on("unhandledRejection", (e: unknown) => {
    process.stderr.write(`honua-agent: unexpected error, still serving: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  });
  const running = server;
  return new Promise<never>(() => {
    const stop = (signal: string) => {
      process.stderr.write(`honua-agent: ${signal}: finishing work in flight\n`);
      running.close().then(
        () => process.exit(0),
        (e: unknown) => {
          process.stderr.write(`honua-agent: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
          process.exit(EXIT.failed);
        },
      );
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
