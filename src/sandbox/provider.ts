import type { AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { openChecked } from "../store/files.js";
import { OpLog } from "../store/oplog.js";
import type { DeploymentAdapters } from "../tools/types.js";
import { parseFaults } from "../core/faults.js";
import { SandboxWorld } from "./sandbox.js";
import "../tools/storage/sandbox.js"; // the storage capability's sandbox twin
import "../tools/database/sandbox.js"; // the database capability's sandbox twin
import "../tools/observability/sandbox.js"; // the observability capability's sandbox twin
import "../tools/metadata/sandbox.js"; // the metadata capability's sandbox twin

/**
 * Adapters per deployment, by provider. The sandbox is built in; `local` and `aws` get the real adapters
 * chosen by the deployment's sections (src/providers/real.ts).
 */
export async function adapterFactory(config: AgentConfig, home: string, env: NodeJS.ProcessEnv) {
  // The real adapters (Redis, PostgreSQL, S3, Azure Blob, nginx, ...) are imported only when a deployment uses them:
  // on the sandbox alone a command starts without loading their clients.
  const real = Object.values(config.deployments).some((d) => d.provider !== "sandbox") ? (await import("../providers/real.js")).realAdapters : null;
  let world: SandboxWorld | undefined;
  let opLog: OpLog | undefined;
  const cache = new Map<string, DeploymentAdapters>();
  const faults = parseFaults(env.HONUA_SANDBOX_FAULTS);
  const epoch = env.HONUA_SANDBOX_EPOCH ? Date.parse(env.HONUA_SANDBOX_EPOCH) : Math.floor(Date.now() / 3_600_000) * 3_600_000;
  if (Number.isNaN(epoch)) throw new AgentError("bad-input", `HONUA_SANDBOX_EPOCH is not a date: ${env.HONUA_SANDBOX_EPOCH}`);
  // Real milliseconds per simulated minute (0: the simulated clock moves at once).
  const pace = env.HONUA_SANDBOX_PACE_MS === undefined ? 0 : Number(env.HONUA_SANDBOX_PACE_MS);
  if (!Number.isFinite(pace) || pace < 0 || pace > 60_000) throw new AgentError("bad-input", `HONUA_SANDBOX_PACE_MS is real milliseconds per simulated minute, 0..60000: ${env.HONUA_SANDBOX_PACE_MS}`);
  return {
    adaptersFor(name: string): DeploymentAdapters {
      const hit = cache.get(name);
      if (hit) return hit;
      const d = config.deployments[name];
      if (!d) throw new AgentError("bad-input", `unknown deployment ${name}`);
      if (d.provider !== "sandbox") {
        if (!real) throw new Error(`deployment ${name} (${d.provider}) is not in the config these adapters were opened for`);
        // local/aws: each capability from the deployment's own section (Redis, probes/Prometheus, config file, nginx, ...).
        opLog ??= openChecked(home, "real-adapters.sqlite", (p) => new OpLog(p));
        const adapters = real(name, d, { log: opLog, env, cwd: process.cwd() });
        cache.set(name, adapters);
        return adapters;
      }
      world ??= openChecked(home, "sandbox.sqlite", (p) => new SandboxWorld(p));
      const adapters = world.adapters(name, d, faults, epoch, pace);
      cache.set(name, adapters);
      return adapters;
    },
    world(): SandboxWorld {
      world ??= openChecked(home, "sandbox.sqlite", (p) => new SandboxWorld(p));
      return world;
    },
    close() {
      world?.close();
      opLog?.close();
    },
  };
}
