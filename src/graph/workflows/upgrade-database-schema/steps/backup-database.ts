import { z } from "zod";
import { BackupResult } from "../../../../tools/database/types.js";
import { defineStep } from "../../../step.js";
import { databaseOf } from "../design.js";

export const BackupDatabase = defineStep({
  name: "BackupDatabase",
  description: "pg_dump -Fc (schema-only or full, as configured; Honua's Database__MigrationSafety__BackupCommand when set), verified with pg_restore --list",
  input: z.null(),
  output: BackupResult,
  prepare: () => null,
  async run(ctx) {
    const b = await databaseOf(ctx.adapters, ctx.deployment).backup(ctx.idempotencyKey());
    ctx.progress(`backup ${b.location}: ${b.bytes} bytes, ${b.verifiedBy}`);
    return { output: b, reason: `${b.mode} backup at ${b.location} (${b.verifiedBy})` };
  },
});
