import { describe, expect, it } from "vitest";
import { diffConfig } from "../src/tools/config/diff.js";
import { canonicalKey, findSetting, findSettings, sameSetting, settingValue } from "../src/tools/config/keys.js";

describe("Honua settings matched as .NET configuration matches them", () => {
  it("treats case, `:` and `__` as the same key, and knows the compose alias of the Redis connection", () => {
    expect(canonicalKey("ConnectionStrings:redis")).toBe("connectionstrings__redis");
    expect(sameSetting("ConnectionStrings__Redis", "connectionstrings:REDIS")).toBe(true);
    expect(sameSetting("ConnectionStrings__Redis", "HONUA_REDIS_URL")).toBe(true);
    expect(sameSetting("ConnectionStrings__Redis", "ConnectionStrings__DefaultConnection")).toBe(false);
    expect(findSetting({ "ConnectionStrings:redis": "r:6379" }, "ConnectionStrings__Redis")).toEqual({ key: "ConnectionStrings:redis", value: "r:6379" });
    expect(settingValue({ HONUA_REDIS_URL: "redis://r:6379" }, "ConnectionStrings__Redis")).toBe("redis://r:6379");
    expect(findSetting({ Cache__Enabled: "true" }, "Cache__KeyPrefix")).toBeUndefined();
  });

  it("prefers the exact spelling and lists every spelling present", () => {
    const values = { cache__enabled: "false", Cache__Enabled: "true" };
    expect(findSettings(values, "Cache__Enabled").map((s) => s.key)).toEqual(["Cache__Enabled", "cache__enabled"]);
  });

  it("diffs into the spelling a key already has, and refuses two spellings of one setting", () => {
    expect(diffConfig({ ConnectionStrings__redis: "old:6379" }, { ConnectionStrings__Redis: "new:6379" })).toEqual([
      { key: "ConnectionStrings__redis", before: "old:6379", after: "new:6379" },
    ]);
    expect(diffConfig({ "cache:ttl": "5" }, { Cache__Ttl: "5" })).toEqual([]);
    expect(() => diffConfig({ ConnectionStrings__Redis: "a:1", HONUA_REDIS_URL: "redis://b:2" }, { ConnectionStrings__Redis: "c:3" })).toThrow(/2 times in different spellings/);
  });
});
