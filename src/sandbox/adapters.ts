import type { AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { parseFaults, type SandboxFaults } from "../core/faults.js";
import { openChecked } from "../store/files.js";
import type { DeploymentAdapters } from "../tools/types.js";
import { SandboxWorld } from "./sandbox.js";
import "../tools/storage/sandbox.js"; // the storage capability's sandbox twin
import "../tools/database/sandbox.js"; // the database capability's sandbox twin
import "../tools/observability/sandbox.js"; // the observability capability's sandbox twin
import "../tools/metadata/sandbox.js"; // the metadata capability's sandbox twin

/** How the sandbox behaves, from the environment: faults, where its clock starts, how fast it runs. */
export interface SandboxSettings {
  faults: SandboxFaults;
  /** Where every simulated clock starts (ms since the epoch). */
  epoch: number;
  /** Real milliseconds per simulated minute (0: the simulated clock moves at once). */
  pace: number;
}

export function sandboxSettings(env: NodeJS.ProcessEnv): SandboxSettings {
  const faults = parseFaults(env.HONUA_SANDBOX_FAULTS);
  const epoch = env.HONUA_SANDBOX_EPOCH ? Date.parse(env.HONUA_SANDBOX_EPOCH) : Math.floor(Date.now() / 3_600_000) * 3_600_000;
  if (Number.isNaN(epoch)) throw new AgentError("bad-input", `HONUA_SANDBOX_EPOCH is not a date: ${env.HONUA_SANDBOX_EPOCH}`);
  const pace = env.HONUA_SANDBOX_PACE_MS === undefined ? 0 : Number(env.HONUA_SANDBOX_PACE_MS);
  if (!Number.isFinite(pace) || pace < 0 || pace > 60_000) throw new AgentError("bad-input", `HONUA_SANDBOX_PACE_MS is real milliseconds per simulated minute, 0..60000: ${env.HONUA_SANDBOX_PACE_MS}`);
  return { faults, epoch, pace };
}

/** The sandbox half of the adapter factory: simulated deployments in `$home/sandbox.sqlite`, without the real adapters' modules. */
export function sandboxAdapterFactory(config: AgentConfig, home: string, settings: SandboxSettings) {
  let world: SandboxWorld | undefined;
  const cache = new Map<string, DeploymentAdapters>();
  const open = (): SandboxWorld => (world ??= openChecked(home, "sandbox.sqlite", (p) => new SandboxWorld(p)));
  return {
    adaptersFor(name: string): DeploymentAdapters {
      const hit = cache.get(name);
      if (hit) return hit;
      const d = config.deployments[name];
      if (!d) throw new AgentError("bad-input", `unknown deployment ${name}`);
      if (d.provider !== "sandbox") throw new AgentError("bad-input", `${name} is not a sandbox deployment (provider ${d.provider})`);
      const adapters = open().adapters(name, d, settings.faults, settings.epoch, settings.pace);
      cache.set(name, adapters);
      return adapters;
    },
    world: open,
    close() {
      world?.close();
    },
  };
}
