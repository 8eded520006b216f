import { z } from "zod";
import { AgentError } from "../errors.js";

export const SandboxFault = z.enum(["latency-regression", "error-spike", "no-data", "provision-failure"]);
export type SandboxFault = z.infer<typeof SandboxFault>;

/** `HONUA_SANDBOX_FAULTS=latency-regression,no-data`; an unknown name is an error, not ignored. */
export function parseFaults(value: string | undefined): Set<SandboxFault> {
  const out = new Set<SandboxFault>();
  for (const raw of (value ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const f = SandboxFault.safeParse(raw);
    if (!f.success) throw new AgentError("bad-input", `HONUA_SANDBOX_FAULTS: unknown fault "${raw}"; known: ${SandboxFault.options.join(", ")}`);
    out.add(f.data);
  }
  return out;
}
