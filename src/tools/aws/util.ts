import { createHash } from "node:crypto";

/** True when `err` is an AWS service exception of one of these names (works for SDK classes and mocks). */
export function isAwsError(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

/** A short, stable digest of an idempotency key: the same key always names the same resource. */
export function keyDigest(key: string, length = 16): string {
  return createHash("sha256").update(key).digest("hex").slice(0, length);
}

export const MANAGED_TAG = "honua-agent:managed";
export const KEY_TAG = "honua-agent:idempotency-key";

/** Tag values are limited to 256 characters; longer keys keep their digest so they still differ. */
export const tagValue = (key: string) => (key.length <= 256 ? key : `${key.slice(0, 239)}~${keyDigest(key)}`);

/**
 * Settings for an SDK waiter: polls every `pollSeconds`, backing off to at most 8x that (capped at
 * `maxDelayCap` seconds), and gives up after `maxWaitSeconds`.
 */
export function waiterConfig<C>(client: C, pollSeconds: number, maxWaitSeconds: number, maxDelayCap: number) {
  return { client, minDelay: pollSeconds, maxDelay: Math.max(pollSeconds, Math.min(maxDelayCap, pollSeconds * 8)), maxWaitTime: maxWaitSeconds };
}
