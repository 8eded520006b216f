import { z } from "zod";
import { AgentError } from "../../../../core/errors.js";
import { ChangeSection } from "../../../../core/sections.js";
import { digestOf } from "../../../../tools/storage/probe.js";
import { defineStep } from "../../../step.js";
import { storageOf } from "../backends.js";
import { IdentifyStorageRequirement, Requirement } from "./identify-storage-requirement.js";
import { MigrateExistingData } from "./migrate-existing-data.js";
import { UpdateCatalogReferences } from "./update-catalog-references.js";

const SAMPLE = 6;

const Check = z.object({ what: z.string(), path: z.string(), ok: z.boolean(), detail: z.string() });

/** Spread over the list: the first, the last and evenly between. */
const spread = <T>(xs: readonly T[], n: number): T[] => (xs.length <= n ? [...xs] : Array.from({ length: n }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (n - 1))]!));

export const ValidateDataAccess = defineStep({
  name: "ValidateDataAccess",
  description: "Read a sample of the moved assets through their new hrefs (hash checked) and through Honua's STAC and tile paths",
  input: z.object({ requirement: Requirement, copyKey: z.string(), rewritten: z.number() }),
  output: z.object({
    checks: z.array(Check),
    table: ChangeSection,
    /** Keys on each backend the storage signal reads, and how fast they read now. */
    watch: z.array(z.object({ target: z.custom<Requirement["target"]>(), keys: z.array(z.string()), baselineP95Ms: z.number().nullable() })),
    honuaChecked: z.boolean(),
  }),
  prepare: (view) => ({ requirement: view.output(IdentifyStorageRequirement), copyKey: view.output(MigrateExistingData).copyKey, rewritten: view.output(UpdateCatalogReferences).rewritten }),
  async run(ctx, { requirement: r, copyKey }) {
    const storage = storageOf(ctx.adapters, ctx.deployment);
    const records = spread(await storage.ledger.written(copyKey), SAMPLE);
    const checks: z.infer<typeof Check>[] = [];
    for (const rec of records) {
      const at = storage.resolve(rec.dest);
      try {
        if (!at) throw new Error("on no configured backend");
        const d = await digestOf(await at.store.read(at.key));
        const ok = d.sha256 === rec.sha256 && d.bytes === rec.size;
        checks.push({ what: "read through the new href", path: rec.dest, ok, detail: ok ? `${d.bytes} bytes, SHA-256 matches` : `${d.bytes} bytes, SHA-256 ${d.sha256.slice(0, 12)} != ${rec.sha256.slice(0, 12)}` });
      } catch (e) {
        checks.push({ what: "read through the new href", path: rec.dest, ok: false, detail: e instanceof Error ? e.message : String(e) });
      }
    }
    const assets = (await storage.catalog.assets()).filter((a) => records.some((x) => x.dest === a.href));
    const honua = storage.honua;
    if (honua) {
      for (const a of assets.slice(0, SAMPLE)) {
        const got = await honua.item(a.collection, a.item).catch((e: unknown) => ({ status: 0, body: String(e) }));
        const href = (got.body as { assets?: Record<string, { href?: string }> })?.assets?.[a.asset]?.href;
        checks.push({ what: "Honua STAC item", path: `/stac/collections/${a.collection}/items/${a.item}`, ok: got.status === 200 && href === a.href, detail: got.status === 200 ? (href === a.href ? "serves the new href" : `serves ${href ?? "no href"}`) : `HTTP ${got.status}` });
      }
      for (const c of [...new Set(assets.map((a) => a.collection))]) {
        const t = await honua.tile(c, 0, 0, 0).catch(() => ({ status: 0, bytes: 0 }));
        checks.push({ what: "Honua tile", path: `/ogc/tiles/collections/${c}/tiles/WebMercatorQuad/0/0/0`, ok: t.status === 200 && t.bytes > 0, detail: `HTTP ${t.status}, ${t.bytes} bytes` });
      }
    }
    const failed = checks.filter((c) => !c.ok);
    if (failed.length) throw new AgentError("failed", `${failed.length} of ${checks.length} access checks failed: ${failed.slice(0, 4).map((c) => `${c.what} ${c.path}: ${c.detail}`).join("; ")}`);
    // Baselines for the storage signal: the new backend's sample and (while the sources are there) the old one's.
    const newStore = storage.store(r.target);
    const newKeys = records.map((x) => newStore.keyOf(x.dest)).filter((k): k is string => k !== null).slice(0, 3);
    const old = records.map((x) => storage.resolve(x.source)).filter((x) => x !== null).slice(0, 3);
    const watch = [{ target: r.target, keys: newKeys, baselineP95Ms: newKeys.length ? (await storage.probe(newStore, newKeys)).p95Ms : null }];
    if (old.length) {
      const s = old[0]!.store;
      const keys = old.filter((x) => x.store === s).map((x) => x.key);
      watch.push({ target: { backend: s.backend, kind: s.kind, container: s.container, region: null, prefix: "" }, keys, baselineP95Ms: (await storage.probe(s, keys)).p95Ms });
    }
    const table: ChangeSection = { kind: "table", title: "Data access checks", columns: ["check", "path", "result"], rows: checks.map((c) => [c.what, c.path, c.detail]) };
    const note = honua ? "" : "; Honua's STAC and tile paths not checked: no storage.honuaUrl";
    return { output: { checks, table, watch, honuaChecked: honua !== undefined }, reason: `${checks.length} checks passed${note}` };
  },
});
