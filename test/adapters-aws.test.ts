import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { replicationGroupId } from "../src/tools/cache/elasticache.js";
import { CloudFrontInfra } from "../src/tools/cache/cloudfront.js";

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });

/** The class method (two-space indent) or top-level function a position in a source file lies in, whichever starts last. */
function methodAt(text: string, index: number): string | undefined {
  const before = text.slice(0, index);
  const all = [
    ...before.matchAll(/^ {2}(?:(?:private|public|protected|static|async|readonly) )*(?!for\b|if\b|while\b|switch\b|catch\b)([A-Za-z_]\w*)\s*\(/gm),
    ...before.matchAll(/^(?:export )?(?:async )?function\*? ([A-Za-z_]\w*)\s*\(/gm),
  ].sort((a, b) => a.index - b.index);
  return all.at(-1)?.[1];
}

describe("AWS: nothing is deleted except by deprovision, which only the delete gate's cleanup calls", () => {
  it("every Delete* command in src is sent from deprovision (or a helper only deprovision calls)", () => {
    const sites: string[] = [];
    for (const f of files("src")) {
      const text = readFileSync(f, "utf8");
      // the SDK is imported on first use, so a command may be built as `new (await sdk()).XCommand(`
      const built = [...text.matchAll(/new (?:\(await sdk\(\)\)\.)?(Delete\w+Command)\(/g)];
      for (const m of built) sites.push(`${f}:${methodAt(text, m.index)}:${m[1]}`);
      // and a Delete command named anywhere else (an alias, a map of commands) would escape this check
      // (imports and the SDK's names taken at a function's start, `const { ... } = await sdk();`, without renaming, aside)
      const taken = text.match(/^\s*const \{[^}]*\} = await sdk\(\);$/gm) ?? [];
      expect(taken.filter((t) => t.includes(":")), f).toEqual([]);
      const code = text.replace(/^import [\s\S]*? from "[^"]+";$/gm, "").replace(/^\s*const \{[^}]*\} = await sdk\(\);$/gm, "");
      expect(code.match(/\bDelete\w+Command\b/g)?.length ?? 0, f).toBe(built.length);
    }
    expect(sites.sort()).toEqual([
      "src/tools/cache/cloudfront.ts:deleteOwnPolicy:DeleteCachePolicyCommand",
      "src/tools/cache/cloudfront.ts:deprovision:DeleteDistributionCommand",
      "src/tools/cache/elasticache.ts:deprovision:DeleteCacheParameterGroupCommand",
      "src/tools/cache/elasticache.ts:deprovision:DeleteReplicationGroupCommand",
      "src/tools/storage/s3.ts:deleteBucket:DeleteBucketCommand",
      "src/tools/storage/s3.ts:deleteBucket:DeleteObjectCommand",
      "src/tools/storage/s3.ts:remove:DeleteObjectCommand",
      "src/tools/traffic/cloudfront.ts:deletePolicy:DeleteContinuousDeploymentPolicyCommand",
      "src/tools/traffic/cloudfront.ts:deleteStaging:DeleteDistributionCommand",
    ]);
    const cf = readFileSync("src/tools/cache/cloudfront.ts", "utf8");
    expect([...cf.matchAll(/this\.deleteOwnPolicy\(/g)].map((m) => methodAt(cf, m.index))).toEqual(["deprovision"]);
    // The traffic router's deletions: only from its deprovision (deleteStaging removes the policy naming it first).
    const cft = readFileSync("src/tools/traffic/cloudfront.ts", "utf8");
    expect([...cft.matchAll(/this\.deleteStaging\(/g)].map((m) => methodAt(cft, m.index))).toEqual(["deprovision"]);
    expect([...cft.matchAll(/this\.deletePolicy\(/g)].map((m) => methodAt(cft, m.index)).sort()).toEqual(["deleteStaging", "deprovision"]);
    // Storage: a bucket is deleted only by deprovision (of a bucket honua-agent created); single objects are removed
    // only where the run wrote them (its probe object, a copy that failed verification, a deprovisioned copy) or, for
    // an approved move, the sources after the delete gate (MigrateExistingData's gate is a delete gate on a move).
    const at = (re: RegExp) =>
      files("src").flatMap((f) => {
        const text = readFileSync(f, "utf8");
        return [...text.matchAll(re)].map((m) => `${f}:${methodAt(text, m.index)}`);
      });
    expect(at(/(?<!function )\bdeleteBucket\(/g)).toEqual(["src/tools/storage/real.ts:deprovision"]);
    // Object stores only: the storage capability and the workflow that moves objects (a metadata store's remove is
    // a record replicated from its source, not an object).
    const objectStores = (c: string) => /^src\/(tools\/storage|graph\/workflows\/add-storage-backend)\//.test(c);
    expect(at(/\.remove\(/g).filter(objectStores).sort()).toEqual([
      "src/graph/workflows/add-storage-backend/steps/monitor-storage-performance.ts:run",
      "src/tools/storage/copy.ts:copyOne",
      "src/tools/storage/copy.ts:copyOne",
      "src/tools/storage/probe.ts:connectivityProbe",
      "src/tools/storage/real.ts:deprovision",
    ]);
    // And deprovision is only called from the cleanup behind the delete gate.
    const callers = files("src").flatMap((f) => {
      const text = readFileSync(f, "utf8");
      // A call inside a deprovision of its own (a method or an object literal's member, a few lines up) is a delegation.
      const inOwnDeprovision = (i: number) => /(?:async\s+deprovision\s*\(|deprovision:\s*async)/.test(text.slice(0, i).split("\n").slice(-4).join("\n"));
      return [...text.matchAll(/\.deprovision\(/g)].map((m) => `${f}:${inOwnDeprovision(m.index) ? "deprovision" : methodAt(text, m.index)}`);
    });
    expect(callers.length).toBeGreaterThan(0);
    // A workflow's cleanup (the step behind the delete gate), or a composite router's own deprovision handing the
    // call to the router that made the resource.
    // A capability's own deprovision handing the call to the store it built is a delegation, not a new caller.
    for (const c of callers) expect(c).toMatch(/:cleanup\w*$|^src\/tools\/\w+\/\w+\.ts:deprovision$|^src\/tools\/metadata\/\w+\.ts:retire$/);
    // A metadata store's retire (the old store removed, after its verified backup) runs only in DisableOldStore,
    // whose gate is a delete gate.
    const retires = files("src").flatMap((f) => [...readFileSync(f, "utf8").matchAll(/\.retire\(/g)].map(() => f));
    expect(retires).toEqual(["src/graph/workflows/modify-metadata-storage/steps/disable-old-store.ts"]);
    expect(readFileSync("src/graph/workflows/modify-metadata-storage/steps/disable-old-store.ts", "utf8")).toMatch(/kind: "delete"/);
    expect(readFileSync("src/tools/traffic/composite.ts", "utf8")).toMatch(/deprovision: async \(id, key\) => \{[^}]*r\.deprovision\(id, key\)/);
    expect(readFileSync("src/graph/builder.ts", "utf8")).toMatch(/kind: "delete"/);
  });

  it("idempotency tokens depend on the key alone: the same key names the same resource in every process", () => {
    const key = "run-7f3a:ProvisionCacheInfrastructure:0";
    expect(replicationGroupId("honua", key)).toBe(replicationGroupId("honua", `${key}`));
    expect(replicationGroupId("honua", key)).toMatch(/^honua-[0-9a-f]{16}$/);
    expect(replicationGroupId("honua", key)).not.toBe(replicationGroupId("honua", `${key}x`));
    const a = new CloudFrontInfra({ originDomainName: "honua.example.org" });
    const b = new CloudFrontInfra({ originDomainName: "honua.example.org" });
    expect(a.distributionConfig(key, "cp-1")).toEqual(b.distributionConfig(key, "cp-1"));
    expect(a.distributionConfig(key, "cp-1").CallerReference).toBe(key);
  });
});
