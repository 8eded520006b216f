/** `honua-agent dev origin`: the Honua stand-in a newcomer runs for docs/local.md, as a process. */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, tempHome, testEnv } from "./helpers.js";

const BIN = join(new URL("..", import.meta.url).pathname, "bin/honua-agent.mjs");

describe("honua-agent dev origin", () => {
  const t = tempHome();
  afterAll(() => t.cleanup());

  it("serves tiles and readiness; /metrics only once the env file turns Honua's observability on, with Honua's series", async () => {
    const envFile = join(t.home, "honua.env");
    writeFileSync(envFile, "Cache__Enabled=false\n");
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, "dev", "origin", "--env", envFile, "--port", String(port), "--work-ms", "1"], { cwd: t.home, env: testEnv(t.home), stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      for (let i = 0; i < 400 && !out.includes("Ctrl-C stops it"); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain(`Honua stand-in honua-1 on http://127.0.0.1:${port}`);
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz/ready`)).status).toBe(200);
      const tile = await fetch(`${base}/ogc/tiles/collections/roads/tiles/WebMercatorQuad/3/2/1`);
      expect(tile.status).toBe(200);
      expect((await tile.arrayBuffer()).byteLength).toBe(2048);
      expect((await fetch(`${base}/metrics`)).status).toBe(404); // off unless HONUA_OBSERVABILITY=true, as Honua's is
      writeFileSync(envFile, "Cache__Enabled=false\nHONUA_OBSERVABILITY=true\n");
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^honua_serving_request_duration_ms_count\{honua_protocol="ogc-tiles",honua_operation="GetTile",status_class="2xx"\} 1$/m);
      expect(metrics).toContain("# TYPE honua_cache_hits_total counter");
    } finally {
      child.kill("SIGINT");
      await new Promise((r) => child.once("exit", r));
    }
  }, 60_000);

  it("a missing env file or a bad port is refused with exit 2, saying what to do", () => {
    const missing = spawnSync(process.execPath, [BIN, "dev", "origin", "--env", join(t.home, "nope.env")], { cwd: t.home, env: testEnv(t.home), encoding: "utf8" });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.env does not exist: create the Honua env file first/);
    const port = spawnSync(process.execPath, [BIN, "dev", "origin", "--env", join(t.home, "nope.env"), "--port", "99999"], { cwd: t.home, env: testEnv(t.home), encoding: "utf8" });
    expect(port.status).toBe(2);
    expect(port.stderr).toContain("--port 99999 is not a port");
  });
});
