import {
  CreateCacheParameterGroupCommand,
  CreateReplicationGroupCommand,
  DeleteCacheParameterGroupCommand,
  DeleteReplicationGroupCommand,
  DescribeReplicationGroupsCommand,
  ElastiCacheClient,
  ListTagsForResourceCommand,
  ModifyCacheParameterGroupCommand,
  ReplicationGroupAlreadyExistsFault,
  ReplicationGroupNotFoundFault,
  type ReplicationGroup,
} from "@aws-sdk/client-elasticache";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { Deployment } from "../src/config.js";
import type { ConfigChange } from "../src/core/sections.js";
import { RunView, type StepContext } from "../src/graph/step.js";
import { tagValue } from "../src/tools/aws/util.js";
import { cleanupCaching, rollbackCaching } from "../src/graph/workflows/add-caching-layer/rollback.js";
import { ProvisionCacheInfrastructure } from "../src/graph/workflows/add-caching-layer/steps/provision-cache-infrastructure.js";
import { MemoryJournal } from "../src/core/journal.js";
import { ElastiCacheInfra, replicationGroupId } from "../src/tools/cache/elasticache.js";
import { type CacheSpec, type DeploymentAdapters } from "../src/tools/types.js";
import { systemClock } from "../src/core/clock.js";

const ec = mockClient(ElastiCacheClient);
beforeEach(() => ec.reset());

const KEY = "run-7f3a:ProvisionCacheInfrastructure:0";
const ID = replicationGroupId("honua", KEY);
const ARN = `arn:aws:elasticache:eu-west-1:123456789012:replicationgroup:${ID}`;
const SPEC = { engine: "redis", nodeType: "cache.t4g.medium", memoryGb: 2.1, evictionPolicy: "allkeys-lru", ttlSeconds: 3600 } satisfies CacheSpec;
const OPTIONS = {
  region: "eu-west-1",
  cacheSubnetGroupName: "honua-private",
  securityGroupIds: ["sg-0abc123"],
  userGroupIds: ["honua-users"],
  passwordReference: "aws:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:honua-redis",
  pollSeconds: 0.01,
  maxWaitSeconds: 5,
};
const group = (Status: string): ReplicationGroup => ({
  ReplicationGroupId: ID,
  ARN,
  Status,
  CacheNodeType: "cache.t4g.medium",
  ReplicationGroupCreateTime: new Date("2026-11-26T12:00:00Z"),
  NodeGroups: [{ NodeGroupId: "0001", PrimaryEndpoint: { Address: `master.${ID}.abc123.euw1.cache.amazonaws.com`, Port: 6379 } }],
});
const notFound = () => new ReplicationGroupNotFoundFault({ message: `ReplicationGroup ${ID} not found`, $metadata: {} });
const ownedTags = { TagList: [{ Key: "honua-agent:managed", Value: "true" }, { Key: "honua-agent:idempotency-key", Value: tagValue(KEY) }] };
/** Every command sent, by name, in order. */
const sent = () => ec.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name);
const infra = () => new ElastiCacheInfra(OPTIONS, new ElastiCacheClient({ region: "eu-west-1" }));

describe("ElastiCacheInfra (SDK mock)", () => {
  it("tells a rollback what a provision that did not finish created, and nothing when it created nothing (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).resolvesOnce({ ReplicationGroups: [group("creating")] }).rejectsOnce(notFound());
    ec.on(ListTagsForResourceCommand).resolves(ownedTags);
    expect(await infra().provisioned(KEY)).toEqual({ id: ID, description: `ElastiCache replication group ${ID} (creating)` });
    expect(await infra().provisioned(KEY)).toBeNull();
    expect(sent().filter((c) => c.startsWith("Delete") || c.startsWith("Create"))).toEqual([]);
  });

  it("derives a valid ReplicationGroupId from the idempotency key", () => {
    expect(ID).toMatch(/^honua-[0-9a-f]{16}$/);
    expect(ID.length).toBeLessThanOrEqual(40);
    expect(replicationGroupId("honua", KEY)).toBe(ID);
    expect(replicationGroupId("honua", `${KEY}x`)).not.toBe(ID);
  });

  it("checks first, creates parameter and replication group, waits until available, returns a reference-only endpoint (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand)
      .rejectsOnce(notFound())
      .resolvesOnce({ ReplicationGroups: [group("creating")] })
      .resolvesOnce({ ReplicationGroups: [group("creating")] })
      .resolves({ ReplicationGroups: [group("available")] });
    ec.on(CreateCacheParameterGroupCommand).resolves({});
    ec.on(ModifyCacheParameterGroupCommand).resolves({});
    ec.on(CreateReplicationGroupCommand).resolves({ ReplicationGroup: group("creating") });

    const res = await infra().provision(SPEC, KEY);

    expect(sent()).toEqual([
      "DescribeReplicationGroupsCommand",
      "CreateCacheParameterGroupCommand",
      "ModifyCacheParameterGroupCommand",
      "CreateReplicationGroupCommand",
      "DescribeReplicationGroupsCommand",
      "DescribeReplicationGroupsCommand",
      "DescribeReplicationGroupsCommand",
      "DescribeReplicationGroupsCommand",
    ]);
    const tags = [{ Key: "honua-agent:managed", Value: "true" }, { Key: "honua-agent:idempotency-key", Value: KEY }];
    expect(ec.commandCalls(CreateCacheParameterGroupCommand)[0]!.args[0].input).toEqual({
      CacheParameterGroupName: ID, CacheParameterGroupFamily: "redis7", Description: "Honua cache: maxmemory-policy allkeys-lru", Tags: tags,
    });
    expect(ec.commandCalls(ModifyCacheParameterGroupCommand)[0]!.args[0].input).toEqual({
      CacheParameterGroupName: ID, ParameterNameValues: [{ ParameterName: "maxmemory-policy", ParameterValue: "allkeys-lru" }],
    });
    expect(ec.commandCalls(CreateReplicationGroupCommand)[0]!.args[0].input).toEqual({
      ReplicationGroupId: ID,
      ReplicationGroupDescription: expect.stringMatching(/^Honua cache \(honua-agent [0-9a-f]{8}\)$/),
      Engine: "redis",
      CacheNodeType: "cache.t4g.medium",
      NumCacheClusters: 2,
      AutomaticFailoverEnabled: true,
      MultiAZEnabled: true,
      CacheParameterGroupName: ID,
      CacheSubnetGroupName: "honua-private",
      SecurityGroupIds: ["sg-0abc123"],
      UserGroupIds: ["honua-users"],
      TransitEncryptionEnabled: true,
      AtRestEncryptionEnabled: true,
      Tags: tags,
    });
    expect(res).toEqual({
      id: ID,
      engine: "redis",
      nodeType: "cache.t4g.medium",
      endpoint: `master.${ID}.abc123.euw1.cache.amazonaws.com:6379,ssl=true,password=${OPTIONS.passwordReference}`,
      createdAt: "2026-11-26T12:00:00.000Z",
    });
    expect(ec.commandCalls(DeleteReplicationGroupCommand)).toHaveLength(0);
  });

  it("a replayed provision adopts the group its first attempt created and creates nothing (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).resolves({ ReplicationGroups: [group("available")] });
    ec.on(ListTagsForResourceCommand, { ResourceName: ARN }).resolves(ownedTags);
    const res = await infra().provision(SPEC, KEY);
    expect(res.id).toBe(ID);
    expect(sent()).toEqual(["DescribeReplicationGroupsCommand", "ListTagsForResourceCommand", "DescribeReplicationGroupsCommand", "DescribeReplicationGroupsCommand"]);
  });

  it("treats ReplicationGroupAlreadyExistsFault from a concurrent replay as its own group (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).rejectsOnce(notFound()).resolves({ ReplicationGroups: [group("available")] });
    ec.on(CreateCacheParameterGroupCommand).resolves({});
    ec.on(ModifyCacheParameterGroupCommand).resolves({});
    ec.on(CreateReplicationGroupCommand).rejects(new ReplicationGroupAlreadyExistsFault({ message: "exists", $metadata: {} }));
    const res = await infra().provision(SPEC, KEY);
    expect(res.endpoint).toMatch(/:6379,ssl=true,password=aws:secretsmanager:/);
    expect(ec.commandCalls(CreateReplicationGroupCommand)).toHaveLength(1);
  });

  it("refuses to adopt a group of the same name that honua-agent did not create (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).resolves({ ReplicationGroups: [group("available")] });
    ec.on(ListTagsForResourceCommand).resolves({ TagList: [{ Key: "team", Value: "gis" }] });
    await expect(infra().provision(SPEC, KEY)).rejects.toThrow(/not created by honua-agent \(no honua-agent:managed tag\); refusing to adopt/);
    expect(sent()).not.toContain("CreateReplicationGroupCommand");
  });

  it("a provision that fails to become available reports it and deletes nothing (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).rejectsOnce(notFound()).resolves({ ReplicationGroups: [group("deleted")] });
    ec.on(CreateCacheParameterGroupCommand).resolves({});
    ec.on(ModifyCacheParameterGroupCommand).resolves({});
    ec.on(CreateReplicationGroupCommand).resolves({});
    await expect(infra().provision(SPEC, KEY)).rejects.toThrow(/did not become available \(status deleted\)/);
    expect(sent().filter((n) => n.startsWith("Delete"))).toEqual([]);
  });

  it("deprovision deletes the group, waits until it is gone, then removes its parameter group (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).resolvesOnce({ ReplicationGroups: [group("available")] }).resolvesOnce({ ReplicationGroups: [group("deleting")] }).rejects(notFound());
    ec.on(ListTagsForResourceCommand).resolves(ownedTags);
    ec.on(DeleteReplicationGroupCommand).resolves({});
    ec.on(DeleteCacheParameterGroupCommand).resolves({});
    await infra().deprovision(ID, "run-7f3a:cleanup:0");
    expect(ec.commandCalls(DeleteReplicationGroupCommand).map((c) => c.args[0].input)).toEqual([{ ReplicationGroupId: ID }]);
    expect(ec.commandCalls(DeleteCacheParameterGroupCommand).map((c) => c.args[0].input)).toEqual([{ CacheParameterGroupName: ID }]);
  });

  it("deprovision refuses a group honua-agent did not create (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).resolves({ ReplicationGroups: [group("available")] });
    ec.on(ListTagsForResourceCommand).resolves({ TagList: [] });
    await expect(infra().deprovision(ID, "k")).rejects.toThrow(/not created by honua-agent .*; refusing to delete/);
    expect(ec.commandCalls(DeleteReplicationGroupCommand)).toHaveLength(0);
  });

  it("through the caching steps: provision and rollback send no delete; only the delete gate's cleanup does (SDK mock)", async () => {
    ec.on(DescribeReplicationGroupsCommand).rejectsOnce(notFound()).resolvesOnce({ ReplicationGroups: [group("available")] }).resolvesOnce({ ReplicationGroups: [group("available")] });
    ec.on(CreateCacheParameterGroupCommand).resolves({});
    ec.on(ModifyCacheParameterGroupCommand).resolves({});
    ec.on(CreateReplicationGroupCommand).resolves({});
    const cache = infra();
    let share = 0;
    const config: Record<string, string> = {};
    const adapters: DeploymentAdapters = {
      provider: "aws",
      clock: systemClock,
      metrics: { samples: async () => [] },
      config: {
        read: async () => ({ ...config }),
        apply: async (changes: ConfigChange[]) => {
          for (const c of changes) (c.after === null ? delete config[c.key] : (config[c.key] = c.after));
        },
      },
      cache,
      traffic: { share: async () => share, setShare: async (_f, p) => void (share = p) },
      tiles: { popularTiles: async () => [], submitJob: async () => ({ jobId: "j", tilesProcessed: 0 }) },
      cost: { monthly: async () => ({}) },
    };
    const journal = new MemoryJournal("run-7f3a");
    const ctx: StepContext = {
      run: "run-7f3a", workflow: "add-caching-layer", deployment: "prod",
      deploymentConfig: Deployment.parse({ provider: "sandbox", approvers: ["oncall"] }),
      adapters,
      journal: journal.at("ProvisionCacheInfrastructure"),
      idempotencyKey: (suffix) => (suffix ? `run-7f3a:ProvisionCacheInfrastructure:0:${suffix}` : KEY),
      idempotencyKeyOf: (step, stage) => `run-7f3a:${step}:${stage ?? 0}`,
      progress: () => {},
      remember: async (_n, v) => v,
      attach: async (name) => name,
      stopRequested: async () => null,
    };
    const provisioned = await ProvisionCacheInfrastructure.spec.run(ctx, SPEC, null);
    // The first traffic stage, journalled as the step does it.
    await journal.at("EnableCachingGradually").intend(null, [{ kind: "share", feature: "cache", before: share, after: 10 }]);
    share = 10;
    const view = new RunView({
      run: "run-7f3a", workflow: "add-caching-layer", deployment: "prod", requestedBy: "carol", request: "add redis caching to prod", params: {},
      steps: [{ name: "ProvisionCacheInfrastructure", stage: null, status: "done", startedAt: "", endedAt: "", input: SPEC, output: provisioned.output }],
      decisions: [], gate: null, next: { to: "step", index: 0, stage: 0 }, status: "running", ending: null, outcome: null, metrics: { before: null, after: null },
    });
    const { leftovers } = await rollbackCaching(ctx, view);
    expect(share).toBe(0);
    expect(leftovers.map((l) => l.id)).toEqual([ID]);
    expect(sent().filter((n) => n.startsWith("Delete"))).toEqual([]);

    // The cleanup the delete gate guards is the only path that deletes.
    ec.reset();
    ec.on(DescribeReplicationGroupsCommand).resolvesOnce({ ReplicationGroups: [group("available")] }).rejects(notFound());
    ec.on(ListTagsForResourceCommand).resolves(ownedTags);
    ec.on(DeleteReplicationGroupCommand).resolves({});
    ec.on(DeleteCacheParameterGroupCommand).resolves({});
    await cleanupCaching(ctx, leftovers);
    expect(ec.commandCalls(DeleteReplicationGroupCommand).map((c) => c.args[0].input)).toEqual([{ ReplicationGroupId: ID }]);
  });

  it("refuses a plaintext password and a non-Redis spec before calling AWS", async () => {
    expect(() => new ElastiCacheInfra({ ...OPTIONS, passwordReference: "hunter2" })).toThrow(/never a password/);
    await expect(infra().provision({ ...SPEC, engine: "varnish" }, KEY)).rejects.toThrow(/ElastiCache provides Redis, not varnish/);
    expect(ec.calls()).toHaveLength(0);
  });
});
