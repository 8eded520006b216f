import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import type { Deployment } from "../../../config.js";
import { AgentError } from "../../../core/errors.js";
import { settingValue } from "../../../tools/config/keys.js";
import type { CopyItem } from "../../../tools/storage/copy.js";
import { BackendTarget, STORAGE_ROUTING, type BackendInfo, type CatalogAsset, type StorageCapability, type StorageSettings } from "../../../tools/storage/types.js";
import { featureOf } from "../../../tools/traffic/section.js";
import type { DeploymentAdapters } from "../../../tools/types.js";
import type { Preflight } from "../../step.js";
import { fingerprint, place, type PlaceContext, type PlacementRule } from "./placement.js";
import type { StorageParams } from "./params.js";

export function storageOf(adapters: DeploymentAdapters, deployment: string): StorageCapability {
  if (!adapters.storage) throw new AgentError("unavailable", `deployment ${deployment} has no storage section in honua-agent.yaml (storage: { backends: [...] }, see docs/local.md)`);
  return adapters.storage;
}

/** The backend Honua's config serves from now (FileStorage__Provider and its keys), among the configured ones. */
export function currentBackend(backends: readonly BackendInfo[], cfg: Record<string, string>): { info: BackendInfo | null; container: string | null; provider: string } {
  const provider = settingValue(cfg, "FileStorage__Provider") ?? "Local";
  const container = provider === "AwsS3" ? settingValue(cfg, "FileStorage__AwsS3__BucketName") : provider === "AzureBlob" ? settingValue(cfg, "FileStorage__AzureBlob__ContainerName") : settingValue(cfg, "FileStorage__LocalStorage__BasePath");
  const gcs = /storage\.googleapis\.com/.test(settingValue(cfg, "FileStorage__AwsS3__ServiceUrl") ?? "");
  const info = backends.find((b) => b.provider === provider && (provider !== "AwsS3" || (b.kind === "gcs") === gcs) && (container === undefined || b.container === container))
    ?? backends.find((b) => b.provider === provider) ?? null;
  return { info, container: container ?? info?.container ?? null, provider };
}

/** The backend a request asks for, pointed at its bucket/container/directory, or why it cannot be. */
export function chooseBackend(storage: StorageCapability, cfg: Record<string, string>, p: StorageParams, deployment: string): { backend: BackendInfo; target: BackendTarget; current: ReturnType<typeof currentBackend>; notes: string[] } {
  const notes: string[] = [];
  const kind = p.backend ?? (p.path ? "filesystem" : "s3");
  if (!p.backend) notes.push(p.path ? `filesystem: a path was given (${p.path})` : "s3: no backend kind was given; S3 is the default object store");
  const current = currentBackend(storage.backends, cfg);
  const sameAsCurrent = (b: BackendInfo, container: string) => current.info?.name === b.name && current.container === container;
  const candidates = storage.backends.filter((b) => b.kind === kind);
  if (candidates.length === 0) {
    throw new AgentError("bad-input", `${deployment}'s storage section has no ${kind} backend (it has ${storage.backends.map((b) => `${b.name}: ${b.kind}`).join(", ")}): add one, e.g. { name: cold, kind: ${kind}, ... }`);
  }
  const wanted = (b: BackendInfo): string | null => {
    if (kind === "filesystem") {
      if (p.path && !isAbsolute(p.path)) throw new AgentError("bad-input", `the filesystem path must be absolute (${p.path}): Honua's LocalStorage BasePath is read on Honua's host`);
      return p.path ? resolve(p.path) : b.container;
    }
    return p.bucket ?? b.container;
  };
  const backend = candidates.find((b) => { const c = wanted(b); return c !== null && !sameAsCurrent(b, c); }) ?? candidates[0]!;
  const container = wanted(backend);
  if (!container) {
    throw new AgentError("bad-input", kind === "filesystem" ? "which directory? give the path of the share (e.g. /mnt/rasters)" : `which ${kind === "azure-blob" ? "container" : "bucket"}? give its name (backend ${backend.name} names none)`);
  }
  if (sameAsCurrent(backend, container)) throw new AgentError("in-place", `Honua already stores its rasters in ${backend.name} (${container}): nothing to add`);
  if (p.region && backend.region && p.region !== backend.region && !backend.anyRegion && backend.kind !== "filesystem" && !candidates.some((b) => b.region === p.region)) {
    throw new AgentError("bad-input", `${deployment}'s ${kind} backend ${backend.name} is in ${backend.region}, not ${p.region}: add a backend for ${p.region} to the storage section`);
  }
  const region = backend.anyRegion && p.region ? p.region : (candidates.find((b) => b.region === p.region)?.region ?? backend.region);
  return { backend, target: BackendTarget.parse({ backend: backend.name, kind: backend.kind, container, region, prefix: backend.prefix }), current, notes };
}

/** What the new bucket is set up with: private, versioned (old versions expire), encrypted. */
export function settingsFor(backend: BackendInfo): StorageSettings {
  return {
    versioning: backend.kind !== "filesystem",
    encryption: backend.kind === "azure-blob" ? "service-managed (always on)" : backend.kind === "gcs" ? "Google-managed (always on)" : backend.kind === "filesystem" ? "the volume's" : "AES256",
    blockPublicAccess: true,
    lifecycle: backend.kind === "filesystem" ? null : { transitionAfterDays: null, storageClass: null, noncurrentExpireDays: 30 },
  };
}

/** Whether the deployment can split storage traffic (a router for `storage-routing`), or moves it whole with Honua's config. */
export function routingSplits(d: Deployment, provider: string): boolean {
  if (provider === "sandbox") return true;
  const t = d.traffic;
  return t !== undefined && (Array.isArray(t) ? t : [t]).some((r) => featureOf(r) === STORAGE_ROUTING);
}

/** One object the placement moves, with every asset that points at it. */
export const Move = z.object({
  item: z.custom<CopyItem>(),
  rule: z.string(),
  size: z.number().int().nonnegative(),
  assets: z.array(z.object({ collection: z.string(), item: z.string(), asset: z.string(), href: z.string() })),
});
export type Move = z.infer<typeof Move>;

export interface CopyPlan {
  moves: Move[];
  /** Assets no rule takes (they stay where they are). */
  staying: number;
  /** Assets a rule takes that are already on the new backend. */
  alreadyThere: number;
  /** Hrefs on no configured backend, or whose object is missing: the plan cannot move them. */
  unreachable: { href: string; reason: string }[];
  fingerprint: string;
  bytes: number;
}

/** Evaluates the rules over the catalog: what moves where, with each object's size. Read-only. */
export async function planCopy(storage: StorageCapability, assets: readonly CatalogAsset[], rules: readonly PlacementRule[], target: BackendTarget, ctx: PlaceContext): Promise<CopyPlan> {
  const dest = storage.store(target);
  const bySource = new Map<string, Move>();
  const unreachable: CopyPlan["unreachable"] = [];
  let staying = 0;
  let alreadyThere = 0;
  for (const a of assets) {
    const rule = place(rules, a, ctx);
    if (!rule) {
      staying++;
      continue;
    }
    if (dest.keyOf(a.href) !== null) {
      alreadyThere++;
      continue;
    }
    const ref = { collection: a.collection, item: a.item, asset: a.asset, href: a.href };
    const known = bySource.get(a.href);
    if (known) {
      known.assets.push(ref);
      continue;
    }
    const src = storage.resolve(a.href);
    if (!src) {
      unreachable.push({ href: a.href, reason: "on no configured backend" });
      continue;
    }
    bySource.set(a.href, { item: { source: a.href, target, key: `${target.prefix}${src.key}`, contentType: a.mediaType }, rule: rule.id, size: 0, assets: [ref] });
  }
  const moves = [...bySource.values()].sort((x, y) => (x.item.source < y.item.source ? -1 : 1));
  // Sizes from the source stores, a few at a time.
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(8, moves.length) }, async () => {
    while (i < moves.length) {
      const m = moves[i++]!;
      const src = storage.resolve(m.item.source)!;
      const h = await src.store.head(src.key).catch((e: unknown) => {
        unreachable.push({ href: m.item.source, reason: e instanceof Error ? e.message : String(e) });
        return null;
      });
      if (h) m.size = h.size;
      else if (!unreachable.some((u) => u.href === m.item.source)) unreachable.push({ href: m.item.source, reason: "the object does not exist" });
    }
  }));
  const ok = moves.filter((m) => !unreachable.some((u) => u.href === m.item.source));
  return {
    moves: ok, staying, alreadyThere, unreachable,
    fingerprint: fingerprint(ok.map((m) => `${m.item.source} ${m.item.key} ${m.size} ${m.assets.map((a) => `${a.collection}/${a.item}/${a.asset}`).join(",")}`)),
    bytes: ok.reduce((s, m) => s + m.size, 0),
  };
}

/** The plan-time check, read-only: the backend exists in the section, is not Honua's already, and is not someone else's bucket. */
export async function storagePreflight(deployment: string, adapters: DeploymentAdapters, p: StorageParams): Promise<Preflight> {
  const storage = adapters.storage;
  if (!storage) return { inPlace: null, refuse: `${deployment} has no storage section in honua-agent.yaml (storage: { backends: [...] })`, notes: [] };
  try {
    const chosen = chooseBackend(storage, await adapters.config.read(), p, deployment);
    const found = await storage.inspect(chosen.target, settingsFor(chosen.backend));
    if (found.refuse) return { inPlace: null, refuse: found.refuse, notes: [] };
    return { inPlace: null, refuse: null, notes: [...chosen.notes, found.action] };
  } catch (e) {
    if (e instanceof AgentError && e.code === "in-place") return { inPlace: { summary: e.message, evidence: [`FileStorage__Provider and its keys in Honua's config`] }, refuse: null, notes: [] };
    if (e instanceof AgentError && e.code === "bad-input") return { inPlace: null, refuse: e.message, notes: [] };
    throw e;
  }
}
