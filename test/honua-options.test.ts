import { describe, expect, it } from "vitest";
import {
  CACHE_TTL_KEYS,
  CODE_DEFAULTS,
  SHIPPED_DEFAULTS,
  checkCacheOptions,
  planCacheTtls,
  readCacheOptions,
  type CacheTtls,
} from "../src/tools/cache/honua-options.js";

const ok: CacheTtls = { ...SHIPPED_DEFAULTS };
const passes = (config: Record<string, string>) =>
  [SHIPPED_DEFAULTS, CODE_DEFAULTS].flatMap((d) => checkCacheOptions(readCacheOptions(config, d).options));

describe("Honua's cache options: reading", () => {
  it("has the five TTL keys with Honua's shipped defaults, and reads them when unset", () => {
    expect(CACHE_TTL_KEYS).toEqual({
      Cache__DefaultTtlSeconds: 300, Cache__ServiceTtlSeconds: 300, Cache__LayerTtlSeconds: 300, Cache__QueryTtlSeconds: 30, Cache__NegativeTtlSeconds: 30,
    });
    expect(readCacheOptions({})).toEqual({ options: { defaultTtl: 300, serviceTtl: 300, layerTtl: 300, queryTtl: 30, negativeTtl: 30, jitter: 0.2 }, problems: [] });
    expect(checkCacheOptions(readCacheOptions({}).options)).toEqual([]);
    expect(checkCacheOptions(readCacheOptions({}, CODE_DEFAULTS).options)).toEqual([]);
  });

  it("reads a key in any .NET spelling", () => {
    const { options, problems } = readCacheOptions({ "cache:layerttlseconds": "120", CACHE__SERVICETTLSECONDS: " 600 ", "Cache:JitterPercentage": "0.1" });
    expect(problems).toEqual([]);
    expect(options).toMatchObject({ layerTtl: 120, serviceTtl: 600, jitter: 0.1 });
  });

  it("reports a value Honua cannot bind as a problem, never as NaN", () => {
    const { options, problems } = readCacheOptions({ Cache__LayerTtlSeconds: "1h", "cache:querYttlseconds": "2.5", Cache__JitterPercentage: "lots", Cache__NegativeTtlSeconds: "" });
    expect(options).toEqual(SHIPPED_DEFAULTS);
    expect(problems).toEqual([
      'Cache__LayerTtlSeconds is "1h": not a whole number of seconds, so Honua cannot bind it and will not start; its default 300 is assumed here',
      'cache:querYttlseconds is "2.5": not a whole number of seconds, so Honua cannot bind it and will not start; its default 30 is assumed here',
      'Cache__NegativeTtlSeconds is "": not a whole number of seconds, so Honua cannot bind it and will not start; its default 30 is assumed here',
      'Cache__JitterPercentage is "lots": not a number, so Honua cannot bind it and will not start; its default 0.2 is assumed here',
    ]);
    expect(readCacheOptions({ Cache__LayerTtlSeconds: "99999999999" }).problems).toHaveLength(1);
  });

  it("reports two spellings with different values", () => {
    expect(readCacheOptions({ Cache__LayerTtlSeconds: "60", "cache:layerTtlSeconds": "600" }).problems).toEqual([
      "Cache__LayerTtlSeconds is set in 2 spellings with different values (Cache__LayerTtlSeconds=60, cache:layerTtlSeconds=600): .NET reads only one of them; Cache__LayerTtlSeconds is assumed here",
    ]);
  });
});

describe("Honua's cache options: the rules CacheOptionsValidator enforces", () => {
  it("passes what Honua starts with, at the edges of every range", () => {
    expect(checkCacheOptions(ok)).toEqual([]);
    expect(checkCacheOptions({ defaultTtl: 86_400, serviceTtl: 86_400, layerTtl: 86_400, queryTtl: 3600, negativeTtl: 3600, jitter: 0.5 })).toEqual([]);
    expect(checkCacheOptions({ defaultTtl: 10, serviceTtl: 10, layerTtl: 1, queryTtl: 1, negativeTtl: 1, jitter: 0 })).toEqual([]);
  });

  it("refuses a TTL outside its range, naming key, value and rule", () => {
    expect(checkCacheOptions({ ...ok, defaultTtl: 0 })).toEqual(["Cache__DefaultTtlSeconds is 0: Honua requires 1..86400 seconds"]);
    expect(checkCacheOptions({ ...ok, defaultTtl: 90_000, serviceTtl: 90_000, layerTtl: 300 })).toEqual([
      "Cache__DefaultTtlSeconds is 90000: Honua requires 1..86400 seconds",
      "Cache__ServiceTtlSeconds is 90000: Honua requires 1..86400 seconds",
    ]);
    expect(checkCacheOptions({ ...ok, queryTtl: 7200 })).toEqual(["Cache__QueryTtlSeconds is 7200: Honua requires 1..3600 seconds"]);
    expect(checkCacheOptions({ ...ok, layerTtl: 1.5 })).toEqual(["Cache__LayerTtlSeconds is 1.5: Honua requires a whole number of seconds"]);
    expect(checkCacheOptions({ ...ok, jitter: 0.6 })).toEqual(["Cache__JitterPercentage is 0.6: Honua requires 0..0.5"]);
    expect(checkCacheOptions({ ...ok, jitter: -0.1 })).toEqual(["Cache__JitterPercentage is -0.1: Honua requires 0..0.5"]);
    expect(checkCacheOptions({ ...ok, queryTtl: Number.NaN })).toEqual(["Cache__QueryTtlSeconds is NaN: Honua requires a whole number of seconds"]);
  });

  it("refuses a layer TTL longer than the service TTL: today's design (Layer 3600, Service 900)", () => {
    const design = readCacheOptions({ Cache__DefaultTtlSeconds: "3600", Cache__LayerTtlSeconds: "3600", Cache__ServiceTtlSeconds: "900" }).options;
    expect(checkCacheOptions(design)).toEqual([
      "Cache__LayerTtlSeconds 3600 > Cache__ServiceTtlSeconds 900: Honua requires LayerTtlSeconds <= ServiceTtlSeconds (a layer entry may not outlive its service)",
    ]);
  });

  it("refuses a negative TTL over a tenth of the longest positive TTL (integer division; the query TTL does not count)", () => {
    const short = { ...ok, defaultTtl: 120, serviceTtl: 120, layerTtl: 120 };
    expect(checkCacheOptions(short)).toEqual([
      "Cache__NegativeTtlSeconds 30 > 12: Honua requires NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10 (here 120 / 10, rounded down)",
    ]);
    expect(checkCacheOptions({ ...ok, defaultTtl: 299, serviceTtl: 299, layerTtl: 299, negativeTtl: 30 })).toHaveLength(1);
    expect(checkCacheOptions({ ...ok, defaultTtl: 299, serviceTtl: 299, layerTtl: 299, negativeTtl: 29, queryTtl: 3600 })).toEqual([]);
  });
});

describe("planCacheTtls: what to write so Honua caches tiles for the TTL and still starts", () => {
  it("raises the service TTL instead of writing Layer 3600 with Service 900", () => {
    const p = planCacheTtls({ Cache__ServiceTtlSeconds: "900" }, 3600);
    expect(p).toEqual({
      set: { Cache__DefaultTtlSeconds: "3600", Cache__ServiceTtlSeconds: "3600", Cache__LayerTtlSeconds: "3600" },
      notes: ["Cache__ServiceTtlSeconds raised 900 -> 3600: Honua requires LayerTtlSeconds <= ServiceTtlSeconds"],
      refused: null,
    });
    expect(passes({ Cache__ServiceTtlSeconds: "900", ...p.set })).toEqual([]);
  });

  it("says when an unset service TTL is raised from Honua's default", () => {
    expect(planCacheTtls({}, 3600).notes).toEqual(["Cache__ServiceTtlSeconds raised 300 (unset: Honua's shipped default) -> 3600: Honua requires LayerTtlSeconds <= ServiceTtlSeconds"]);
  });

  it("lowers the negative TTL for a short TTL when the longest TTL is short too, and says why", () => {
    const current = { Cache__ServiceTtlSeconds: "60", Cache__NegativeTtlSeconds: "30" };
    const p = planCacheTtls(current, 60);
    expect(p.set).toEqual({ Cache__DefaultTtlSeconds: "60", Cache__LayerTtlSeconds: "60", Cache__NegativeTtlSeconds: "6" });
    expect(p.notes).toEqual(["Cache__NegativeTtlSeconds lowered 30 -> 6: Honua requires NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10 (60 / 10, rounded down)"]);
    expect(passes({ ...current, ...p.set })).toEqual([]);
  });

  it("writes an unset negative TTL where the option class's default (60) would break the rule", () => {
    // Service 300 and a 120 s cache: the shipped default 30 fits (300 / 10), the code default 60 does not.
    const current = { Cache__ServiceTtlSeconds: "300" };
    const p = planCacheTtls(current, 120);
    expect(p.set).toEqual({ Cache__DefaultTtlSeconds: "120", Cache__LayerTtlSeconds: "120", Cache__NegativeTtlSeconds: "30" });
    expect(p.notes).toEqual([
      "Cache__NegativeTtlSeconds written as 30: it is unset, and on an image without Honua's shipped appsettings.json it is 60, more than 300 / 10, which keeps Honua from starting",
    ]);
    expect(checkCacheOptions(readCacheOptions({ ...current, Cache__DefaultTtlSeconds: "120", Cache__LayerTtlSeconds: "120" }, CODE_DEFAULTS).options)).toHaveLength(1);
    expect(passes({ ...current, ...p.set })).toEqual([]);
  });

  it("raises the service TTL to 10 s when a TTL under 10 s leaves no room for a 1 s negative TTL", () => {
    const current = { "cache:servicettlseconds": "5", Cache__NegativeTtlSeconds: "1" };
    const p = planCacheTtls(current, 5);
    expect(p.set).toEqual({ Cache__DefaultTtlSeconds: "5", Cache__ServiceTtlSeconds: "10", Cache__LayerTtlSeconds: "5" });
    expect(p.notes).toEqual(["Cache__ServiceTtlSeconds raised 5 -> 10: Honua requires 1 <= NegativeTtlSeconds <= max(Default, Service, Layer TTL) / 10"]);
  });

  it("leaves out keys that already fit, and never lowers the service or query TTL", () => {
    const current = { Cache__DefaultTtlSeconds: "600", Cache__LayerTtlSeconds: "600", Cache__ServiceTtlSeconds: "7200", Cache__QueryTtlSeconds: "120", Cache__NegativeTtlSeconds: "45" };
    expect(planCacheTtls(current, 600)).toEqual({ set: {}, notes: [], refused: null });
    expect(planCacheTtls(current, 300)).toEqual({ set: { Cache__DefaultTtlSeconds: "300", Cache__LayerTtlSeconds: "300" }, notes: [], refused: null });
  });

  it("repairs what would keep Honua from starting anyway, and says so", () => {
    const p = planCacheTtls({ Cache__QueryTtlSeconds: "abc", Cache__JitterPercentage: "0.9", Cache__NegativeTtlSeconds: "5000", Cache__ServiceTtlSeconds: "86400" }, 86_400);
    expect(p.refused).toBeNull();
    expect(p.set).toEqual({ Cache__DefaultTtlSeconds: "86400", Cache__LayerTtlSeconds: "86400", Cache__QueryTtlSeconds: "30", Cache__NegativeTtlSeconds: "3600", Cache__JitterPercentage: "0.5" });
    expect(p.notes).toEqual([
      'Cache__QueryTtlSeconds set to its default 30: "abc" is not a whole number of seconds, and Honua cannot start with it',
      "Cache__NegativeTtlSeconds lowered 5000 -> 3600: Honua requires 1..3600 seconds",
      "Cache__JitterPercentage lowered 0.9 -> 0.5: Honua requires 0..0.5",
    ]);
  });

  it("refuses a TTL Honua cannot take, with the limit in the reason", () => {
    for (const ttl of [90_000, 0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const p = planCacheTtls({}, ttl);
      expect(p.set, String(ttl)).toEqual({});
      expect(p.refused, String(ttl)).toMatch(/1\.\.86400|whole seconds from 1 to 86400/);
    }
    expect(planCacheTtls({}, 90_000).refused).toBe("a TTL of 90000 s is out of range: Honua refuses to start with a cache TTL outside 1..86400 seconds (1 day) (CacheOptionsValidator)");
  });

  it("refuses when a TTL key is set in two spellings: which one Honua reads is not knowable", () => {
    expect(planCacheTtls({ Cache__LayerTtlSeconds: "60", "cache:layerttlseconds": "600" }, 60).refused).toMatch(/2 spellings with different values/);
    // The same value twice is harmless where nothing is written, but a key to write must have one home.
    expect(planCacheTtls({ Cache__QueryTtlSeconds: "30", "cache:queryttlseconds": "30" }, 60).refused).toBeNull();
    expect(planCacheTtls({ Cache__LayerTtlSeconds: "30", "cache:layerttlseconds": "30" }, 60).refused).toMatch(/Cache__LayerTtlSeconds is set in several spellings/);
  });
});
