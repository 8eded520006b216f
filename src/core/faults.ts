import { z } from "zod";
import { AgentError } from "./errors.js";

export const SandboxFault = z.enum(["latency-regression", "error-spike", "no-data", "provision-failure"]);
export type SandboxFault = z.infer<typeof SandboxFault>;

/** Each fault with the traffic share (percent, on the newest change's path) from which it shows; 1 by default. */
export type SandboxFaults = ReadonlyMap<SandboxFault, number>;

/**
 * `HONUA_SANDBOX_FAULTS=latency-regression,no-data`; `latency-regression@50` shows only from 50% of traffic on, so a
 * rollout can be made to fail at a later stage. An unknown name or a bad share is an error, not ignored.
 */
export function parseFaults(value: string | undefined): SandboxFaults {
  const out = new Map<SandboxFault, number>();
  for (const raw of (value ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const [name, at] = raw.split("@");
    const f = SandboxFault.safeParse(name);
    if (!f.success) throw new AgentError("bad-input", `HONUA_SANDBOX_FAULTS: unknown fault "${raw}"; known: ${SandboxFault.options.join(", ")} (optionally @SHARE, e.g. latency-regression@50)`);
    const share = at === undefined ? 1 : Number(at);
    if (!Number.isInteger(share) || share < 1 || share > 100) throw new AgentError("bad-input", `HONUA_SANDBOX_FAULTS: "${raw}": the share after @ is a whole percentage 1..100`);
    out.set(f.data, share);
  }
  return out;
}
