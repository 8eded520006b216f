import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
import { performance } from "node:perf_hooks";

/**
 * Work started after an ack. Tracked so shutdown (and tests) can wait for it, and so a failure is
 * always handed to `onError` (which reports it in the thread) instead of vanishing as an unhandled rejection.
 */
export class Tasks {
  private readonly running = new Set<Promise<void>>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly waiting: Record<"drive" | "read", { run: (j: Job) => Promise<void> }[]> = { drive: [], read: [] };
  private busy = false;
  /** Whether the job holding the queue drives a run (a decision on its way to its next step start). */
  private holdingDrive = false;
  /** The job whose code is running (set for the whole of each job, so the engine's yield point can tell whose it is). */
  private readonly job = new AsyncLocalStorage<Job>();
  /** Jobs that handed the queue on at a step start and go on in the pool, and those waiting for a place in it. */
  private pooled = 0;
  private readonly poolWaiting: (() => void)[] = [];
  /** Pooled jobs waiting for the clicks queued before them to have started (drive jobs go first). */
  private drained: (() => void)[] = [];
  /** Most jobs that go on after their step started at once (default 3). */
  readonly poolSize: number;
  private starts: Promise<void> = Promise.resolve();
  /**
   * Work started after an ack (a click, a message) that has not yet queued its first engine call that drives a
   * run, nor finished. A burst of clicks is read and acked one request per loop turn and each reaches the queue
   * a few milliseconds after its ack: counted from the ack, the runs already going on wait for those clicks too,
   * not only for the ones already in the queue. Each counts for at most AHEAD_MS of its own running (a request
   * that first asks the model for a plan does not hold the runs going on for as long as that takes).
   */
  private ahead = 0;
  private readonly spawned = new AsyncLocalStorage<Ahead>();

  /** Requests read but not yet acknowledged; work after an ack waits for them (bounded, so it cannot starve). */
  acksPending = 0;

  /**
   * Connections accepted so far (the HTTP server counts them). Node accepts about one new connection per turn
   * of the event loop, so a burst of clicks is read one request per turn: while connections keep arriving, work
   * after an ack waits for them too, or each of the later clicks would wait behind one more engine job.
   */
  arrivals = 0;

  constructor(
    private readonly onError: (e: unknown, label: string) => void,
    opts: { poolSize?: number } = {},
  ) {
    const size = opts.poolSize ?? 3;
    if (!Number.isInteger(size) || size < 1 || size > 64) throw new RangeError(`the drive pool size is a whole number 1..64: ${size}`);
    this.poolSize = size;
  }

  /** One turn of the event loop, or more while requests are arriving or waiting for their ack (at most ACK_YIELD_MS). */
  private async turn(): Promise<void> {
    const started = performance.now();
    let seen = this.arrivals;
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      const quiet = this.acksPending === 0 && this.arrivals === seen;
      if (quiet || performance.now() - started >= ACK_YIELD_MS) return;
      seen = this.arrivals;
    }
  }

  /**
   * Starts `fn` on a later turn of the event loop, one start per turn: requests already read are all acked
   * first, and a burst of clicks does not start two hundred database writes in one turn while the next
   * requests wait unread.
   */
  spawn(label: string, fn: () => Promise<void>): void {
    const turn = this.starts.then(() => this.turn());
    this.starts = turn;
    const mark: Ahead = { counted: true, timer: undefined };
    this.ahead++;
    const p = (async () => {
      await turn;
      mark.timer = setTimeout(() => this.taken(mark), AHEAD_MS);
      try {
        await this.spawned.run(mark, fn);
      } catch (e) {
        this.onError(e, label);
      } finally {
        this.taken(mark);
      }
    })();
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** Waits for `p` in idle() too (e.g. Bolt still processing a request it already acknowledged). */
  track<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return p;
  }

  /** Runs `fn` after everything queued before under the same key: Slack messages of one run stay in order. */
  serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const out = prev.then(fn);
    const tail = out.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(key, tail);
    this.running.add(tail);
    void tail.finally(() => {
      this.running.delete(tail);
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return out;
  }

  /**
   * Runs CPU-bound engine work one job at a time, each after a turn of the event loop. A graph run in the
   * sandbox is one long chain of promise continuations (SQLite is synchronous) that never lets the loop read
   * a socket; run side by side, such chains would hold every incoming request, and so every ack, behind all
   * of them. One at a time, with a yield in between, an ack waits for at most one. A job that takes longer than
   * `leaseMs` (real I/O, a real-time monitoring window) lets the next one start rather than hold everyone.
   */
  cpu<T>(fn: () => Promise<T>, priority: "drive" | "read" = "drive", leaseMs = 50): Promise<T> {
    return this.track(
      new Promise<T>((resolve, reject) => {
        // Bound to the caller's async context: the job runs later, from whichever job released the slot.
        const job = AsyncResource.bind((j: Job) => this.job.run(j, () => fn().then(resolve, reject)));
        this.waiting[priority].push({ run: job });
        if (priority === "drive") this.taken(this.spawned.getStore());
        this.pump(leaseMs);
      }),
    );
  }

  /**
   * The engine's yield point, awaited each time a step of a run has started (announced) and before it acts. A job
   * that holds the queue gives it to the next job here (the next click's decision starts now, not when this run
   * reaches its next gate) and goes on in the pool: at most `poolSize` such jobs at once, each yielding one turn of
   * the event loop at every later step start, so they interleave with each other and with the queue. Nothing about
   * the run changes: its steps go on in their order, under its claim; only when they run is chosen here.
   * Outside a job (the command line, a test calling the engine directly) it returns at once.
   */
  async stepStarted(): Promise<void> {
    const j = this.job.getStore();
    if (!j || j.done) return;
    j.release?.();
    this.leavePool(j);
    await this.enterPool(j);
  }

  /**
   * Waits (one turn at least, after the acks of requests already read, so the next click's job starts first) for a place in the pool, in the order asked. A job
   * still holding its place after `leaseMs` is waiting on real I/O or time (a paced watch window), not the CPU: it
   * gives the place up, as a job of the queue does, and asks again at its next step start.
   */
  private async enterPool(j: Job): Promise<void> {
    await this.turn();
    // A place given up is handed to the first job waiting, still counted: no one can slip in between. The job handed
    // it waits a turn too: woken from the job that left, it would otherwise run on in the same turn, and a pool of
    // handed-on places would run back to back with no request read in between.
    if (this.pooled >= this.poolSize || this.poolWaiting.length > 0) {
      await new Promise<void>((r) => this.poolWaiting.push(r));
      await this.turn();
    } else this.pooled++;
    j.pooled = true;
    // Clicks first: while decisions wait in the queue or are on their way to it, the runs already going on wait for them to be taken.
    while (this.clicksAhead()) {
      await new Promise<void>((r) => this.drained.push(r));
      await this.turn();
    }
    j.slot = setTimeout(() => this.leavePool(j), j.leaseMs);
  }

  private leavePool(j: Job): void {
    if (!j.pooled) return;
    clearTimeout(j.slot);
    j.pooled = false;
    const next = this.poolWaiting.shift();
    if (next) next();
    else this.pooled--;
  }

  /** Clicks acked whose drive call holds the queue (until its step started), waits in it, or is still on its way there. */
  private clicksAhead(): boolean {
    return this.holdingDrive || this.waiting.drive.length > 0 || this.ahead > 0;
  }

  /** Resolves at once when no click is ahead, else once those ahead have been taken (Slack edits that can wait use it). */
  async quiet(): Promise<void> {
    while (this.clicksAhead()) await new Promise<void>((r) => this.drained.push(r));
  }

  /** Work after an ack no longer counts as ahead (it queued its drive call, finished, or ran for AHEAD_MS). */
  private taken(mark: Ahead | undefined): void {
    if (!mark?.counted) return;
    mark.counted = false;
    clearTimeout(mark.timer);
    this.ahead--;
    this.wakeDrained();
  }

  private wakeDrained(): void {
    if (!this.clicksAhead() && this.drained.length > 0) for (const r of this.drained.splice(0)) r();
  }

  /** Starts the next job (runs waiting for a decision first, then reads for messages) after one loop turn. */
  private pump(leaseMs: number): void {
    if (this.busy) return;
    const drive = this.waiting.drive.shift();
    const job = drive ?? this.waiting.read.shift();
    this.holdingDrive = drive !== undefined;
    this.wakeDrained();
    if (!job) return;
    this.busy = true;
    void this.turn().then(() => {
      const j = new Job(leaseMs);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        j.release = undefined;
        clearTimeout(lease);
        this.busy = false;
        this.holdingDrive = false;
        this.pump(leaseMs);
      };
      const lease = setTimeout(release, leaseMs);
      j.release = release;
      void job.run(j).finally(() => {
        j.done = true;
        release();
        this.leavePool(j);
      });
    });
  }

  /** Resolves once no work is left, including work that the finished work started. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

/** One job of the queue: until its release it holds the queue; after it, it may hold a place in the pool. */
class Job {
  release: (() => void) | undefined;
  pooled = false;
  done = false;
  slot: NodeJS.Timeout | undefined;
  constructor(readonly leaseMs: number) {}
}

/** Work after an ack not yet at the queue: counted as ahead of the runs going on. */
interface Ahead {
  counted: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** How long (ms) work after an ack counts as a click ahead of the runs going on, at most, once it runs. */
const AHEAD_MS = 100;

/** How long (ms) work after an ack may keep yielding to requests that are arriving or waiting for their ack. */
const ACK_YIELD_MS = 100;

/** Calls that drive a run (someone waits for the next step) and calls that only read state for a message. */
const DRIVES = new Set(["start", "decide", "resume", "pause", "unpause", "cancel", "requestRollback", "requestAgain"]);
const READS = new Set(["summary", "transcript", "pendingGates", "runs"]);

/** The engine as the Slack front uses it: the same object, its graph-driving and state-reading calls taken one at a time (Tasks.cpu). */
export function oneAtATime<E extends object>(engine: E, tasks: Tasks): E {
  return new Proxy(engine, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (typeof prop !== "string" || !(DRIVES.has(prop) || READS.has(prop))) return value.bind(target);
      const priority = DRIVES.has(prop) ? "drive" : "read";
      return (...args: unknown[]) => tasks.cpu(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), priority);
    },
  });
}
