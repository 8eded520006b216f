import type {
  ElastiCacheClient,
  CreateReplicationGroupCommandInput,
  ReplicationGroup,
} from "@aws-sdk/client-elasticache";
import { z } from "zod";
import { AgentError, parseOptions } from "../../core/errors.js";
import { isAwsError, KEY_TAG, keyDigest, MANAGED_TAG, tagValue, waiterConfig } from "../aws/util.js";
import type { CacheInfra, CacheResource, CacheSpec } from "../types.js";
import type { Clock } from "../../core/clock.js";
import { systemClock } from "../../core/clock.js";
import { lazyModule } from "../../core/lazy.js";

/** The SDK, imported when this adapter first calls AWS (see core/lazy.ts). */
const sdk = lazyModule(() => import("@aws-sdk/client-elasticache"));

const EVICTION_POLICIES = ["volatile-lru", "allkeys-lru", "volatile-lfu", "allkeys-lfu", "volatile-random", "allkeys-random", "volatile-ttl", "noeviction"] as const;

export const ElastiCacheOptions = z
  .object({
    region: z.string().min(1),
    /** Start of every replication group id; the rest is a digest of the idempotency key. */
    namePrefix: z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, "lowercase letters, digits and single hyphens, starting with a letter").max(20).default("honua"),
    engine: z.enum(["redis", "valkey"]).default("redis"),
    engineVersion: z.string().optional(),
    /** Subnet group of the VPC Honua runs in. */
    cacheSubnetGroupName: z.string().min(1).optional(),
    securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]+$/, "a security group id (sg-...)")).default([]),
    /**
     * RBAC user groups allowed to connect. Access is by user group, never by an AUTH token, so no password
     * value ever passes through the agent.
     */
    userGroupIds: z.array(z.string().min(1)).default([]),
    /**
     * Where Honua finds the password, written into the endpoint as `password=<reference>`: a reference such
     * as `aws:secretsmanager:<arn>`, never the value.
     */
    passwordReference: z.string().regex(/^(aws:secretsmanager:arn:|aws:ssm:|env:|ref:)/, "a reference (aws:secretsmanager:<arn>, aws:ssm:<name>, env:<VAR>, ref:<...>), never a password").optional(),
    /** Replicas per shard: more than 0 turns on automatic failover and Multi-AZ. */
    replicas: z.number().int().min(0).max(5).default(1),
    /** Use this parameter group as is; otherwise one is created per cache with the spec's eviction policy. */
    cacheParameterGroupName: z.string().min(1).optional(),
    parameterGroupFamily: z.string().min(1).default("redis7"),
    /** Seconds between DescribeReplicationGroups polls while waiting (the SDK waiter backs off from here). */
    pollSeconds: z.number().positive().default(15),
    maxWaitSeconds: z.number().positive().default(3600),
    /** Keep a final snapshot when deleting. */
    finalSnapshotOnDelete: z.boolean().default(false),
  })
  .strict();
export type ElastiCacheOptions = z.input<typeof ElastiCacheOptions>;

/** ReplicationGroupId rules: 1-40 chars, lowercase letter first, letters/digits/hyphens, no `--`, no trailing `-`. */
export function replicationGroupId(prefix: string, idempotencyKey: string): string {
  return `${prefix}-${keyDigest(idempotencyKey, 16)}`;
}

/** Amazon ElastiCache (Redis OSS / Valkey) as Honua's `ConnectionStrings__Redis`. */
export class ElastiCacheInfra implements CacheInfra {
  readonly engines = ["redis"] as const;
  readonly options: z.output<typeof ElastiCacheOptions>;
  private readonly client: ElastiCacheClient | Promise<ElastiCacheClient>;

  constructor(options: ElastiCacheOptions, client?: ElastiCacheClient, private readonly clock: Clock = systemClock) {
    this.options = parseOptions(ElastiCacheOptions, options, "elasticache options");
    this.client = client ?? sdk().then((m) => new m.ElastiCacheClient({ region: this.options.region }));
  }

  /** The group a provision under this key created, if it exists and is still ours (not being deleted). */
  async provisioned(idempotencyKey: string): Promise<{ id: string; description: string } | null> {
    const id = replicationGroupId(this.options.namePrefix, idempotencyKey);
    const group = await this.describe(id);
    if (!group || group.Status === "deleting" || group.Status === "deleted") return null;
    await this.assertOwned(group, idempotencyKey);
    return { id, description: `ElastiCache replication group ${id} (${group.Status ?? "unknown status"})` };
  }

  async provision(spec: CacheSpec, idempotencyKey: string): Promise<CacheResource> {
    if (spec.engine !== "redis") throw new AgentError("bad-input", `ElastiCache provides Redis, not ${spec.engine}`);
    if (!spec.nodeType.startsWith("cache.")) throw new AgentError("bad-input", `${spec.nodeType} is not an ElastiCache node type (cache.*)`);
    if (!this.options.cacheParameterGroupName && !(EVICTION_POLICIES as readonly string[]).includes(spec.evictionPolicy)) {
      throw new AgentError("bad-input", `eviction policy ${spec.evictionPolicy} is not one of ${EVICTION_POLICIES.join(", ")}`);
    }
    const id = replicationGroupId(this.options.namePrefix, idempotencyKey);
    // Check before acting: a replayed step (crash, resume) finds the group its first attempt created.
    const existing = await this.describe(id);
    if (existing) {
      if (existing.Status === "deleting" || existing.Status === "deleted") {
        throw new AgentError("conflict", `replication group ${id} for this step is being deleted (${existing.Status}); it cannot be adopted`);
      }
      await this.assertOwned(existing, idempotencyKey);
    } else {
      const parameterGroup = this.options.cacheParameterGroupName ?? (await this.ensureParameterGroup(id, spec.evictionPolicy, idempotencyKey));
      try {
        await (await this.client).send(new (await sdk()).CreateReplicationGroupCommand(this.createInput(id, spec, parameterGroup, idempotencyKey)));
      } catch (err) {
        // A concurrent replay won the race: the group is ours by name (the name is the key's digest).
        if (!isAwsError(err, "ReplicationGroupAlreadyExistsFault")) throw err;
      }
    }
    const group = await this.waitAvailable(id);
    return {
      id,
      engine: "redis",
      nodeType: group.CacheNodeType ?? spec.nodeType,
      endpoint: this.endpoint(group),
      createdAt: (group.ReplicationGroupCreateTime ?? this.clock.now()).toISOString(),
    };
  }

  /** Deletes the replication group (and the parameter group made for it). Only the delete gate's cleanup calls this. */
  async deprovision(id: string, _idempotencyKey: string): Promise<void> {
    const group = await this.describe(id);
    if (group) {
      await this.assertOwned(group, null);
      if (group.Status !== "deleting") {
        try {
          await (await this.client).send(new (await sdk()).DeleteReplicationGroupCommand({
            ReplicationGroupId: id,
            ...(this.options.finalSnapshotOnDelete ? { FinalSnapshotIdentifier: `${id}-final` } : {}),
          }));
        } catch (err) {
          if (!isAwsError(err, "ReplicationGroupNotFoundFault")) throw err;
        }
      }
      await (await sdk()).waitUntilReplicationGroupDeleted(await this.waiter(), { ReplicationGroupId: id }).catch((err: Error) => {
        throw new AgentError("failed", `replication group ${id} was not deleted within ${this.options.maxWaitSeconds} s: ${err.message}`);
      });
    }
    if (!this.options.cacheParameterGroupName) {
      try {
        await (await this.client).send(new (await sdk()).DeleteCacheParameterGroupCommand({ CacheParameterGroupName: id }));
      } catch (err) {
        if (!isAwsError(err, "CacheParameterGroupNotFoundFault")) throw err;
      }
    }
  }

  private createInput(id: string, spec: CacheSpec, parameterGroup: string, key: string): CreateReplicationGroupCommandInput {
    const o = this.options;
    return {
      ReplicationGroupId: id,
      ReplicationGroupDescription: `Honua cache (honua-agent ${keyDigest(key, 8)})`,
      Engine: o.engine,
      ...(o.engineVersion ? { EngineVersion: o.engineVersion } : {}),
      CacheNodeType: spec.nodeType,
      NumCacheClusters: 1 + o.replicas,
      AutomaticFailoverEnabled: o.replicas > 0,
      MultiAZEnabled: o.replicas > 0,
      CacheParameterGroupName: parameterGroup,
      ...(o.cacheSubnetGroupName ? { CacheSubnetGroupName: o.cacheSubnetGroupName } : {}),
      ...(o.securityGroupIds.length ? { SecurityGroupIds: o.securityGroupIds } : {}),
      ...(o.userGroupIds.length ? { UserGroupIds: o.userGroupIds } : {}),
      // Honua connects with ssl=true; encryption at rest costs nothing extra.
      TransitEncryptionEnabled: true,
      AtRestEncryptionEnabled: true,
      Tags: [
        { Key: MANAGED_TAG, Value: "true" },
        { Key: KEY_TAG, Value: tagValue(key) },
      ],
    };
  }

  private async ensureParameterGroup(name: string, evictionPolicy: string, key: string): Promise<string> {
    try {
      await (await this.client).send(new (await sdk()).CreateCacheParameterGroupCommand({
        CacheParameterGroupName: name,
        CacheParameterGroupFamily: this.options.parameterGroupFamily,
        Description: `Honua cache: maxmemory-policy ${evictionPolicy}`,
        Tags: [{ Key: MANAGED_TAG, Value: "true" }, { Key: KEY_TAG, Value: tagValue(key) }],
      }));
    } catch (err) {
      if (!isAwsError(err, "CacheParameterGroupAlreadyExistsFault")) throw err;
    }
    // Setting the same value twice is harmless, so a replay just repeats it.
    await (await this.client).send(new (await sdk()).ModifyCacheParameterGroupCommand({
      CacheParameterGroupName: name,
      ParameterNameValues: [{ ParameterName: "maxmemory-policy", ParameterValue: evictionPolicy }],
    }));
    return name;
  }

  private async describe(id: string): Promise<ReplicationGroup | null> {
    try {
      const res = await (await this.client).send(new (await sdk()).DescribeReplicationGroupsCommand({ ReplicationGroupId: id }));
      return res.ReplicationGroups?.[0] ?? null;
    } catch (err) {
      if (isAwsError(err, "ReplicationGroupNotFoundFault")) return null;
      throw err;
    }
  }

  /** Adopts or deletes only what honua-agent created (and, for adoption, for this very key). */
  private async assertOwned(group: ReplicationGroup, key: string | null): Promise<void> {
    if (!group.ARN) throw new AgentError("failed", `replication group ${group.ReplicationGroupId} has no ARN; cannot check ownership`);
    const tags = (await (await this.client).send(new (await sdk()).ListTagsForResourceCommand({ ResourceName: group.ARN }))).TagList ?? [];
    const tag = (k: string) => tags.find((t) => t.Key === k)?.Value;
    if (tag(MANAGED_TAG) !== "true") {
      throw new AgentError("forbidden", `replication group ${group.ReplicationGroupId} was not created by honua-agent (no ${MANAGED_TAG} tag); refusing to ${key === null ? "delete" : "adopt"} it`);
    }
    if (key !== null && tag(KEY_TAG) !== tagValue(key)) {
      throw new AgentError("conflict", `replication group ${group.ReplicationGroupId} belongs to another change (${KEY_TAG}=${tag(KEY_TAG)})`);
    }
  }

  private async waiter() {
    return waiterConfig(await this.client, this.options.pollSeconds, this.options.maxWaitSeconds, 120);
  }

  private async waitAvailable(id: string): Promise<ReplicationGroup> {
    try {
      await (await sdk()).waitUntilReplicationGroupAvailable(await this.waiter(), { ReplicationGroupId: id });
    } catch (err) {
      const now = await this.describe(id).catch(() => null);
      throw new AgentError("failed", `replication group ${id} did not become available (status ${now?.Status ?? "unknown"}): ${(err as Error).message}`);
    }
    const group = await this.describe(id);
    if (!group) throw new AgentError("failed", `replication group ${id} vanished after becoming available`);
    return group;
  }

  /** `{host}:{port},ssl=true`, plus the password's reference when one is configured. */
  private endpoint(group: ReplicationGroup): string {
    const ep = group.ConfigurationEndpoint ?? group.NodeGroups?.[0]?.PrimaryEndpoint;
    if (!ep?.Address || !ep.Port) throw new AgentError("failed", `replication group ${group.ReplicationGroupId} is available but has no endpoint`);
    const ref = this.options.passwordReference;
    return `${ep.Address}:${ep.Port},ssl=true${ref ? `,password=${ref}` : ""}`;
  }
}
