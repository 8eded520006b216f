import {
  CloudFrontClient,
  CopyDistributionCommand,
  CreateContinuousDeploymentPolicyCommand,
  DeleteContinuousDeploymentPolicyCommand,
  DeleteDistributionCommand,
  GetContinuousDeploymentPolicyCommand,
  GetDistributionCommand,
  ListContinuousDeploymentPoliciesCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateContinuousDeploymentPolicyCommand,
  UpdateDistributionCommand,
  UpdateDistributionWithStagingConfigCommand,
  type ContinuousDeploymentPolicyConfig,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { Deployment } from "../src/config.js";
import { MemoryJournal, type Effect } from "../src/core/journal.js";
import type { ConfigChange } from "../src/core/sections.js";
import { RunView, type StepContext } from "../src/graph/step.js";
import { cleanupCaching, rollbackCaching } from "../src/graph/workflows/add-caching-layer/rollback.js";
import { CloudFrontTraffic } from "../src/tools/traffic/cloudfront.js";
import type { CacheInfra, DeploymentAdapters } from "../src/tools/types.js";

/** The fake's fixed modification time: what the adapters read from it never comes from the wall clock. */
const MODIFIED = "2026-01-05T10:00:00.000Z";

const cf = mockClient(CloudFrontClient);
const PRIMARY = "EPRIMARY123";
const BASELINE_POLICY = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const CACHE_POLICY = "cp-tiles-3600";
const KEY = "run-a1:EnableCachingGradually:10";

/**
 * A small in-memory CloudFront behind the SDK mock: ETags change on every write and a stale IfMatch is refused,
 * and a SingleWeight above 0.15 is refused, as the service does. Deletes are refused as the service refuses
 * them: a policy still attached to a distribution, a distribution still enabled or not yet Deployed, a staging
 * distribution a policy still names.
 */
function fakeCloudFront() {
  let n = 0;
  const etag = () => `ETAG${++n}`;
  const arn = (id: string) => `arn:aws:cloudfront::123456789012:distribution/${id}`;
  const dists = new Map<string, { config: DistributionConfig; etag: string; domain: string; inProgressReads?: number }>();
  const policies = new Map<string, { config: ContinuousDeploymentPolicyConfig; etag: string }>();
  const tags = new Map<string, Map<string, string>>();
  const fail = (name: string, message: string) => Object.assign(new Error(message), { name });
  const primaryConfig: DistributionConfig = {
    CallerReference: "site-2024", Comment: "honua prod", Enabled: true,
    Origins: { Quantity: 1, Items: [{ Id: "honua", DomainName: "honua.example.org" }] },
    DefaultCacheBehavior: { TargetOriginId: "honua", ViewerProtocolPolicy: "redirect-to-https", CachePolicyId: BASELINE_POLICY },
  };
  dists.set(PRIMARY, { config: primaryConfig, etag: etag(), domain: "dprimary.cloudfront.net" });
  const view = (id: string) => {
    const d = dists.get(id);
    if (!d) throw fail("NoSuchDistribution", id);
    // Enabling or disabling takes a while: the next read still says InProgress.
    const status = d.inProgressReads ? "InProgress" : "Deployed";
    if (d.inProgressReads) d.inProgressReads--;
    return { ETag: d.etag, Distribution: { Id: id, ARN: arn(id), Status: status, DomainName: d.domain, LastModifiedTime: new Date(MODIFIED), InProgressInvalidationBatches: 0, DistributionConfig: structuredClone(d.config) } };
  };
  const checkWeight = (c: ContinuousDeploymentPolicyConfig | undefined) => {
    if ((c?.TrafficConfig?.SingleWeightConfig?.Weight ?? 0) > 0.15) throw fail("InvalidArgument", "Weight must be between 0 and 0.15");
  };
  cf.reset();
  cf.on(GetDistributionCommand).callsFake(({ Id }) => view(Id));
  cf.on(ListTagsForResourceCommand).callsFake(({ Resource }) => ({ Tags: { Items: [...(tags.get(Resource) ?? new Map()).entries()].map(([Key, Value]) => ({ Key, Value })) } }));
  cf.on(TagResourceCommand).callsFake(({ Resource, Tags }) => {
    const t = tags.get(Resource) ?? new Map<string, string>();
    for (const { Key, Value } of Tags.Items ?? []) t.set(Key, Value);
    tags.set(Resource, t);
    return {};
  });
  cf.on(CopyDistributionCommand).callsFake(({ PrimaryDistributionId, IfMatch, CallerReference }) => {
    const p = dists.get(PrimaryDistributionId)!;
    if (IfMatch !== p.etag) throw fail("PreconditionFailed", "stale ETag");
    const id = `ESTAGING${dists.size}`;
    dists.set(id, { config: { ...structuredClone(p.config), CallerReference, Staging: true, ContinuousDeploymentPolicyId: undefined }, etag: etag(), domain: `dstaging${dists.size}.cloudfront.net` });
    return view(id);
  });
  cf.on(UpdateDistributionCommand).callsFake(({ Id, IfMatch, DistributionConfig }) => {
    const d = dists.get(Id);
    if (!d) throw fail("NoSuchDistribution", Id);
    if (IfMatch !== d.etag) throw fail("PreconditionFailed", `stale ETag ${IfMatch} (now ${d.etag})`);
    if (DistributionConfig.Enabled !== d.config.Enabled) d.inProgressReads = 1;
    d.config = structuredClone(DistributionConfig);
    d.etag = etag();
    return { ETag: d.etag, Distribution: { Id, ARN: arn(Id), Status: "InProgress", DomainName: d.domain, LastModifiedTime: new Date(MODIFIED), InProgressInvalidationBatches: 0, DistributionConfig: structuredClone(d.config) } };
  });
  cf.on(DeleteDistributionCommand).callsFake(({ Id, IfMatch }) => {
    const d = dists.get(Id);
    if (!d) throw fail("NoSuchDistribution", Id);
    if (IfMatch !== d.etag) throw fail("PreconditionFailed", `stale ETag ${IfMatch} (now ${d.etag})`);
    if (d.config.Enabled || d.inProgressReads) throw fail("DistributionNotDisabled", `${Id} is not disabled and Deployed`);
    if ([...policies.values()].some((p) => p.config.StagingDistributionDnsNames?.Items?.includes(d.domain))) throw fail("StagingDistributionInUse", `${Id} is named by a continuous-deployment policy`);
    dists.delete(Id);
    return {};
  });
  cf.on(DeleteContinuousDeploymentPolicyCommand).callsFake(({ Id, IfMatch }) => {
    const p = policies.get(Id);
    if (!p) throw fail("NoSuchContinuousDeploymentPolicy", Id);
    if (IfMatch !== p.etag) throw fail("PreconditionFailed", `stale ETag ${IfMatch} (now ${p.etag})`);
    if ([...dists.values()].some((d) => d.config.ContinuousDeploymentPolicyId === Id)) throw fail("ContinuousDeploymentPolicyInUse", `${Id} is attached to a distribution`);
    policies.delete(Id);
    return {};
  });
  cf.on(UntagResourceCommand).callsFake(({ Resource, TagKeys }) => {
    for (const k of TagKeys.Items ?? []) tags.get(Resource)?.delete(k);
    return {};
  });
  cf.on(UpdateDistributionWithStagingConfigCommand).callsFake(({ Id, StagingDistributionId, IfMatch }) => {
    const p = dists.get(Id)!;
    const s = dists.get(StagingDistributionId)!;
    if (IfMatch !== `${p.etag}, ${s.etag}`) throw fail("PreconditionFailed", "stale ETags");
    // The primary keeps its own aliases, policy id, Enabled, CallerReference and Staging flag.
    const { Aliases, ContinuousDeploymentPolicyId, Enabled, CallerReference, Staging } = p.config;
    p.config = { ...structuredClone(s.config), Aliases, ContinuousDeploymentPolicyId, Enabled, CallerReference, Staging };
    p.etag = etag();
    return view(Id);
  });
  cf.on(CreateContinuousDeploymentPolicyCommand).callsFake(({ ContinuousDeploymentPolicyConfig }) => {
    checkWeight(ContinuousDeploymentPolicyConfig);
    const id = `cdp-${policies.size + 1}`;
    policies.set(id, { config: structuredClone(ContinuousDeploymentPolicyConfig), etag: etag() });
    return { ETag: policies.get(id)!.etag, ContinuousDeploymentPolicy: { Id: id, LastModifiedTime: new Date(MODIFIED), ContinuousDeploymentPolicyConfig } };
  });
  cf.on(GetContinuousDeploymentPolicyCommand).callsFake(({ Id }) => {
    const p = policies.get(Id);
    if (!p) throw fail("NoSuchContinuousDeploymentPolicy", Id);
    return { ETag: p.etag, ContinuousDeploymentPolicy: { Id, LastModifiedTime: new Date(MODIFIED), ContinuousDeploymentPolicyConfig: structuredClone(p.config) } };
  });
  cf.on(UpdateContinuousDeploymentPolicyCommand).callsFake(({ Id, IfMatch, ContinuousDeploymentPolicyConfig }) => {
    const p = policies.get(Id)!;
    if (IfMatch !== p.etag) throw fail("PreconditionFailed", "stale ETag");
    checkWeight(ContinuousDeploymentPolicyConfig);
    p.config = structuredClone(ContinuousDeploymentPolicyConfig);
    p.etag = etag();
    return {};
  });
  cf.on(ListContinuousDeploymentPoliciesCommand).callsFake(() => ({
    ContinuousDeploymentPolicyList: { MaxItems: 100, Quantity: policies.size, Items: [...policies.entries()].map(([Id, p]) => ({ ContinuousDeploymentPolicy: { Id, LastModifiedTime: new Date(MODIFIED), ContinuousDeploymentPolicyConfig: p.config } })) },
  }));
  return { dists, policies, tags, arn };
}

const sent = () => cf.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name);
const router = (extra: Record<string, unknown> = {}) =>
  new CloudFrontTraffic({ primaryDistributionId: PRIMARY, cachePolicyId: CACHE_POLICY, ...extra }, new CloudFrontClient({ region: "us-east-1" }));

describe("CloudFrontTraffic (SDK mock)", () => {
  let fake: ReturnType<typeof fakeCloudFront>;
  beforeEach(() => {
    fake = fakeCloudFront();
  });

  it("10%: copies the primary as a staging distribution (CallerReference = key), caches there, weights 0.1 with SingleWeight (SDK mock)", async () => {
    const r = router();
    expect(await r.share("cache")).toBe(0);
    await r.setShare("cache", 10, KEY);

    expect(cf.commandCalls(CopyDistributionCommand).map((c) => c.args[0].input)).toEqual([
      { PrimaryDistributionId: PRIMARY, Staging: true, CallerReference: KEY, IfMatch: "ETAG1", Enabled: true },
    ]);
    expect(cf.commandCalls(TagResourceCommand)[0]!.args[0].input.Tags?.Items).toEqual([
      { Key: "honua-agent:staging-distribution", Value: "ESTAGING1" },
      { Key: "honua-agent:baseline-cache-policy", Value: BASELINE_POLICY },
      { Key: "honua-agent:staging-caller-reference", Value: KEY },
    ]);
    expect(fake.dists.get("ESTAGING1")?.config.DefaultCacheBehavior?.CachePolicyId).toBe(CACHE_POLICY);
    expect(cf.commandCalls(CreateContinuousDeploymentPolicyCommand).map((c) => c.args[0].input)).toEqual([{
      ContinuousDeploymentPolicyConfig: {
        StagingDistributionDnsNames: { Quantity: 1, Items: ["dstaging1.cloudfront.net"] },
        Enabled: true,
        TrafficConfig: { Type: "SingleWeight", SingleWeightConfig: { Weight: 0.1 } },
      },
    }]);
    expect(fake.dists.get(PRIMARY)?.config.ContinuousDeploymentPolicyId).toBe("cdp-1");
    // The primary still serves with its own policy: only the weighted share sees the cache.
    expect(fake.dists.get(PRIMARY)?.config.DefaultCacheBehavior?.CachePolicyId).toBe(BASELINE_POLICY);
    expect(await r.share("cache")).toBe(10);
  });

  it("replaying a stage with the same key creates no second staging copy or policy (SDK mock)", async () => {
    await router().setShare("cache", 10, KEY);
    await router().setShare("cache", 10, KEY);
    await router().setShare("cache", 15, "run-a1:EnableCachingGradually:15");
    expect(cf.commandCalls(CopyDistributionCommand)).toHaveLength(1);
    expect(cf.commandCalls(CreateContinuousDeploymentPolicyCommand)).toHaveLength(1);
    expect(await router().share("cache")).toBe(15);
  });

  it("50% is beyond CloudFront's 15% cap: promotes the staging config with both ETags and reads 100 (SDK mock)", async () => {
    const r = router();
    await r.setShare("cache", 10, KEY);
    await r.setShare("cache", 50, "run-a1:EnableCachingGradually:50");
    const promote = cf.commandCalls(UpdateDistributionWithStagingConfigCommand).map((c) => c.args[0].input);
    expect(promote).toHaveLength(1);
    expect(promote[0]).toEqual({ Id: PRIMARY, StagingDistributionId: "ESTAGING1", IfMatch: expect.stringMatching(/^ETAG\d+, ETAG\d+$/) });
    expect(fake.dists.get(PRIMARY)?.config.DefaultCacheBehavior?.CachePolicyId).toBe(CACHE_POLICY);
    // No weighted split any more: the primary itself serves the cached config.
    expect(fake.policies.get("cdp-1")?.config.Enabled).toBe(false);
    expect(await r.share("cache")).toBe(100);
    await r.setShare("cache", 100, "run-a1:EnableCachingGradually:100");
    expect(cf.commandCalls(UpdateDistributionWithStagingConfigCommand)).toHaveLength(1);
  });

  it("a promotion replayed after a crash before the policy was disabled disables it (SDK mock)", async () => {
    const r = router();
    await r.setShare("cache", 10, KEY);
    await r.setShare("cache", 50, "run-a1:EnableCachingGradually:50");
    // What a crash between UpdateDistributionWithStagingConfig and disabling the policy leaves: still weighted.
    const policy = fake.policies.get("cdp-1")!;
    policy.config = { ...policy.config, Enabled: true, TrafficConfig: { Type: "SingleWeight", SingleWeightConfig: { Weight: 0.1 } } };
    await router().setShare("cache", 50, "run-a1:EnableCachingGradually:50");
    expect(fake.policies.get("cdp-1")?.config.Enabled).toBe(false);
    expect(cf.commandCalls(UpdateDistributionWithStagingConfigCommand)).toHaveLength(1);
    // Once disabled, a further stage sends no policy update.
    const updates = cf.commandCalls(UpdateContinuousDeploymentPolicyCommand).length;
    await router().setShare("cache", 100, "run-a1:EnableCachingGradually:100");
    expect(cf.commandCalls(UpdateContinuousDeploymentPolicyCommand)).toHaveLength(updates);
  });

  it("rollback sets the weight to 0, disables the policy and verifies it with GetContinuousDeploymentPolicy (SDK mock)", async () => {
    const r = router();
    await r.setShare("cache", 10, KEY);
    cf.resetHistory();
    await r.setShare("cache", 0, "run-a1:rollback:traffic");
    const update = cf.commandCalls(UpdateContinuousDeploymentPolicyCommand).map((c) => c.args[0].input.ContinuousDeploymentPolicyConfig);
    expect(update).toEqual([{ StagingDistributionDnsNames: { Quantity: 1, Items: ["dstaging1.cloudfront.net"] }, Enabled: false, TrafficConfig: { Type: "SingleWeight", SingleWeightConfig: { Weight: 0 } } }]);
    const order = sent();
    expect(order.lastIndexOf("GetContinuousDeploymentPolicyCommand")).toBeGreaterThan(order.indexOf("UpdateContinuousDeploymentPolicyCommand"));
    expect(await r.share("cache")).toBe(0);
    expect(order.filter((c) => c.startsWith("Delete"))).toEqual([]);
  });

  it("rollback after a promotion puts the primary's previous cache policy back (SDK mock)", async () => {
    const r = router();
    await r.setShare("cache", 10, KEY);
    await r.setShare("cache", 100, "run-a1:EnableCachingGradually:100");
    await r.setShare("cache", 0, "run-a1:rollback:traffic");
    expect(fake.dists.get(PRIMARY)?.config.DefaultCacheBehavior?.CachePolicyId).toBe(BASELINE_POLICY);
    expect(await r.share("cache")).toBe(0);
    expect(sent().filter((c) => c.startsWith("Delete"))).toEqual([]);
  });

  it("overCap: refuse fails a 50% stage before touching anything (SDK mock)", async () => {
    await expect(router({ overCap: "refuse" }).setShare("cache", 50, KEY)).rejects.toThrow(/at most 15%/);
    expect(cf.calls()).toHaveLength(0);
  });

  it("routes only the cache feature (SDK mock)", async () => {
    await expect(router().setShare("metadata", 10, KEY)).rejects.toThrow(/"cache" feature only/);
  });
});

/** Mutating calls only, with their inputs: what a cleanup actually changes, in order. */
const writes = () =>
  cf.calls()
    .map((c) => ({ name: (c.args[0] as { constructor: { name: string } }).constructor.name, input: (c.args[0] as unknown as { input: Record<string, unknown> }).input }))
    .filter((c) => !/^(Get|List)/.test(c.name));
const POLL = { pollSeconds: 0.01, maxWaitSeconds: 5 };

describe("CloudFrontTraffic leftovers and deprovision (SDK mock)", () => {
  let fake: ReturnType<typeof fakeCloudFront>;
  beforeEach(() => {
    fake = fakeCloudFront();
  });

  const rolledBack = async (r = router(POLL)) => {
    await r.setShare("cache", 10, KEY);
    await r.setShare("cache", 0, "run-a1:rollback:traffic");
    return r;
  };

  it("after 10% and a rollback, leftovers are the policy, then the staging distribution (SDK mock)", async () => {
    const r = await rolledBack();
    expect(await r.leftovers()).toEqual([
      { id: "continuous-deployment-policy/cdp-1", description: expect.stringContaining("policy cdp-1") },
      { id: "distribution/ESTAGING1", description: expect.stringContaining("staging distribution ESTAGING1") },
    ]);
    expect(await router().leftovers()).toHaveLength(2);
  });

  it("nothing routed, nothing left: an untouched primary has no leftovers (SDK mock)", async () => {
    expect(await router().leftovers()).toEqual([]);
    expect(writes()).toEqual([]);
  });

  it("cleanup detaches and deletes the policy, disables, waits for and deletes the staging copy, untags the primary, all with fresh ETags (SDK mock)", async () => {
    const r = await rolledBack();
    const leftovers = await r.leftovers();
    const primaryBefore = structuredClone(fake.dists.get(PRIMARY)!.config);
    cf.resetHistory();
    for (const l of leftovers) await r.deprovision(l.id, `run-a1:CleanupAfterRollback:0:${l.id}`);

    const { ContinuousDeploymentPolicyId: _cdp, ...detached } = primaryBefore;
    const w = writes();
    expect(w.map((c) => c.name)).toEqual([
      "UpdateDistributionCommand",
      "DeleteContinuousDeploymentPolicyCommand",
      "UpdateDistributionCommand",
      "DeleteDistributionCommand",
      "UntagResourceCommand",
    ]);
    expect(w[0]!.input).toEqual({ Id: PRIMARY, IfMatch: expect.stringMatching(/^ETAG\d+$/), DistributionConfig: detached });
    expect(w[1]!.input).toEqual({ Id: "cdp-1", IfMatch: expect.stringMatching(/^ETAG\d+$/) });
    expect(w[2]!.input).toMatchObject({ Id: "ESTAGING1", DistributionConfig: { Enabled: false, Staging: true } });
    // The ETag DeleteDistribution sends is the one after the disable, not the one it was disabled with.
    expect(w[3]!.input).toEqual({ Id: "ESTAGING1", IfMatch: expect.stringMatching(/^ETAG\d+$/) });
    expect(w[3]!.input.IfMatch).not.toBe(w[2]!.input.IfMatch);
    expect(w[4]!.input).toEqual({ Resource: fake.arn(PRIMARY), TagKeys: { Items: ["honua-agent:staging-distribution", "honua-agent:staging-caller-reference"] } });
    // The waiter polled until the disable was Deployed before the delete.
    const order = sent();
    expect(order.slice(order.indexOf("UpdateDistributionCommand", order.indexOf("DeleteContinuousDeploymentPolicyCommand")), order.indexOf("DeleteDistributionCommand"))).toEqual([
      "UpdateDistributionCommand", "GetDistributionCommand", "GetDistributionCommand", "GetDistributionCommand",
    ]);

    expect(fake.policies.size).toBe(0);
    expect([...fake.dists.keys()]).toEqual([PRIMARY]);
    // The primary keeps everything but the policy id; the baseline tag stays for a later promotion's rollback.
    expect(fake.dists.get(PRIMARY)!.config).toEqual(detached);
    expect([...fake.tags.get(fake.arn(PRIMARY))!.keys()]).toEqual(["honua-agent:baseline-cache-policy"]);
    expect(await r.leftovers()).toEqual([]);
    expect(await r.share("cache")).toBe(0);
  });

  it("a replayed cleanup, everything already gone, succeeds and changes nothing (SDK mock)", async () => {
    const r = await rolledBack();
    const leftovers = await r.leftovers();
    for (const l of leftovers) await r.deprovision(l.id, l.id);
    cf.resetHistory();
    for (const l of leftovers) await r.deprovision(l.id, l.id);
    expect(writes()).toEqual([]);
  });

  it("a cleanup that stopped after DeleteDistribution finishes by untagging the primary (SDK mock)", async () => {
    const r = await rolledBack();
    await r.deprovision("continuous-deployment-policy/cdp-1", "k");
    fake.dists.delete("ESTAGING1");
    cf.resetHistory();
    await r.deprovision("distribution/ESTAGING1", "k");
    expect(writes().map((c) => c.name)).toEqual(["UntagResourceCommand"]);
  });

  it("deleting the staging copy first takes its policy with it, in the order CloudFront accepts (SDK mock)", async () => {
    const r = await rolledBack();
    await r.deprovision("distribution/ESTAGING1", "k");
    expect(writes().filter((c) => /^(Delete|Untag)/.test(c.name)).map((c) => c.name)).toEqual([
      "DeleteContinuousDeploymentPolicyCommand", "DeleteDistributionCommand", "UntagResourceCommand",
    ]);
    expect(fake.policies.size).toBe(0);
  });

  it("after a promotion and its rollback, the staging copy and the policy are leftovers and are deleted alike (SDK mock)", async () => {
    const r = router(POLL);
    await r.setShare("cache", 10, KEY);
    await r.setShare("cache", 100, "run-a1:EnableCachingGradually:100");
    await r.setShare("cache", 0, "run-a1:rollback:traffic");
    const leftovers = await r.leftovers();
    expect(leftovers.map((l) => l.id)).toEqual(["continuous-deployment-policy/cdp-1", "distribution/ESTAGING1"]);
    for (const l of leftovers) await r.deprovision(l.id, l.id);
    expect([...fake.dists.keys()]).toEqual([PRIMARY]);
    expect(fake.dists.get(PRIMARY)!.config.DefaultCacheBehavior?.CachePolicyId).toBe(BASELINE_POLICY);
    expect(fake.dists.get(PRIMARY)!.config.Enabled).toBe(true);
  });

  it("no Delete or Untag command is ever sent while setting shares or rolling back (SDK mock)", async () => {
    const r = router(POLL);
    for (const [p, k] of [[10, KEY], [15, "k15"], [50, "k50"], [100, "k100"], [0, "rb"], [10, "k10b"], [0, "rb2"]] as const) await r.setShare("cache", p, k);
    expect(sent().filter((c) => /^(Delete|Untag)/.test(c))).toEqual([]);
  });

  it("refuses a distribution without the agent's tag, the primary, a wrong CallerReference and a foreign policy (SDK mock)", async () => {
    const r = await rolledBack();
    fake.dists.set("EOTHER1", { config: { ...structuredClone(fake.dists.get("ESTAGING1")!.config), CallerReference: "someone-else" }, etag: "ETAGX", domain: "dother.cloudfront.net" });
    fake.policies.set("cdp-foreign", { config: { StagingDistributionDnsNames: { Quantity: 1, Items: ["dother.cloudfront.net"] }, Enabled: false, TrafficConfig: { Type: "SingleWeight", SingleWeightConfig: { Weight: 0 } } }, etag: "ETAGY" });
    cf.resetHistory();
    await expect(r.deprovision("distribution/EOTHER1", "k")).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/not the staging copy honua-agent recorded/) });
    await expect(r.deprovision(`distribution/${PRIMARY}`, "k")).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/is the primary distribution/) });
    await expect(r.deprovision("continuous-deployment-policy/cdp-foreign", "k")).rejects.toMatchObject({ code: "forbidden" });
    await expect(r.deprovision("E123", "k")).rejects.toMatchObject({ code: "bad-input" });
    // The recorded staging copy, but not with the CallerReference it was created with.
    fake.dists.get("ESTAGING1")!.config.CallerReference = "replaced";
    await expect(r.deprovision("distribution/ESTAGING1", "k")).rejects.toMatchObject({ code: "forbidden", message: expect.stringMatching(/not a staging copy made by honua-agent/) });
    expect(writes()).toEqual([]);
  });

  it("refuses to delete a policy that still weights traffic (no rollback yet) (SDK mock)", async () => {
    const r = router(POLL);
    await r.setShare("cache", 10, KEY);
    cf.resetHistory();
    await expect(r.deprovision("continuous-deployment-policy/cdp-1", "k")).rejects.toThrow(/still enabled/);
    await expect(r.deprovision("distribution/ESTAGING1", "k")).rejects.toThrow(/still enabled/);
    expect(writes()).toEqual([]);
    expect(await r.share("cache")).toBe(10);
  });
});

describe("rollbackCaching + cleanupCaching with CloudFront traffic (SDK mock)", () => {
  let fake: ReturnType<typeof fakeCloudFront>;
  beforeEach(() => {
    fake = fakeCloudFront();
  });

  async function harness(steps: string[]) {
    const config: Record<string, string> = { TileOptions__CacheMaxAge: "3600" };
    const cacheDeleted: { id: string; afterCalls: number }[] = [];
    const cache: CacheInfra = {
      engines: ["cloudfront"],
      provision: async () => { throw new Error("unused"); },
      deprovision: async (id) => void cacheDeleted.push({ id, afterCalls: cf.calls().length }),
    };
    const traffic = router(POLL);
    const adapters = {
      config: {
        read: async () => ({ ...config }),
        apply: async (changes: ConfigChange[]) => {
          for (const c of changes) (c.after === null ? delete config[c.key] : (config[c.key] = c.after));
        },
      },
      cache,
      traffic,
    } as unknown as DeploymentAdapters;
    // What each step journalled when it acted.
    const effects: Record<string, Effect[]> = {
      ProvisionCacheInfrastructure: [{ kind: "resource", capability: "cache", id: "EDGECACHE1", resourceKind: "cloudfront", description: "cloudfront cloudfront-distribution EDGECACHE1", created: true }],
      ConfigureCaching: [{ kind: "config", key: "TileOptions__CacheMaxAge", before: "3600", after: "86400" }],
      EnableCachingGradually: [{ kind: "share", feature: "cache", before: 0, after: 10 }],
    };
    const journal = new MemoryJournal("run-cf");
    for (const name of steps) {
      await journal.at(name).intend(null, effects[name] ?? []);
      await journal.at(name).done(null);
    }
    const ctx = {
      run: "run-cf", workflow: "add-caching-layer", deployment: "prod", deploymentConfig: Deployment.parse({ provider: "sandbox", approvers: ["oncall"] }),
      journal: journal.at("Rollback"),
      adapters, idempotencyKey: (s?: string) => `run-cf:CleanupAfterRollback:0:${s ?? ""}`, idempotencyKeyOf: (step: string, stage?: number) => `run-cf:${step}:${stage ?? 0}`,
      progress: () => {}, remember: async (_n: string, v: string) => v, attach: async (n: string) => n, stopRequested: async () => null,
    } satisfies StepContext;
    const records = {
      ProvisionCacheInfrastructure: { resource: { id: "EDGECACHE1", engine: "cloudfront", nodeType: "cloudfront-distribution", endpoint: "dedge.cloudfront.net", createdAt: "" } },
      ConfigureCaching: { changes: [{ key: "TileOptions__CacheMaxAge", before: "3600", after: "86400" }], diff: "", fileDiff: null },
      EnableCachingGradually: { percent: 10 },
    } as Record<string, unknown>;
    const view = new RunView({
      run: "run-cf", workflow: "add-caching-layer", deployment: "prod", requestedBy: "carol", request: "x", params: {},
      steps: steps.map((name) => ({ name, stage: name === "EnableCachingGradually" ? 10 : null, status: "done" as const, startedAt: "", endedAt: "", input: {}, output: records[name] ?? null })),
      decisions: [], gate: null, next: { to: "step", index: 0, stage: 0 }, status: "running", ending: null, outcome: null, metrics: { before: null, after: null },
    });
    config.TileOptions__CacheMaxAge = "86400";
    return { ctx, view, traffic, config, cacheDeleted };
  }

  it("rollback offers the cache, the policy and the staging copy; cleanup deletes the traffic ones first, then the cache (SDK mock)", async () => {
    const h = await harness(["ProvisionCacheInfrastructure", "ConfigureCaching", "EnableCachingGradually"]);
    await h.traffic.setShare("cache", 10, "run-cf:EnableCachingGradually:10");

    const { restored, leftovers } = await rollbackCaching(h.ctx, h.view);
    expect(restored).toEqual(["cache traffic share -> 0%", "TileOptions__CacheMaxAge -> 3600"]);
    expect(h.config).toEqual({ TileOptions__CacheMaxAge: "3600" });
    expect(leftovers).toEqual([
      { id: "EDGECACHE1", kind: "cloudfront", description: "cloudfront cloudfront-distribution EDGECACHE1" },
      { id: "continuous-deployment-policy/cdp-1", kind: "traffic", description: expect.stringContaining("cdp-1") },
      { id: "distribution/ESTAGING1", kind: "traffic", description: expect.stringContaining("ESTAGING1") },
    ]);
    expect(sent().filter((c) => /^(Delete|Untag)/.test(c))).toEqual([]);
    expect(h.cacheDeleted).toEqual([]);

    // Only the cleanup the delete gate guards deletes.
    await cleanupCaching(h.ctx, leftovers);
    const deletes = sent().filter((c) => /^(Delete|Untag)/.test(c));
    expect(deletes).toEqual(["DeleteContinuousDeploymentPolicyCommand", "DeleteDistributionCommand", "UntagResourceCommand"]);
    expect(h.cacheDeleted).toEqual([{ id: "EDGECACHE1", afterCalls: cf.calls().length }]);
    expect([...fake.dists.keys()]).toEqual([PRIMARY]);

    // A replayed cleanup step finds everything gone and succeeds.
    cf.resetHistory();
    await cleanupCaching(h.ctx, leftovers);
    expect(sent().filter((c) => !/^(Get|List)/.test(c))).toEqual([]);
  });

  it("a run that never reached a traffic stage does not offer an earlier run's staging copy (SDK mock)", async () => {
    const h = await harness(["ProvisionCacheInfrastructure", "ConfigureCaching"]);
    await h.traffic.setShare("cache", 10, "run-old:EnableCachingGradually:10");
    await h.traffic.setShare("cache", 0, "run-old:rollback");
    const { leftovers } = await rollbackCaching(h.ctx, h.view);
    expect(leftovers.map((l) => l.kind)).toEqual(["cloudfront"]);
  });

  it("a traffic router that cannot list its leftovers does not fail the rollback or lose the cache leftover (SDK mock)", async () => {
    const h = await harness(["ProvisionCacheInfrastructure", "ConfigureCaching", "EnableCachingGradually"]);
    const said: string[] = [];
    const traffic = { share: async () => 0, setShare: async () => undefined, leftovers: async () => { throw new Error("AccessDenied"); } };
    const ctx = { ...h.ctx, progress: (m: string) => void said.push(m), adapters: { ...h.ctx.adapters, traffic } };
    const { leftovers } = await rollbackCaching(ctx, h.view);
    expect(leftovers.map((l) => l.id)).toEqual(["EDGECACHE1"]);
    expect(said).toEqual([expect.stringMatching(/could not list what the traffic router left behind \(AccessDenied\)/)]);
  });

  it("a traffic leftover the router cannot delete fails the cleanup with a clear error (SDK mock)", async () => {
    const h = await harness([]);
    const ctx = { ...h.ctx, adapters: { ...h.ctx.adapters, traffic: { share: async () => 0, setShare: async () => undefined } } };
    await expect(cleanupCaching(ctx, [{ id: "distribution/E1", kind: "traffic" }])).rejects.toThrow(/cannot delete distribution\/E1; delete it by hand/);
  });
});
