import { z } from "zod";

/** Coded errors, thrown deep and translated once at the edge (exit code, Slack message). */
/** `in-place`: what was asked for is already there; nothing was started (not a failure: exit 0). */
export type ErrorCode = "bad-input" | "conflict" | "not-found" | "forbidden" | "stale" | "failed" | "unavailable" | "in-place";

export class AgentError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AgentError";
  }
}

/** Exit codes from DESIGN.md: 0 done, 2 bad input, 3 waiting, 4 failed/rolled back, 5 clarify. */
export const EXIT = { done: 0, badInput: 2, waiting: 3, failed: 4, clarify: 5 } as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof AgentError) {
    if (err.code === "in-place") return EXIT.done;
    return err.code === "failed" || err.code === "unavailable" ? EXIT.failed : EXIT.badInput;
  }
  return EXIT.failed;
}

/** A zod error as one line: `path: message; ...` (`root` names an error on the value itself). */
export function describeIssues(error: z.ZodError, root = ""): string {
  return error.issues.map((i) => `${i.path.join(".") || root}: ${i.message}`).join("; ");
}

/** Validates adapter options (or any input at a boundary): a bad value is bad input, named by `what`. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new AgentError("bad-input", `${what}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
