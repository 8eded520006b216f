import { describe, expect, it } from "vitest";
import { CACHING_PLAN, approveAll, cli, engineSuite } from "./helpers.js";

describe("sandbox reset: the quick-start demo can be repeated", () => {
  const suite = engineSuite();

  it("puts a deployment back as nothing had run, refuses while a run holds it, and leaves the runs' history", async () => {
    const e = await suite.open();
    e.adaptersFor("prod");
    const fresh = { config: e.sandbox().config("prod"), resources: e.sandbox().activeResources("prod").length };
    const first = await approveAll(e, await e.start(CACHING_PLAN, "carol", "add redis caching to prod"));
    expect(first.status).toBe("done");
    await expect(e.start(CACHING_PLAN, "carol", "add redis caching to prod")).rejects.toMatchObject({ code: "in-place" });

    const held = await e.start({ ...CACHING_PLAN, deployment: "staging" }, "carol", "add redis caching to staging");
    await expect(e.resetSandbox("staging")).rejects.toMatchObject({ code: "conflict", message: expect.stringMatching(/staging is held by run .* nothing was reset/) });
    await expect(e.resetSandbox()).rejects.toMatchObject({ code: "conflict" }); // all of them: none reset while one is held
    expect(e.sandbox().share("prod", "cache")).toBe(100);
    await e.cancel(held.run, "carol");

    const done = await e.resetSandbox("prod");
    expect(done).toEqual([{ deployment: "prod", rows: expect.any(Number) }]);
    e.adaptersFor("prod");
    expect(e.sandbox().share("prod", "cache")).toBe(0);
    expect({ config: e.sandbox().config("prod"), resources: e.sandbox().activeResources("prod").length }).toEqual(fresh);
    expect((await e.runs()).map((r) => r.status).sort()).toEqual(["cancelled", "done"]);
    // The demo again, from the start.
    expect((await approveAll(e, await e.start(CACHING_PLAN, "carol", "add redis caching to prod"))).status).toBe("done");
  });

  it("from the command line: exit 0 with what was reset; a deployment that is not simulated or unknown: exit 2", () => {
    const r = cli(suite.home, ["sandbox", "reset", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual([{ deployment: "prod", rows: 0 }, { deployment: "staging", rows: 0 }]);
    expect(cli(suite.home, ["sandbox", "reset", "nowhere"]).code).toBe(2);
  });
});
