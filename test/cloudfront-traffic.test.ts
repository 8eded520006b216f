import {
  CloudFrontClient,
  CopyDistributionCommand,
  CreateContinuousDeploymentPolicyCommand,
  GetContinuousDeploymentPolicyCommand,
  GetDistributionCommand,
  ListContinuousDeploymentPoliciesCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UpdateContinuousDeploymentPolicyCommand,
  UpdateDistributionCommand,
  UpdateDistributionWithStagingConfigCommand,
  type ContinuousDeploymentPolicyConfig,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { CloudFrontTraffic } from "../src/tools/traffic/cloudfront.js";

const cf = mockClient(CloudFrontClient);
const PRIMARY = "EPRIMARY123";
const BASELINE_POLICY = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const CACHE_POLICY = "cp-tiles-3600";
const KEY = "run-a1:EnableCachingGradually:10";

/**
 * A small in-memory CloudFront behind the SDK mock: ETags change on every write and a stale IfMatch is refused,
 * and a SingleWeight above 0.15 is refused, as the service does.
 */
function fakeCloudFront() {
  let n = 0;
  const etag = () => `ETAG${++n}`;
  const arn = (id: string) => `arn:aws:cloudfront::123456789012:distribution/${id}`;
  const dists = new Map<string, { config: DistributionConfig; etag: string; domain: string }>();
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
    return { ETag: d.etag, Distribution: { Id: id, ARN: arn(id), Status: "Deployed", DomainName: d.domain, LastModifiedTime: new Date(), InProgressInvalidationBatches: 0, DistributionConfig: structuredClone(d.config) } };
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
    const d = dists.get(Id)!;
    if (IfMatch !== d.etag) throw fail("PreconditionFailed", `stale ETag ${IfMatch} (now ${d.etag})`);
    d.config = structuredClone(DistributionConfig);
    d.etag = etag();
    return view(Id);
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
    return { ETag: policies.get(id)!.etag, ContinuousDeploymentPolicy: { Id: id, LastModifiedTime: new Date(), ContinuousDeploymentPolicyConfig } };
  });
  cf.on(GetContinuousDeploymentPolicyCommand).callsFake(({ Id }) => {
    const p = policies.get(Id);
    if (!p) throw fail("NoSuchContinuousDeploymentPolicy", Id);
    return { ETag: p.etag, ContinuousDeploymentPolicy: { Id, LastModifiedTime: new Date(), ContinuousDeploymentPolicyConfig: structuredClone(p.config) } };
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
    ContinuousDeploymentPolicyList: { MaxItems: 100, Quantity: policies.size, Items: [...policies.entries()].map(([Id, p]) => ({ ContinuousDeploymentPolicy: { Id, LastModifiedTime: new Date(), ContinuousDeploymentPolicyConfig: p.config } })) },
  }));
  return { dists, policies };
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
