import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import type { TrafficRouter } from "../types.js";
import { STORAGE_ROUTING } from "./types.js";

/**
 * The `storage-routing` feature of a deployment with no router that splits it: Honua's storage traffic moves whole
 * (0 or 100%) with the config the routing step writes at 100%. The share is recorded in the adapters' journal, so
 * a rollback (back to 0) and a restart see where it is; a split share is refused, naming what would allow one.
 */
export class WholeStorageRouting implements TrafficRouter {
  constructor(private readonly log: OpLog, private readonly deployment: string) {}
  features(): readonly string[] {
    return [STORAGE_ROUTING];
  }
  async share(feature: string): Promise<number> {
    this.check(feature);
    const h = this.log.history(this.deployment, ["storage-routing-share"]);
    return h.length ? z.number().parse(h.at(-1)!.result) : 0;
  }
  async setShare(feature: string, percent: number, key: string): Promise<void> {
    this.check(feature);
    if (percent !== 0 && percent !== 100) {
      throw new AgentError("bad-input", `${this.deployment} has no router that splits ${STORAGE_ROUTING} (add one to traffic: with feature: ${STORAGE_ROUTING}): storage traffic moves whole, 0 or 100%, not ${percent}%`);
    }
    this.log.put(this.deployment, "storage-routing-share", key, percent);
  }
  private check(feature: string): void {
    if (feature !== STORAGE_ROUTING) throw new AgentError("unavailable", `no traffic router moves "${feature}" here`);
  }
}
