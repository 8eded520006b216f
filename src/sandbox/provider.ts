import type { AgentConfig } from "../config.js";
import { AgentError } from "../core/errors.js";
import { openChecked } from "../store/files.js";
import { OpLog } from "../store/oplog.js";
import { realAdapters } from "../providers/real.js";
import type { DeploymentAdapters } from "../tools/types.js";
import { sandboxAdapterFactory, sandboxSettings } from "./adapters.js";

/**
 * Adapters per deployment, by provider. The sandbox is built in; `local` and `aws` get the real adapters
 * chosen by the deployment's sections (src/providers/real.ts).
 */
export function adapterFactory(config: AgentConfig, home: string, env: NodeJS.ProcessEnv) {
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
        // local/aws: each capability from the deployment's own section (Redis, probes/Prometheus, config file, nginx, ...).
        opLog ??= openChecked(home, "real-adapters.sqlite", (p) => new OpLog(p));
        const adapters = realAdapters(name, d, { log: opLog, env, cwd: process.cwd() });
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
