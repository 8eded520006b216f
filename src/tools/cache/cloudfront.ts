import type {
  CloudFrontClient,
  CacheBehavior,
  CachePolicyConfig,
  Distribution,
  DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { z } from "zod";
import { AgentError, parseOptions } from "../../core/errors.js";
import { isAwsError, keyDigest, waiterConfig } from "../aws/util.js";
import type { CacheInfra, CacheResource } from "../types.js";
import type { Clock } from "../../core/clock.js";
import { systemClock } from "../../core/clock.js";
import type { CacheSpecWithTtl } from "./varnish.js";
import { lazyModule } from "../../core/lazy.js";

/** The SDK, imported when this adapter first calls AWS (see core/lazy.ts). */
const sdk = lazyModule(() => import("@aws-sdk/client-cloudfront"));

/** AWS managed policies (ids are fixed across accounts). */
export const MANAGED = {
  /** Managed-CachingDisabled: everything but tiles reaches Honua as before. */
  cachingDisabled: "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
  /** Managed-AllViewerExceptHostHeader: query strings, headers and cookies reach Honua; Host is the origin's own. */
  allViewerExceptHostHeader: "b689b0a8-53d0-40ab-baf2-68738e2966ac",
} as const;

export const CloudFrontOptions = z
  .object({
    /** CloudFront is global; its API is served from us-east-1. */
    region: z.string().min(1).default("us-east-1"),
    /** Honua's public host name, the distribution's origin. */
    originDomainName: z.string().regex(/^[A-Za-z0-9.-]+$/, "a host name"),
    originProtocolPolicy: z.enum(["https-only", "http-only", "match-viewer"]).default("https-only"),
    /** Paths cached with the TTLs: Honua's tile endpoints. Everything else is passed through uncached. */
    tilePathPatterns: z.array(z.string().min(1)).min(1).default(["/ogc/tiles/*", "/tiles/*"]),
    priceClass: z.enum(["PriceClass_100", "PriceClass_200", "PriceClass_All"]).default("PriceClass_100"),
    aliases: z.array(z.string().min(1)).default([]),
    /** ACM certificate (us-east-1) for the aliases. */
    certificateArn: z.string().startsWith("arn:aws:acm:us-east-1:").optional(),
    /** TTL when the spec carries none (Honua's Cache__DefaultTtlSeconds default). */
    defaultTtlSeconds: z.number().int().positive().default(300),
    /** Upper bound on what Honua's Cache-Control (TileOptions__CacheMaxAge) may ask for. */
    maxTtlSeconds: z.number().int().positive().default(86_400),
    uncachedPolicyId: z.string().default(MANAGED.cachingDisabled),
    originRequestPolicyId: z.string().default(MANAGED.allViewerExceptHostHeader),
    /** Wait until the distribution is Deployed before returning it (minutes, in practice). */
    waitForDeployed: z.boolean().default(true),
    pollSeconds: z.number().positive().default(30),
    maxWaitSeconds: z.number().positive().default(3600),
  })
  .strict();
export type CloudFrontOptions = z.input<typeof CloudFrontOptions>;

/** Marks what honua-agent created; deprovision deletes nothing without it. */
const COMMENT_PREFIX = "honua-agent ";
const POLICY_PREFIX = "honua-tiles-";
const ORIGIN_ID = "honua";

const ALL_METHODS = { Quantity: 7, Items: ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"] as ("GET" | "HEAD" | "OPTIONS" | "PUT" | "POST" | "PATCH" | "DELETE")[], CachedMethods: { Quantity: 2, Items: ["GET", "HEAD"] as ("GET" | "HEAD")[] } };
const READ_METHODS = { Quantity: 2, Items: ["GET", "HEAD"] as ("GET" | "HEAD")[], CachedMethods: { Quantity: 2, Items: ["GET", "HEAD"] as ("GET" | "HEAD")[] } };

/** A CloudFront distribution in front of Honua: tile paths cached with the TTLs, the rest passed through. */
export class CloudFrontInfra implements CacheInfra {
  readonly engines = ["cloudfront"] as const;
  readonly options: z.output<typeof CloudFrontOptions>;
  private readonly client: CloudFrontClient | Promise<CloudFrontClient>;

  constructor(options: CloudFrontOptions, client?: CloudFrontClient, private readonly clock: Clock = systemClock) {
    const parsed = parseOptions(CloudFrontOptions, options, "cloudfront options");
    // Checked here rather than with .refine(), so the schema stays extendable where it is embedded in a config section.
    if (parsed.aliases.length && !parsed.certificateArn) throw new AgentError("bad-input", "cloudfront options: aliases need certificateArn (an ACM certificate in us-east-1)");
    this.options = parsed;
    this.client = client ?? sdk().then((m) => new m.CloudFrontClient({ region: this.options.region }));
  }

  /** The cache policy for tile paths: the TTL applies when Honua sends no Cache-Control; `private`/`no-store` are honoured (MinTTL 0). */
  cachePolicyConfig(name: string, ttlSeconds: number): CachePolicyConfig {
    return {
      Name: name,
      Comment: `${COMMENT_PREFIX}tiles, default TTL ${ttlSeconds} s`,
      MinTTL: 0,
      DefaultTTL: ttlSeconds,
      MaxTTL: Math.max(ttlSeconds, this.options.maxTtlSeconds),
      ParametersInCacheKeyAndForwardedToOrigin: {
        EnableAcceptEncodingGzip: true,
        EnableAcceptEncodingBrotli: true,
        HeadersConfig: { HeaderBehavior: "none" },
        CookiesConfig: { CookieBehavior: "none" },
        // Tile requests differ by query (f=mvt, datetime, ...): all of it belongs in the key.
        QueryStringsConfig: { QueryStringBehavior: "all" },
      },
    };
  }

  distributionConfig(idempotencyKey: string, cachePolicyId: string): DistributionConfig {
    const o = this.options;
    const tileBehavior = (PathPattern: string): CacheBehavior => ({
      PathPattern,
      TargetOriginId: ORIGIN_ID,
      ViewerProtocolPolicy: "redirect-to-https",
      AllowedMethods: READ_METHODS,
      Compress: true,
      CachePolicyId: cachePolicyId,
    });
    return {
      // CreateDistribution is idempotent on CallerReference: a replay with the same key returns the same distribution.
      CallerReference: idempotencyKey,
      Comment: `${COMMENT_PREFIX}${keyDigest(idempotencyKey)}`,
      Enabled: true,
      PriceClass: o.priceClass,
      HttpVersion: "http2and3",
      IsIPV6Enabled: true,
      Origins: {
        Quantity: 1,
        Items: [{
          Id: ORIGIN_ID,
          DomainName: o.originDomainName,
          CustomOriginConfig: { HTTPPort: 80, HTTPSPort: 443, OriginProtocolPolicy: o.originProtocolPolicy, OriginSslProtocols: { Quantity: 1, Items: ["TLSv1.2"] } },
        }],
      },
      DefaultCacheBehavior: {
        TargetOriginId: ORIGIN_ID,
        ViewerProtocolPolicy: "redirect-to-https",
        AllowedMethods: ALL_METHODS,
        Compress: true,
        CachePolicyId: o.uncachedPolicyId,
        OriginRequestPolicyId: o.originRequestPolicyId,
      },
      CacheBehaviors: { Quantity: o.tilePathPatterns.length, Items: o.tilePathPatterns.map(tileBehavior) },
      ...(o.aliases.length
        ? {
            Aliases: { Quantity: o.aliases.length, Items: o.aliases },
            ViewerCertificate: { ACMCertificateArn: o.certificateArn, SSLSupportMethod: "sni-only", MinimumProtocolVersion: "TLSv1.2_2021" },
          }
        : { ViewerCertificate: { CloudFrontDefaultCertificate: true } }),
    };
  }

  /** The distribution a provision under this key created (its CallerReference is the key), if any. */
  async provisioned(idempotencyKey: string): Promise<{ id: string; description: string } | null> {
    try {
      const d = await this.findByKey(idempotencyKey);
      return d.Id ? { id: d.Id, description: `CloudFront distribution ${d.Id} (${d.DomainName ?? "no domain"}, ${d.Status ?? "unknown status"})` } : null;
    } catch (err) {
      if (err instanceof AgentError && err.code === "conflict") return null; // nothing carries this key
      throw err;
    }
  }

  async provision(spec: CacheSpecWithTtl, idempotencyKey: string): Promise<CacheResource> {
    if (spec.engine !== "cloudfront") throw new AgentError("bad-input", `CloudFrontInfra provides a CDN, not ${spec.engine}`);
    const ttl = spec.ttlSeconds ?? this.options.defaultTtlSeconds;
    if (!Number.isInteger(ttl) || ttl <= 0) throw new AgentError("bad-input", `TTL must be a positive whole number of seconds, got ${ttl}`);
    const policyId = await this.ensureCachePolicy(`${POLICY_PREFIX}${keyDigest(idempotencyKey)}`, ttl);
    let dist: Distribution;
    try {
      const res = await (await this.client).send(new (await sdk()).CreateDistributionCommand({ DistributionConfig: this.distributionConfig(idempotencyKey, policyId) }));
      if (!res.Distribution) throw new AgentError("failed", "CreateDistribution returned no distribution");
      dist = res.Distribution;
    } catch (err) {
      // Same CallerReference with a different config (e.g. options changed between attempts): adopt the first.
      if (!isAwsError(err, "DistributionAlreadyExists")) throw err;
      dist = await this.findByKey(idempotencyKey);
    }
    if (this.options.waitForDeployed && dist.Status !== "Deployed") {
      const res = await (await sdk()).waitUntilDistributionDeployed(await this.waiter(), { Id: dist.Id }).catch((err: Error) => {
        throw new AgentError("failed", `distribution ${dist.Id} was not Deployed within ${this.options.maxWaitSeconds} s: ${err.message}`);
      });
      dist = res.reason?.Distribution ?? dist;
    }
    return {
      id: dist.Id ?? "",
      engine: "cloudfront",
      nodeType: spec.nodeType,
      endpoint: dist.DomainName ?? "",
      createdAt: (dist.LastModifiedTime ?? this.clock.now()).toISOString(),
    };
  }

  /** Disables, waits until Deployed, then deletes with the current ETag; then its tile cache policies. */
  async deprovision(id: string, _idempotencyKey: string): Promise<void> {
    let current = await this.getConfig(id);
    if (!current) return;
    if (!current.config.Comment?.startsWith(COMMENT_PREFIX)) {
      throw new AgentError("forbidden", `distribution ${id} was not created by honua-agent (comment "${current.config.Comment ?? ""}"); refusing to delete it`);
    }
    const policies = (current.config.CacheBehaviors?.Items ?? []).map((b) => b.CachePolicyId).filter((p): p is string => !!p);
    if (current.config.Enabled) {
      await (await this.client).send(new (await sdk()).UpdateDistributionCommand({ Id: id, IfMatch: current.etag, DistributionConfig: { ...current.config, Enabled: false } }));
    }
    // DeleteDistribution refuses a distribution that is not both disabled and Deployed.
    await (await sdk()).waitUntilDistributionDeployed(await this.waiter(), { Id: id }).catch((err: Error) => {
      throw new AgentError("failed", `distribution ${id} did not finish disabling within ${this.options.maxWaitSeconds} s: ${err.message}`);
    });
    current = await this.getConfig(id);
    if (current) {
      try {
        await (await this.client).send(new (await sdk()).DeleteDistributionCommand({ Id: id, IfMatch: current.etag }));
      } catch (err) {
        if (!isAwsError(err, "NoSuchDistribution")) throw err;
      }
    }
    for (const policyId of new Set(policies)) await this.deleteOwnPolicy(policyId);
  }

  private async ensureCachePolicy(name: string, ttl: number): Promise<string> {
    try {
      const res = await (await this.client).send(new (await sdk()).CreateCachePolicyCommand({ CachePolicyConfig: this.cachePolicyConfig(name, ttl) }));
      if (!res.CachePolicy?.Id) throw new AgentError("failed", "CreateCachePolicy returned no id");
      return res.CachePolicy.Id;
    } catch (err) {
      // Names are unique per account and derived from the key: a replay finds the policy its first attempt made.
      if (!isAwsError(err, "CachePolicyAlreadyExists")) throw err;
    }
    let marker: string | undefined;
    do {
      const page = await (await this.client).send(new (await sdk()).ListCachePoliciesCommand({ Type: "custom", ...(marker ? { Marker: marker } : {}) }));
      const hit = page.CachePolicyList?.Items?.find((i) => i.CachePolicy?.CachePolicyConfig?.Name === name);
      if (hit?.CachePolicy?.Id) return hit.CachePolicy.Id;
      marker = page.CachePolicyList?.NextMarker;
    } while (marker);
    throw new AgentError("failed", `cache policy ${name} exists (CachePolicyAlreadyExists) but is not listed`);
  }

  private async findByKey(key: string): Promise<Distribution> {
    const comment = `${COMMENT_PREFIX}${keyDigest(key)}`;
    let marker: string | undefined;
    do {
      const page = await (await this.client).send(new (await sdk()).ListDistributionsCommand(marker ? { Marker: marker } : {}));
      for (const d of page.DistributionList?.Items ?? []) {
        if (d.Comment !== comment || !d.Id) continue;
        const cfg = await this.getConfig(d.Id);
        if (cfg?.config.CallerReference === key) {
          return { Id: d.Id, ARN: d.ARN, Status: d.Status, DomainName: d.DomainName, LastModifiedTime: d.LastModifiedTime, InProgressInvalidationBatches: 0, DistributionConfig: cfg.config };
        }
      }
      marker = page.DistributionList?.IsTruncated ? page.DistributionList.NextMarker : undefined;
    } while (marker);
    throw new AgentError("conflict", `CreateDistribution says a distribution with CallerReference ${key} exists, but none carries comment "${comment}"`);
  }

  private async getConfig(id: string): Promise<{ config: DistributionConfig; etag: string } | null> {
    try {
      const res = await (await this.client).send(new (await sdk()).GetDistributionConfigCommand({ Id: id }));
      if (!res.DistributionConfig || !res.ETag) throw new AgentError("failed", `GetDistributionConfig ${id} returned no config or ETag`);
      return { config: res.DistributionConfig, etag: res.ETag };
    } catch (err) {
      if (isAwsError(err, "NoSuchDistribution")) return null;
      throw err;
    }
  }

  private async deleteOwnPolicy(id: string): Promise<void> {
    try {
      const res = await (await this.client).send(new (await sdk()).GetCachePolicyCommand({ Id: id }));
      if (!res.CachePolicy?.CachePolicyConfig?.Name?.startsWith(POLICY_PREFIX)) return;
      await (await this.client).send(new (await sdk()).DeleteCachePolicyCommand({ Id: id, IfMatch: res.ETag }));
    } catch (err) {
      // Still attached elsewhere, or already gone: leave it; it costs nothing.
      if (!isAwsError(err, "NoSuchCachePolicy", "CachePolicyInUse")) throw err;
    }
  }

  private async waiter() {
    return waiterConfig(await this.client, this.options.pollSeconds, this.options.maxWaitSeconds, 600);
  }
}
