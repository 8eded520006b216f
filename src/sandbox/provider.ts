import type { AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { openChecked } from "../store/files.js";
import { OpLog } from "../store/oplog.js";
import type { DeploymentAdapters } from "../tools/types.js";
import { sandboxAdapterFactory, sandboxSettings } from "./adapters.js";

/**
 * Adapters per deployment, by provider. The sandbox is built in; `local` and `aws` get the real adapters
 * chosen by the deployment's sections (src/providers/real.ts).
 */
export async function adapterFactory(config: AgentConfig, home: string, env: NodeJS.ProcessEnv) {
  // The real adapters (Redis, PostgreSQL, S3, Azure Blob, nginx, ...) are imported only when a deployment uses them:
  // on the sandbox alone a command starts without loading their clients.
  const real = Object.values(config.deployments).some((d) => d.provider !== "sandbox") ? (await import("../providers/real.js")).realAdapters : null;
  let opLog: OpLog | undefined;
  const cache = new Map<string, DeploymentAdapters>();
  const sandbox = sandboxAdapterFactory(config, home, sandboxSettings(env));
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
      const adapters = sandbox.adaptersFor(name);
      cache.set(name, adapters);
      return adapters;
    },
    world: sandbox.world,
    close() {
      sandbox.close();
      opLog?.close();
    },
  };
}
