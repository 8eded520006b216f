import { CreateBucketCommand, GetBucketAclCommand, HeadBucketCommand, ListBucketsCommand, PutBucketEncryptionCommand, PutBucketLifecycleConfigurationCommand, PutBucketVersioningCommand, PutPublicAccessBlockCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { createBucket, inspectBucket } from "../src/tools/storage/s3.js";

const s3 = mockClient(S3Client);
const err = (name: string, status: number) => new S3ServiceException({ name, $fault: "client", $metadata: { httpStatusCode: status } });
const SETTINGS = { versioning: true, encryption: "aws:kms", blockPublicAccess: true, lifecycle: { transitionAfterDays: null, storageClass: null, noncurrentExpireDays: 30 } };
const O = { bucket: "honua-cold", region: "eu-west-1", kind: "s3" as const };

describe("S3 on AWS (local fake: aws-sdk-client-mock)", () => {
  afterEach(() => s3.reset());

  it("creates a bucket with public access blocked, versioning, KMS encryption and a lifecycle rule: the commands AWS receives", async () => {
    s3.on(CreateBucketCommand).resolves({});
    s3.on(PutPublicAccessBlockCommand).resolves({});
    s3.on(PutBucketVersioningCommand).resolves({});
    s3.on(PutBucketEncryptionCommand).resolves({});
    s3.on(PutBucketLifecycleConfigurationCommand).resolves({});
    const out = await createBucket(new S3Client({ region: "eu-west-1" }), { ...O, kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abc" }, SETTINGS);
    expect(out.map((x) => `${x.setting}:${x.outcome}`)).toEqual(["public-access:set", "versioning:set", "encryption:set", "lifecycle:set"]);
    expect(s3.commandCalls(CreateBucketCommand)[0]!.args[0].input).toEqual({ Bucket: "honua-cold", CreateBucketConfiguration: { LocationConstraint: "eu-west-1" } });
    expect(s3.commandCalls(PutPublicAccessBlockCommand)[0]!.args[0].input.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(s3.commandCalls(PutBucketVersioningCommand)[0]!.args[0].input.VersioningConfiguration).toEqual({ Status: "Enabled" });
    expect(s3.commandCalls(PutBucketEncryptionCommand)[0]!.args[0].input.ServerSideEncryptionConfiguration!.Rules![0]).toEqual({ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: "arn:aws:kms:eu-west-1:111122223333:key/abc" }, BucketKeyEnabled: true });
    expect(s3.commandCalls(PutBucketLifecycleConfigurationCommand)[0]!.args[0].input.LifecycleConfiguration!.Rules![0]).toMatchObject({ Status: "Enabled", NoncurrentVersionExpiration: { NoncurrentDays: 30 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 } });
  });

  it("a bucket of another account (403 on HeadBucket with ExpectedBucketOwner) is refused; a name taken at create time is a conflict, not adopted", async () => {
    s3.on(HeadBucketCommand).rejects(err("Forbidden", 403));
    const seen = await inspectBucket(new S3Client({ region: "eu-west-1" }), { ...O, expectedOwner: "111122223333" }, SETTINGS);
    expect(seen).toMatchObject({ exists: true, creates: false, refuse: expect.stringMatching(/belongs to someone else \(not to 111122223333\): S3 answers 403/) });
    expect(s3.commandCalls(HeadBucketCommand)[0]!.args[0].input).toEqual({ Bucket: "honua-cold", ExpectedBucketOwner: "111122223333" });

    s3.reset();
    s3.on(CreateBucketCommand).rejects(err("BucketAlreadyExists", 409));
    s3.on(ListBucketsCommand).resolves({ Owner: { ID: "me-canonical" }, Buckets: [] });
    s3.on(GetBucketAclCommand).rejects(err("AccessDenied", 403));
    await expect(createBucket(new S3Client({ region: "eu-west-1" }), O, SETTINGS)).rejects.toThrow(/taken by someone else: choose another bucket name/);
    expect(s3.commandCalls(PutPublicAccessBlockCommand)).toHaveLength(0);
  });
});
