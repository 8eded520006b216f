import type {
  CloudFrontClient,
  ContinuousDeploymentPolicyConfig,
  Distribution,
  DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { z } from "zod";
import { AgentError, parseOptions } from "../../core/errors.js";
import { isAwsError, tagValue, waiterConfig } from "../aws/util.js";
import type { TrafficRouter } from "../types.js";
import { lazyModule } from "../../core/lazy.js";

/** The SDK, imported when this adapter first calls AWS (see core/lazy.ts). */
const sdk = lazyModule(() => import("@aws-sdk/client-cloudfront"));

/** CloudFront caps a continuous-deployment SingleWeight at 15% of requests. */
export const MAX_STAGING_PERCENT = 15;

export const CloudFrontTrafficOptions = z
  .object({
    region: z.string().min(1).default("us-east-1"),
    /** The distribution users reach Honua through today. */
    primaryDistributionId: z.string().regex(/^E[A-Z0-9]+$/, "a CloudFront distribution id (E...)"),
    /** The cache policy the staging copy serves with (the "cache" feature); the primary keeps its own until promotion. */
    cachePolicyId: z.string().min(1),
    /** Keep a viewer on the same side for a while, so a session does not flip between cached and uncached. */
    sessionStickiness: z.object({ idleTtlSeconds: z.number().int().min(300).max(3600), maximumTtlSeconds: z.number().int().min(300).max(3600) }).strict().optional(),
    /**
     * A stage above 15% cannot be weighted in CloudFront. `promote` (default): copy the staging config onto the
     * primary (UpdateDistributionWithStagingConfig), so the stage runs at 100%. `refuse`: fail the stage instead.
     */
    overCap: z.enum(["promote", "refuse"]).default("promote"),
    /** Polling while a staging copy deploys (CloudFront refuses to weight or promote onto one still in progress). */
    pollSeconds: z.number().positive().default(30),
    maxWaitSeconds: z.number().positive().default(3600),
  })
  .strict();
export type CloudFrontTrafficOptions = z.input<typeof CloudFrontTrafficOptions>;

const STAGING_TAG = "honua-agent:staging-distribution";
const BASELINE_TAG = "honua-agent:baseline-cache-policy";
/** The CallerReference the staging copy was created with: proof, at deletion, that it is the copy this adapter made. */
const STAGING_REF_TAG = "honua-agent:staging-caller-reference";
/** Recorded when the primary's default behaviour has no cache policy (legacy ForwardedValues/TTLs). */
const LEGACY = "legacy";

/**
 * What `leftovers()` reports and `deprovision()` accepts: the resource type travels in the id, because a
 * staging distribution and a policy are deleted differently and the id is all the cleanup step hands back.
 */
const LeftoverId = z.string().regex(/^(distribution|continuous-deployment-policy)\/[A-Za-z0-9-]+$/, "distribution/<id> or continuous-deployment-policy/<id>");
const DIST_PREFIX = "distribution/";
const POLICY_PREFIX = "continuous-deployment-policy/";

interface Current {
  dist: Distribution;
  config: DistributionConfig;
  etag: string;
}

/**
 * Shifts a share of a CloudFront distribution's requests onto a staging copy that caches (continuous
 * deployment). Up to 15% by SingleWeight; beyond, the staging config is promoted onto the primary, which
 * is all-or-nothing: `share()` then reads 100.
 */
export class CloudFrontTraffic implements TrafficRouter {
  readonly options: z.output<typeof CloudFrontTrafficOptions>;
  private readonly client: CloudFrontClient | Promise<CloudFrontClient>;

  constructor(options: CloudFrontTrafficOptions, client?: CloudFrontClient) {
    this.options = parseOptions(CloudFrontTrafficOptions, options, "cloudfront traffic options");
    this.client = client ?? sdk().then((m) => new m.CloudFrontClient({ region: this.options.region }));
  }

  features(): readonly string[] {
    return ["cache"];
  }

  async share(feature: string): Promise<number> {
    this.assertFeature(feature);
    const primary = await this.get(this.options.primaryDistributionId);
    if (primary.config.DefaultCacheBehavior?.CachePolicyId === this.options.cachePolicyId) return 100;
    const policyId = primary.config.ContinuousDeploymentPolicyId;
    if (!policyId) return 0;
    const { config } = await this.getPolicy(policyId);
    return config.Enabled && config.TrafficConfig?.Type === "SingleWeight" ? Math.round((config.TrafficConfig.SingleWeightConfig?.Weight ?? 0) * 100) : 0;
  }

  async setShare(feature: string, percent: number, idempotencyKey: string): Promise<void> {
    this.assertFeature(feature);
    if (!Number.isFinite(percent) || percent < 0 || percent > 100) throw new AgentError("bad-input", `traffic share must be 0..100, got ${percent}`);
    if (percent === 0) return this.rollback();
    if (percent > MAX_STAGING_PERCENT) {
      if (this.options.overCap === "refuse") {
        throw new AgentError("bad-input", `CloudFront weights at most ${MAX_STAGING_PERCENT}% onto a staging distribution; ${percent}% needs overCap: promote (which moves all traffic)`);
      }
      return this.promote(idempotencyKey);
    }
    const staging = await this.ensureStaging(idempotencyKey);
    await this.ensurePolicy(staging, percent / 100);
  }

  /**
   * What outlives a rollback: the staging copy recorded on the primary and the continuous-deployment policy
   * that routes to it. A rollback only disables the policy (deleting takes minutes and cannot be undone), so
   * both stay, and stay billed, until `deprovision` runs behind a `delete` gate. The policy comes first: the
   * staging copy cannot be deleted while a policy still names it.
   */
  async leftovers(): Promise<{ id: string; description: string }[]> {
    const primary = await this.get(this.options.primaryDistributionId);
    const stagingId = (await this.tags(primary.dist)).get(STAGING_TAG);
    if (!stagingId) return [];
    const staging = await this.find(stagingId);
    // Gone already (deleted by hand): its policy can no longer be told apart from anyone else's, so none is offered.
    if (!staging) return [];
    const out: { id: string; description: string }[] = [];
    const policyId = await this.policyFor(primary, staging.dist.DomainName ?? "");
    if (policyId) {
      out.push({ id: `${POLICY_PREFIX}${policyId}`, description: `CloudFront continuous-deployment policy ${policyId} (weights ${this.options.primaryDistributionId} onto staging ${stagingId})` });
    }
    out.push({ id: `${DIST_PREFIX}${stagingId}`, description: `CloudFront staging distribution ${stagingId} (copy of ${this.options.primaryDistributionId}, ${staging.dist.DomainName ?? "no domain"})` });
    return out;
  }

  /**
   * Deletes one leftover. Idempotent: what is already gone counts as deleted, so a replayed cleanup succeeds.
   * Refuses anything this adapter cannot prove it created, and never deletes or disables the primary: the only
   * change to the primary is detaching the policy and dropping the staging tags. The key is unused: every call
   * converges on "gone", and the ETags guard against acting on a state read before someone else changed it.
   */
  async deprovision(id: string, _idempotencyKey: string): Promise<void> {
    const parsed = LeftoverId.safeParse(id);
    if (!parsed.success) throw new AgentError("bad-input", `not a CloudFront traffic leftover: "${id}" (${z.prettifyError(parsed.error)})`);
    if (id.startsWith(POLICY_PREFIX)) return this.deletePolicy(id.slice(POLICY_PREFIX.length));
    return this.deleteStaging(id.slice(DIST_PREFIX.length));
  }

  /** Detach (UpdateDistribution on the primary without the policy id), then DeleteContinuousDeploymentPolicy. */
  private async deletePolicy(policyId: string): Promise<void> {
    const policy = await this.findPolicy(policyId);
    if (!policy) return;
    const primary = await this.get(this.options.primaryDistributionId);
    const stagingId = (await this.tags(primary.dist)).get(STAGING_TAG);
    const staging = stagingId ? await this.find(stagingId) : null;
    const names = policy.config.StagingDistributionDnsNames?.Items ?? [];
    // Policies carry no tag or caller reference: ours is the one routing to the staging copy recorded on the primary.
    if (!staging?.dist.DomainName || !names.includes(staging.dist.DomainName)) {
      throw new AgentError("forbidden", `continuous-deployment policy ${policyId} does not route to the staging distribution honua-agent recorded on ${this.options.primaryDistributionId} (${stagingId ?? "none recorded"}); refusing to delete it`);
    }
    if (policy.config.Enabled) {
      throw new AgentError("failed", `continuous-deployment policy ${policyId} is still enabled and weighting traffic; roll the traffic share back to 0 before deleting it`);
    }
    if (primary.config.ContinuousDeploymentPolicyId === policyId) {
      // CloudFront refuses to delete a policy a distribution still uses; the primary's full config goes back without it.
      const { ContinuousDeploymentPolicyId: _detached, ...config } = primary.config;
      await (await this.client).send(new (await sdk()).UpdateDistributionCommand({ Id: this.options.primaryDistributionId, IfMatch: primary.etag, DistributionConfig: config }));
    }
    // Read again for the ETag to match: the one read before the detach may no longer be current.
    const fresh = await this.findPolicy(policyId);
    if (!fresh) return;
    try {
      await (await this.client).send(new (await sdk()).DeleteContinuousDeploymentPolicyCommand({ Id: policyId, IfMatch: fresh.etag }));
    } catch (err) {
      if (!isAwsError(err, "NoSuchContinuousDeploymentPolicy")) throw err;
    }
  }

  /** Policy first, then disable, wait until Deployed, DeleteDistribution with a fresh ETag, and untag the primary. */
  private async deleteStaging(stagingId: string): Promise<void> {
    if (stagingId === this.options.primaryDistributionId) {
      throw new AgentError("forbidden", `${stagingId} is the primary distribution; honua-agent never deletes it`);
    }
    const primary = await this.get(this.options.primaryDistributionId);
    const tags = await this.tags(primary.dist);
    const recorded = tags.get(STAGING_TAG) === stagingId;
    let staging = await this.find(stagingId);
    if (!staging) {
      // Deleted, perhaps by a cleanup that stopped before untagging: finish that.
      if (recorded) await this.untagStaging(primary);
      return;
    }
    if (!recorded) {
      throw new AgentError("forbidden", `distribution ${stagingId} is not the staging copy honua-agent recorded on ${this.options.primaryDistributionId} (tag ${STAGING_TAG}: ${tags.get(STAGING_TAG) ?? "absent"}); refusing to delete it`);
    }
    const ref = tags.get(STAGING_REF_TAG);
    // Older staging copies were tagged before the caller reference was recorded; the Staging flag still has to hold.
    if (staging.config.Staging !== true || (ref !== undefined && ref !== tagValue(staging.config.CallerReference ?? ""))) {
      throw new AgentError("forbidden", `distribution ${stagingId} is not a staging copy made by honua-agent (Staging ${String(staging.config.Staging)}, CallerReference "${staging.config.CallerReference ?? ""}"); refusing to delete it`);
    }
    const policyId = await this.policyFor(primary, staging.dist.DomainName ?? "");
    if (policyId) {
      await this.deletePolicy(policyId);
      staging = (await this.find(stagingId)) ?? staging;
    }
    if (staging.config.Enabled) {
      await (await this.client).send(new (await sdk()).UpdateDistributionCommand({ Id: stagingId, IfMatch: staging.etag, DistributionConfig: { ...staging.config, Enabled: false } }));
    }
    // DeleteDistribution refuses a distribution that is not both disabled and Deployed.
    await this.waitDeployed(stagingId, " after disabling");
    const fresh = await this.find(stagingId);
    if (fresh) {
      try {
        await (await this.client).send(new (await sdk()).DeleteDistributionCommand({ Id: stagingId, IfMatch: fresh.etag }));
      } catch (err) {
        if (!isAwsError(err, "NoSuchDistribution")) throw err;
      }
    }
    // Last: while the tag is there, a cleanup that stopped half way can still prove the copy was ours.
    await this.untagStaging(primary);
  }

  /** The baseline tag stays: it is what a rollback of a later promotion restores from, and ensureStaging rewrites it. */
  private async untagStaging(primary: Current): Promise<void> {
    await (await this.client).send(new (await sdk()).UntagResourceCommand({ Resource: primary.dist.ARN, TagKeys: { Items: [STAGING_TAG, STAGING_REF_TAG] } }));
  }

  /** The policy for this staging copy: the one attached to the primary if it routes there, else one a crashed attempt left unattached. */
  private async policyFor(primary: Current, stagingDomain: string): Promise<string | undefined> {
    if (!stagingDomain) return undefined;
    const attached = primary.config.ContinuousDeploymentPolicyId;
    if (attached) {
      const policy = await this.findPolicy(attached);
      if (policy?.config.StagingDistributionDnsNames?.Items?.includes(stagingDomain)) return attached;
    }
    return this.findPolicyFor(stagingDomain);
  }

  /** Weight 0 and disabled, the primary's own cache policy back if it was promoted; then read back to prove it. */
  private async rollback(): Promise<void> {
    let primary = await this.get(this.options.primaryDistributionId);
    if (primary.config.ContinuousDeploymentPolicyId) await this.disablePolicy(primary.config.ContinuousDeploymentPolicyId);
    if (primary.config.DefaultCacheBehavior?.CachePolicyId === this.options.cachePolicyId) {
      const baseline = (await this.tags(primary.dist)).get(BASELINE_TAG);
      if (!baseline || baseline === LEGACY) {
        throw new AgentError("failed", `cannot restore ${this.options.primaryDistributionId}: its previous cache policy was not recorded (${baseline ?? "no tag"}); set it back by hand`);
      }
      await this.updateDefaultPolicy(primary, baseline);
      primary = await this.get(this.options.primaryDistributionId);
    }
    const now = await this.share("cache");
    if (now !== 0) throw new AgentError("failed", `rollback of ${this.options.primaryDistributionId} did not take: the cache share still reads ${now}%`);
  }

  /** Beyond the 15% cap there is no weighted step: the staging config becomes the primary's (100%). */
  private async promote(key: string): Promise<void> {
    const staging = await this.ensureStaging(key);
    const primary = await this.get(this.options.primaryDistributionId);
    if (primary.config.DefaultCacheBehavior?.CachePolicyId === this.options.cachePolicyId) {
      // Already promoted; a replay after a crash before the policy was disabled finishes that too.
      const policyId = primary.config.ContinuousDeploymentPolicyId;
      if (policyId && (await this.getPolicy(policyId)).config.Enabled) await this.disablePolicy(policyId);
      return;
    }
    const baseline = (await this.tags(primary.dist)).get(BASELINE_TAG);
    if (!baseline || baseline === LEGACY) {
      throw new AgentError("failed", `will not promote onto ${this.options.primaryDistributionId}: its default behaviour uses legacy cache settings, which a rollback could not restore; move it to a cache policy first`);
    }
    const stagingNow = await this.get(staging.Id ?? "");
    await (await this.client).send(new (await sdk()).UpdateDistributionWithStagingConfigCommand({
      Id: this.options.primaryDistributionId,
      StagingDistributionId: staging.Id,
      // Both ETags, primary first: CloudFront refuses the copy if either changed since they were read.
      IfMatch: `${primary.etag}, ${stagingNow.etag}`,
    }));
    // The primary now serves the cached config itself; stop splitting requests off to the staging copy.
    const after = await this.get(this.options.primaryDistributionId);
    if (after.config.ContinuousDeploymentPolicyId) await this.disablePolicy(after.config.ContinuousDeploymentPolicyId);
  }

  /** The staging copy of the primary, serving with the cache policy; created once (CopyDistribution on the key). */
  private async ensureStaging(key: string): Promise<Distribution> {
    const primary = await this.get(this.options.primaryDistributionId);
    const tags = await this.tags(primary.dist);
    let staging: Current | null = null;
    const recorded = tags.get(STAGING_TAG);
    if (recorded) staging = await this.find(recorded);
    if (!staging) {
      const copy = await (await this.client).send(new (await sdk()).CopyDistributionCommand({
        PrimaryDistributionId: this.options.primaryDistributionId,
        Staging: true,
        CallerReference: key,
        IfMatch: primary.etag,
        Enabled: true,
      }));
      if (!copy.Distribution?.Id) throw new AgentError("failed", "CopyDistribution returned no distribution");
      // Where the staging copy is and what the primary served with before: what promote and rollback need.
      await (await this.client).send(new (await sdk()).TagResourceCommand({
        Resource: primary.dist.ARN,
        Tags: { Items: [
          { Key: STAGING_TAG, Value: copy.Distribution.Id },
          { Key: BASELINE_TAG, Value: primary.config.DefaultCacheBehavior?.CachePolicyId ?? LEGACY },
          { Key: STAGING_REF_TAG, Value: tagValue(key) },
        ] },
      }));
      staging = await this.get(copy.Distribution.Id);
    }
    if (staging.config.DefaultCacheBehavior?.CachePolicyId !== this.options.cachePolicyId) await this.updateDefaultPolicy(staging, this.options.cachePolicyId);
    await this.waitDeployed(staging.dist.Id ?? "", "");
    return staging.dist;
  }

  private async waitDeployed(id: string, after: string): Promise<void> {
    await (await sdk()).waitUntilDistributionDeployed(waiterConfig(await this.client, this.options.pollSeconds, this.options.maxWaitSeconds, 600), { Id: id }).catch((err: Error) => {
      throw new AgentError("failed", `staging distribution ${id} was not Deployed${after} within ${this.options.maxWaitSeconds} s: ${err.message}`);
    });
  }

  private policyConfig(stagingDomain: string, weight: number, enabled: boolean): ContinuousDeploymentPolicyConfig {
    const s = this.options.sessionStickiness;
    return {
      StagingDistributionDnsNames: { Quantity: 1, Items: [stagingDomain] },
      Enabled: enabled,
      TrafficConfig: {
        Type: "SingleWeight",
        SingleWeightConfig: { Weight: weight, ...(s ? { SessionStickinessConfig: { IdleTTL: s.idleTtlSeconds, MaximumTTL: s.maximumTtlSeconds } } : {}) },
      },
    };
  }

  private async ensurePolicy(staging: Distribution, weight: number): Promise<void> {
    const domain = staging.DomainName ?? "";
    const primary = await this.get(this.options.primaryDistributionId);
    const attached = primary.config.ContinuousDeploymentPolicyId;
    if (attached) {
      const { etag } = await this.getPolicy(attached);
      await (await this.client).send(new (await sdk()).UpdateContinuousDeploymentPolicyCommand({ Id: attached, IfMatch: etag, ContinuousDeploymentPolicyConfig: this.policyConfig(domain, weight, true) }));
      return;
    }
    // Policies carry no caller reference: look for one a crashed attempt created for this staging copy first.
    const found = await this.findPolicyFor(domain);
    let id = found;
    if (found) {
      const { etag } = await this.getPolicy(found);
      await (await this.client).send(new (await sdk()).UpdateContinuousDeploymentPolicyCommand({ Id: found, IfMatch: etag, ContinuousDeploymentPolicyConfig: this.policyConfig(domain, weight, true) }));
    } else {
      const created = await (await this.client).send(new (await sdk()).CreateContinuousDeploymentPolicyCommand({ ContinuousDeploymentPolicyConfig: this.policyConfig(domain, weight, true) }));
      id = created.ContinuousDeploymentPolicy?.Id;
    }
    if (!id) throw new AgentError("failed", "CreateContinuousDeploymentPolicy returned no id");
    await (await this.client).send(new (await sdk()).UpdateDistributionCommand({ Id: this.options.primaryDistributionId, IfMatch: primary.etag, DistributionConfig: { ...primary.config, ContinuousDeploymentPolicyId: id } }));
  }

  private async disablePolicy(id: string): Promise<void> {
    const { config, etag } = await this.getPolicy(id);
    const domain = config.StagingDistributionDnsNames?.Items?.[0] ?? "";
    await (await this.client).send(new (await sdk()).UpdateContinuousDeploymentPolicyCommand({ Id: id, IfMatch: etag, ContinuousDeploymentPolicyConfig: this.policyConfig(domain, 0, false) }));
    const check = await this.getPolicy(id);
    const w = check.config.TrafficConfig?.SingleWeightConfig?.Weight ?? 0;
    if (check.config.Enabled || w !== 0) throw new AgentError("failed", `continuous-deployment policy ${id} still sends ${w * 100}% to staging (enabled ${check.config.Enabled})`);
  }

  private async findPolicyFor(domain: string): Promise<string | undefined> {
    let marker: string | undefined;
    do {
      const page = await (await this.client).send(new (await sdk()).ListContinuousDeploymentPoliciesCommand(marker ? { Marker: marker } : {}));
      const hit = page.ContinuousDeploymentPolicyList?.Items?.find((i) => i.ContinuousDeploymentPolicy?.ContinuousDeploymentPolicyConfig?.StagingDistributionDnsNames?.Items?.includes(domain));
      if (hit?.ContinuousDeploymentPolicy?.Id) return hit.ContinuousDeploymentPolicy.Id;
      marker = page.ContinuousDeploymentPolicyList?.NextMarker;
    } while (marker);
    return undefined;
  }

  private async updateDefaultPolicy(d: Current, cachePolicyId: string): Promise<void> {
    // A cache policy and the legacy per-behaviour TTL/forwarding settings are mutually exclusive.
    if (!d.config.DefaultCacheBehavior) throw new AgentError("failed", `distribution ${d.dist.Id} has no default cache behaviour`);
    const { ForwardedValues: _fv, MinTTL: _min, DefaultTTL: _def, MaxTTL: _max, ...behavior } = d.config.DefaultCacheBehavior;
    await (await this.client).send(new (await sdk()).UpdateDistributionCommand({
      Id: d.dist.Id,
      IfMatch: d.etag,
      DistributionConfig: { ...d.config, DefaultCacheBehavior: { ...behavior, CachePolicyId: cachePolicyId } },
    }));
  }

  private async get(id: string): Promise<Current> {
    const res = await (await this.client).send(new (await sdk()).GetDistributionCommand({ Id: id }));
    const config = res.Distribution?.DistributionConfig;
    if (!res.Distribution || !config || !res.ETag) throw new AgentError("failed", `GetDistribution ${id} returned no config or ETag`);
    return { dist: res.Distribution, config, etag: res.ETag };
  }

  /** Like get(), but null for a distribution that does not exist (deleting what is gone must succeed). */
  private async find(id: string): Promise<Current | null> {
    return this.get(id).catch((err: unknown) => (isAwsError(err, "NoSuchDistribution") ? null : Promise.reject(err)));
  }

  private async findPolicy(id: string): Promise<{ config: ContinuousDeploymentPolicyConfig; etag: string } | null> {
    return this.getPolicy(id).catch((err: unknown) => (isAwsError(err, "NoSuchContinuousDeploymentPolicy") ? null : Promise.reject(err)));
  }

  private async getPolicy(id: string): Promise<{ config: ContinuousDeploymentPolicyConfig; etag: string }> {
    const res = await (await this.client).send(new (await sdk()).GetContinuousDeploymentPolicyCommand({ Id: id }));
    const config = res.ContinuousDeploymentPolicy?.ContinuousDeploymentPolicyConfig;
    if (!config || !res.ETag) throw new AgentError("failed", `GetContinuousDeploymentPolicy ${id} returned no config or ETag`);
    return { config, etag: res.ETag };
  }

  private async tags(d: Distribution): Promise<Map<string, string>> {
    const res = await (await this.client).send(new (await sdk()).ListTagsForResourceCommand({ Resource: d.ARN }));
    return new Map((res.Tags?.Items ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
  }

  private assertFeature(feature: string): void {
    if (feature !== "cache") throw new AgentError("bad-input", `CloudFrontTraffic routes the "cache" feature only, not "${feature}"`);
  }
}
