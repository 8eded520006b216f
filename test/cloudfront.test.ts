import {
  CachePolicyAlreadyExists,
  CloudFrontClient,
  CreateCachePolicyCommand,
  CreateDistributionCommand,
  DeleteCachePolicyCommand,
  DeleteDistributionCommand,
  DistributionAlreadyExists,
  GetCachePolicyCommand,
  GetDistributionCommand,
  GetDistributionConfigCommand,
  ListCachePoliciesCommand,
  ListDistributionsCommand,
  UpdateDistributionCommand,
  type Distribution,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { keyDigest } from "../src/tools/aws/util.js";
import { CloudFrontInfra, MANAGED } from "../src/tools/cache/cloudfront.js";

const cf = mockClient(CloudFrontClient);
beforeEach(() => cf.reset());

const KEY = "run-c0ffee:ProvisionCacheInfrastructure:0";
const SPEC = { engine: "cloudfront" as const, nodeType: "cloudfront-distribution", memoryGb: 0, evictionPolicy: "lru", ttlSeconds: 3600 };
const OPTIONS = { originDomainName: "honua.example.org", pollSeconds: 0.01, maxWaitSeconds: 5 };
const sent = () => cf.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name);
const infra = (extra: Record<string, unknown> = {}) => new CloudFrontInfra({ ...OPTIONS, ...extra }, new CloudFrontClient({ region: "us-east-1" }));
const dist = (Status: string, config?: DistributionConfig): Distribution => ({
  Id: "E2QWRUHAPOMQZL", ARN: "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL", Status, DomainName: "d111111abcdef8.cloudfront.net",
  LastModifiedTime: new Date("2026-11-26T12:00:00Z"), InProgressInvalidationBatches: 0, DistributionConfig: config,
});

describe("CloudFrontInfra (SDK mock)", () => {
  it("creates the tile cache policy from the TTL and a distribution with CallerReference = idempotency key, then waits until Deployed (SDK mock)", async () => {
    cf.on(CreateCachePolicyCommand).resolves({ CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: undefined } });
    cf.on(CreateDistributionCommand).resolves({ Distribution: dist("InProgress"), ETag: "E1" });
    cf.on(GetDistributionCommand).resolvesOnce({ Distribution: dist("InProgress") }).resolves({ Distribution: dist("Deployed") });

    const res = await infra().provision(SPEC, KEY);

    expect(cf.commandCalls(CreateCachePolicyCommand)[0]!.args[0].input).toEqual({
      CachePolicyConfig: {
        Name: `honua-tiles-${keyDigest(KEY)}`,
        Comment: "honua-agent tiles, default TTL 3600 s",
        MinTTL: 0,
        DefaultTTL: 3600,
        MaxTTL: 86_400,
        ParametersInCacheKeyAndForwardedToOrigin: {
          EnableAcceptEncodingGzip: true,
          EnableAcceptEncodingBrotli: true,
          HeadersConfig: { HeaderBehavior: "none" },
          CookiesConfig: { CookieBehavior: "none" },
          QueryStringsConfig: { QueryStringBehavior: "all" },
        },
      },
    });
    const cfg = cf.commandCalls(CreateDistributionCommand)[0]!.args[0].input.DistributionConfig!;
    expect(cfg.CallerReference).toBe(KEY);
    expect(cfg.Comment).toBe(`honua-agent ${keyDigest(KEY)}`);
    expect(cfg.Origins).toEqual({ Quantity: 1, Items: [{ Id: "honua", DomainName: "honua.example.org", CustomOriginConfig: { HTTPPort: 80, HTTPSPort: 443, OriginProtocolPolicy: "https-only", OriginSslProtocols: { Quantity: 1, Items: ["TLSv1.2"] } } }] });
    // Only tiles are cached; everything else reaches Honua uncached.
    expect(cfg.DefaultCacheBehavior?.CachePolicyId).toBe(MANAGED.cachingDisabled);
    expect(cfg.DefaultCacheBehavior?.OriginRequestPolicyId).toBe(MANAGED.allViewerExceptHostHeader);
    expect(cfg.CacheBehaviors?.Items?.map((b) => [b.PathPattern, b.CachePolicyId])).toEqual([["/ogc/tiles/*", "cp-1"], ["/tiles/*", "cp-1"]]);
    expect(sent()).toEqual(["CreateCachePolicyCommand", "CreateDistributionCommand", "GetDistributionCommand", "GetDistributionCommand"]);
    expect(res).toEqual({ id: "E2QWRUHAPOMQZL", engine: "cloudfront", nodeType: "cloudfront-distribution", endpoint: "d111111abcdef8.cloudfront.net", createdAt: "2026-11-26T12:00:00.000Z" });
  });

  it("a replay sends the identical CreateDistribution (idempotent on CallerReference) and finds its cache policy by name (SDK mock)", async () => {
    const name = `honua-tiles-${keyDigest(KEY)}`;
    cf.on(CreateCachePolicyCommand)
      .resolvesOnce({ CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: undefined } })
      .rejects(new CachePolicyAlreadyExists({ message: "exists", $metadata: {} }));
    cf.on(ListCachePoliciesCommand)
      .resolvesOnce({ CachePolicyList: { MaxItems: 1, Quantity: 1, NextMarker: "m2", Items: [{ Type: "custom", CachePolicy: { Id: "cp-other", LastModifiedTime: new Date(), CachePolicyConfig: { Name: "other", MinTTL: 0 } } }] } })
      .resolves({ CachePolicyList: { MaxItems: 1, Quantity: 1, Items: [{ Type: "custom", CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: { Name: name, MinTTL: 0 } } }] } });
    cf.on(CreateDistributionCommand).resolves({ Distribution: dist("Deployed") });

    const first = await infra().provision(SPEC, KEY);
    const second = await infra().provision(SPEC, KEY);

    expect(second).toEqual(first);
    const creates = cf.commandCalls(CreateDistributionCommand).map((c) => c.args[0].input);
    expect(creates).toHaveLength(2);
    expect(creates[1]).toEqual(creates[0]);
    expect(cf.commandCalls(ListCachePoliciesCommand).map((c) => c.args[0].input)).toEqual([{ Type: "custom" }, { Type: "custom", Marker: "m2" }]);
  });

  it("adopts the distribution carrying this CallerReference on DistributionAlreadyExists (SDK mock)", async () => {
    cf.on(CreateCachePolicyCommand).resolves({ CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: undefined } });
    cf.on(CreateDistributionCommand).rejects(new DistributionAlreadyExists({ message: "CallerReference in use with a different config", $metadata: {} }));
    const summary = (Id: string, Comment: string) => ({ ...dist("Deployed"), Id, Comment, Aliases: { Quantity: 0 }, Origins: undefined, DefaultCacheBehavior: undefined, CacheBehaviors: undefined, CustomErrorResponses: undefined, PriceClass: undefined, Enabled: true, ViewerCertificate: undefined, Restrictions: undefined, WebACLId: "", HttpVersion: undefined, IsIPV6Enabled: true, Staging: false });
    cf.on(ListDistributionsCommand).resolves({ DistributionList: { Marker: "", MaxItems: 100, IsTruncated: false, Quantity: 2, Items: [summary("EOTHER", "prod"), summary("E2QWRUHAPOMQZL", `honua-agent ${keyDigest(KEY)}`)] } });
    cf.on(GetDistributionConfigCommand, { Id: "E2QWRUHAPOMQZL" }).resolves({ ETag: "E9", DistributionConfig: infra().distributionConfig(KEY, "cp-1") });
    const res = await infra().provision(SPEC, KEY);
    expect(res.id).toBe("E2QWRUHAPOMQZL");
    expect(sent()).not.toContain("DeleteDistributionCommand");
  });

  it("deprovision disables, waits until Deployed, deletes with the fresh ETag, then deletes its own cache policy (SDK mock)", async () => {
    const cfg = infra().distributionConfig(KEY, "cp-1");
    cf.on(GetDistributionConfigCommand).resolvesOnce({ ETag: "E1", DistributionConfig: cfg }).resolves({ ETag: "E2", DistributionConfig: { ...cfg, Enabled: false } });
    cf.on(UpdateDistributionCommand).resolves({ ETag: "E2" });
    cf.on(GetDistributionCommand).resolves({ Distribution: dist("Deployed") });
    cf.on(DeleteDistributionCommand).resolves({});
    cf.on(GetCachePolicyCommand).resolves({ ETag: "P1", CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: { Name: `honua-tiles-${keyDigest(KEY)}`, MinTTL: 0 } } });
    cf.on(DeleteCachePolicyCommand).resolves({});

    await infra().deprovision("E2QWRUHAPOMQZL", `${KEY}:cleanup`);

    expect(sent()).toEqual([
      "GetDistributionConfigCommand", "UpdateDistributionCommand", "GetDistributionCommand", "GetDistributionConfigCommand",
      "DeleteDistributionCommand", "GetCachePolicyCommand", "DeleteCachePolicyCommand",
    ]);
    expect(cf.commandCalls(UpdateDistributionCommand)[0]!.args[0].input).toEqual({ Id: "E2QWRUHAPOMQZL", IfMatch: "E1", DistributionConfig: { ...cfg, Enabled: false } });
    expect(cf.commandCalls(DeleteDistributionCommand)[0]!.args[0].input).toEqual({ Id: "E2QWRUHAPOMQZL", IfMatch: "E2" });
    expect(cf.commandCalls(DeleteCachePolicyCommand)[0]!.args[0].input).toEqual({ Id: "cp-1", IfMatch: "P1" });
  });

  it("deprovision refuses a distribution honua-agent did not create, and provision never deletes (SDK mock)", async () => {
    cf.on(GetDistributionConfigCommand).resolves({ ETag: "E1", DistributionConfig: { ...infra().distributionConfig(KEY, "cp-1"), Comment: "production site" } });
    await expect(infra().deprovision("E2QWRUHAPOMQZL", "k")).rejects.toThrow(/not created by honua-agent .*refusing to delete/);
    expect(sent()).toEqual(["GetDistributionConfigCommand"]);

    cf.reset();
    cf.on(CreateCachePolicyCommand).resolves({ CachePolicy: { Id: "cp-1", LastModifiedTime: new Date(), CachePolicyConfig: undefined } });
    cf.on(CreateDistributionCommand).resolves({ Distribution: dist("InProgress") });
    cf.on(GetDistributionCommand).rejects(new Error("throttled"));
    await expect(infra({ maxWaitSeconds: 0.05 }).provision(SPEC, KEY)).rejects.toThrow(/was not Deployed within/);
    expect(sent().filter((n) => n.startsWith("Delete") || n.startsWith("Update"))).toEqual([]);
  });

  it("deprovision of a distribution that is already gone is a no-op (SDK mock)", async () => {
    cf.on(GetDistributionConfigCommand).rejects(Object.assign(new Error("no such"), { name: "NoSuchDistribution" }));
    await infra().deprovision("E2QWRUHAPOMQZL", "k");
    expect(sent()).toEqual(["GetDistributionConfigCommand"]);
  });
});
