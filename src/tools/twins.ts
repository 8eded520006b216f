import type { Database } from "better-sqlite3";
import type { Clock } from "../core/clock.js";
import type { DeploymentAdapters } from "./types.js";
import type { SandboxFaults } from "../core/faults.js";

/** What a capability's sandbox twin is given: the sandbox's own database (its tables are the twin's to create), the deployment, its clock and faults. */
export interface TwinContext {
  world: { readonly db: Database };
  deployment: string;
  /** The deployment's sandbox settings the twins read (its seed). */
  config: { readonly seed?: number | undefined };
  clock: Clock;
  faults: SandboxFaults;
}

/**
 * The sandbox adapters of capabilities beyond caching, one per capability folder (`src/tools/<capability>/sandbox.ts`),
 * so every workflow runs on the built-in sandbox deployments with `npm start`. A twin creates its tables in one
 * transaction on first use and keys every mutation by its idempotency key, as the rest of the sandbox does; every table
 * a twin makes has a `deployment` column, so `sandbox reset` puts its part of a deployment back too.
 */
export const SANDBOX_TWINS: ((ctx: TwinContext) => Partial<DeploymentAdapters>)[] = [];
