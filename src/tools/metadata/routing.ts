import { z } from "zod";
import { AgentError } from "../../core/errors.js";
import type { OpLog } from "../../store/oplog.js";
import type { TrafficRouter } from "../types.js";
import { METADATA_READS } from "./types.js";

/**
 * The `metadata-reads` feature of a deployment with no router that splits Honua's STAC read paths: reads move whole
 * (0 or 100%) with the config the cutover writes at 100%. The share is recorded in the adapters' journal, so a rollback
 * and a restart see where it is; a split share is refused, naming what would allow one.
 */
export class WholeMetadataReads implements TrafficRouter {
  constructor(private readonly log: OpLog, private readonly deployment: string) {}
  features(): readonly string[] {
    return [METADATA_READS];
  }
  async share(feature: string): Promise<number> {
    this.check(feature);
    const h = this.log.history(this.deployment, ["metadata-reads-share"]);
    return h.length ? z.number().parse(h.at(-1)!.result) : 0;
  }
  async setShare(feature: string, percent: number, key: string): Promise<void> {
    this.check(feature);
    if (percent !== 0 && percent !== 100) {
      throw new AgentError("bad-input", `${this.deployment} has no router that splits ${METADATA_READS} (add one to traffic: with feature: ${METADATA_READS} in front of /stac): metadata reads move whole, 0 or 100%, not ${percent}%`);
    }
    this.log.put(this.deployment, "metadata-reads-share", key, percent);
  }
  private check(feature: string): void {
    if (feature !== METADATA_READS) throw new AgentError("unavailable", `no traffic router moves "${feature}" here`);
  }
}
