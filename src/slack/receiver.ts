import type { IncomingMessage, ServerResponse } from "node:http";
import { HTTPModuleFunctions as httpFunc, HTTPResponseAck, type App, type Logger, type Receiver, type ReceiverEvent } from "@slack/bolt";

/** Payload types whose ack carries no body: answered as soon as the request is verified, before Bolt runs. */
const ACK_AT_ONCE = new Set(["block_actions", "event_callback"]);

export interface EarlyAckOptions {
  signingSecret: string;
  /** Work after an ack: the server tracks it, so shutdown (and idle()) wait for requests still queued. */
  track?(p: Promise<void>): void;
  /** A failure that escaped Bolt's processing after the ack (listeners report their own errors in the thread). */
  onError?(e: unknown): void;
}

/**
 * Bolt's HTTP receiver for /slack/events, except that clicks and events are acknowledged as soon as the
 * request is verified, instead of when a listener calls `ack()`: their ack has no body, and waiting for Bolt's
 * middleware chain to reach the listener made every ack wait behind whatever else the process was doing.
 *
 * Verification is Bolt's own (`parseAndVerifyHTTPRequest`: signature, timestamps older than 5 minutes), done
 * before any answer, so a forged or stale request still gets 401 and reaches nothing. Slash commands and every
 * other payload keep Bolt's behaviour: the listener's `ack(...)` is the response, body included.
 */
export class EarlyAckReceiver implements Receiver {
  private app?: App;
  private logger!: Logger;
  /** Acknowledged requests waiting for Bolt, handed over one per turn of the event loop. */
  private readonly queue: ReceiverEvent[] = [];
  private pumping = false;

  constructor(private readonly o: EarlyAckOptions) {}

  init(app: App): void {
    this.app = app;
    this.logger = app.logger;
  }

  /** The process's own server listens (see http.ts). */
  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  /** Handles one POST /slack/events. */
  readonly requestListener = (req: IncomingMessage, res: ServerResponse): void => {
    this.handle(req, res).catch((e: unknown) => {
      this.o.onError?.(e);
      if (!res.headersSent) httpFunc.buildNoBodyResponse(res, 500);
    });
  };

  /**
   * Bolt's processing of one request (authorize, middleware, listener) runs as a chain of promise continuations
   * that holds the event loop; started for every request as it is read, a burst of two hundred would hold the
   * acks of the requests read next behind all of them. One per turn, requests already readable are acked first.
   */
  private enqueue(event: ReceiverEvent): void {
    this.queue.push(event);
    if (this.pumping) return;
    this.pumping = true;
    // Tracked until the queue is empty; each processEvent is tracked too (app.ts), so idle() covers both.
    const drained = new Promise<void>((resolve) => {
      const next = () => {
        const event = this.queue.shift();
        if (!event) {
          this.pumping = false;
          resolve();
          return;
        }
        this.app!.processEvent(event).catch((e: unknown) => this.o.onError?.(e));
        setImmediate(next);
      };
      setImmediate(next);
    });
    this.o.track?.(drained);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const app = this.app;
    if (!app) {
      httpFunc.buildNoBodyResponse(res, 503);
      return;
    }
    let buffered: Awaited<ReturnType<typeof httpFunc.parseAndVerifyHTTPRequest>>;
    try {
      buffered = await httpFunc.parseAndVerifyHTTPRequest({ enabled: true, signingSecret: this.o.signingSecret, bodyLimit: httpFunc.defaultBodyLimit, logger: this.logger }, req);
    } catch (e) {
      if (httpFunc.isRawBodyError(e) && (e.type === "entity.too.large" || e.statusCode === 413)) {
        httpFunc.buildNoBodyResponse(res, 413);
        return;
      }
      this.logger.warn(`Failed to parse and verify the request data: ${e instanceof Error ? e.message : String(e)}`);
      httpFunc.buildNoBodyResponse(res, 401);
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = httpFunc.parseHTTPRequestBody(buffered) as Record<string, unknown>;
    } catch (e) {
      this.logger.warn(`Malformed request body: ${e instanceof Error ? e.message : String(e)}`);
      httpFunc.buildNoBodyResponse(res, 400);
      return;
    }
    if (body.ssl_check === "1") {
      httpFunc.buildSSLCheckResponse(res);
      return;
    }
    if (body.type === "url_verification") {
      httpFunc.buildUrlVerificationResponse(res, body);
      return;
    }
    const retryNum = httpFunc.extractRetryNumFromHTTPRequest(req);
    const retryReason = httpFunc.extractRetryReasonFromHTTPRequest(req);
    if (typeof body.type === "string" && ACK_AT_ONCE.has(body.type)) {
      httpFunc.buildNoBodyResponse(res, 200);
      // The listeners still call ack(): answered already, it does nothing (a body given to it is not sent).
      this.enqueue({ body, ack: async () => undefined, retryNum, retryReason, customProperties: {} });
      return;
    }
    const ack = new HTTPResponseAck({ logger: this.logger, processBeforeResponse: false, httpRequest: buffered, httpRequestBody: body, httpResponse: res });
    const event: ReceiverEvent = { body, ack: ack.bind(), retryNum, retryReason, customProperties: {} };
    try {
      await app.processEvent(event);
    } catch (e) {
      // As Bolt's HTTPReceiver: 401 for an authorization failure, 500 for a failure before the ack.
      if (await httpFunc.defaultProcessEventErrorHandler({ error: e as Error, logger: this.logger, request: req, response: res, storedResponse: ack.storedResponse })) ack.ack();
    }
  }
}
