import { AgentError } from "../../../core/errors.js";
import { fileRestoreTarget } from "../../../tools/observability/base.js";
import { OBSERVABILITY, encodeFile, type ObservabilityCapability } from "../../../tools/observability/types.js";
import type { StepContext } from "../../step.js";
import type { FileChange } from "./design.js";

/**
 * Writes each file as designed, atomically, each journalled before it is written (what it held, byte for byte) so the
 * rollback puts it back exactly. A file someone changed since the design is refused, never overwritten; a replay finds
 * the files already written and writes nothing.
 */
export async function writeFiles(ctx: StepContext, obs: ObservabilityCapability, files: readonly FileChange[]): Promise<string[]> {
  for (const f of files) {
    const now = (await obs.file(f.target)).content;
    if (now !== f.before && now !== f.after) throw new AgentError("conflict", `${f.path} changed since the change was designed and approved; nothing of it was overwritten. Ask again to design against what it holds now`);
  }
  const written: string[] = [];
  for (const f of files) {
    const name = `file:${f.target}`;
    const { key } = await ctx.journal.intend(name, [{ kind: "restore", capability: OBSERVABILITY, target: fileRestoreTarget(f.target), before: encodeFile(f.before), after: encodeFile(f.after) }]);
    if (await obs.write(f.target, f.after, key)) written.push(f.path);
    await ctx.journal.done(name);
  }
  return written;
}

/**
 * After a failed reload: the files back to exactly what they held, at once (the service keeps running what it loaded
 * before), and one more reload so it reads them. The journal's rollback then finds them restored and reloads nothing.
 */
export async function restoreFiles(ctx: StepContext, obs: ObservabilityCapability, files: readonly FileChange[], reload: () => Promise<{ ok: boolean; detail: string }>): Promise<string> {
  for (const f of files) {
    const now = (await obs.file(f.target)).content;
    if (now === f.after) await obs.write(f.target, f.before, ctx.idempotencyKey(`restore:${f.target}`));
  }
  const r = await reload();
  return `${files.map((f) => f.path).join(", ")} restored byte for byte${r.ok ? "; reloaded" : `; the reload of the restored files also failed (${r.detail}): the service keeps what it loaded before`}`;
}
