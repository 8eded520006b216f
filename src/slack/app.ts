import { App, LogLevel, SocketModeReceiver } from "@slack/bolt";
import type { SlackDeps } from "./context.js";
import { EarlyAckReceiver } from "./receiver.js";
import { registerActions } from "./listeners/actions.js";
import { registerCommand } from "./listeners/command.js";
import { registerDedupe } from "./listeners/dedupe.js";
import { registerHome } from "./listeners/home.js";
import { registerMention } from "./listeners/mention.js";
import { registerMessages } from "./listeners/message.js";
import type { SlackSettings } from "./settings.js";

export interface SlackApp {
  app: App;
  /** Present in HTTP mode: the process's own server hands /slack/events to it. */
  receiver?: EarlyAckReceiver;
  /** Present in Socket Mode. */
  socket?: SocketModeReceiver;
}

/** Stops the app; in Socket Mode waits (up to 2 s) for the WebSocket to close cleanly. */
export async function stopSlackApp(slack: SlackApp): Promise<void> {
  if (!slack.socket) return;
  const closed = new Promise<void>((resolve) => {
    slack.socket!.client.once("disconnected", () => resolve());
    setTimeout(resolve, 2000).unref();
  });
  await slack.app.stop();
  await closed;
}

/** The Bolt app with every listener registered: Socket Mode or HTTP, same listeners. */
export function createSlackApp(settings: SlackSettings, identity: { botUserId: string; botId: string }, deps: SlackDeps, opts: { clientRetries?: number; logLevel?: LogLevel } = {}): SlackApp {
  const clientOptions = {
    ...(settings.apiUrl ? { slackApiUrl: settings.apiUrl } : {}),
    ...(opts.clientRetries !== undefined ? { retryConfig: { retries: opts.clientRetries } } : {}),
  };
  // No conversation store: nothing here reads Bolt's per-conversation state, and its middleware ran on every event.
  const common = { token: settings.botToken, botId: identity.botId, botUserId: identity.botUserId, clientOptions, logLevel: opts.logLevel ?? LogLevel.WARN, convoStore: false as const };
  let slack: SlackApp;
  if (settings.mode === "socket") {
    // Built here (not by App) to keep a handle for a clean disconnect; the Web API base applies to it too.
    // (a copy of clientOptions: the socket client writes its own retry policy into the object it gets)
    const socket = new SocketModeReceiver({ appToken: settings.appToken, logLevel: common.logLevel, installerOptions: { clientOptions: { ...clientOptions } } });
    slack = { app: new App({ ...common, receiver: socket, socketMode: true }), socket };
  } else {
    const receiver = new EarlyAckReceiver({ signingSecret: settings.signingSecret, track: (p) => void deps.tasks.track(p), onError: (e) => console.error(`honua-agent slack: ${e instanceof Error ? e.message : String(e)}`) });
    slack = { app: new App({ ...common, receiver }), receiver };
  }
  // Bolt keeps processing after the ack (middleware, listeners): tracked so shutdown waits for it.
  const process = slack.app.processEvent.bind(slack.app);
  slack.app.processEvent = (event) => deps.tasks.track(process(event));
  slack.app.error(async (e) => {
    console.error(`honua-agent slack: ${e.message}`);
  });
  registerDedupe(slack.app, deps);
  registerMention(slack.app, deps);
  registerMessages(slack.app, deps);
  registerCommand(slack.app, deps);
  registerActions(slack.app, deps);
  registerHome(slack.app, deps);
  return slack;
}
