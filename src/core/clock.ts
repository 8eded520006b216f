/** Injected time: the sandbox and tests run monitoring windows in simulated time. */
export interface Clock {
  now(): Date;
  /** Waits (or, simulated, advances) this many milliseconds. */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};
