import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { OpLog } from "../src/store/oplog.js";
import { realAdapters } from "../src/providers/real.js";

/** Every ```yaml block of a document, with the line it starts on. */
function yamlBlocks(file: string): { line: number; text: string }[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```yaml") continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j]!.trim() !== "```") j++;
    out.push({ line: start, text: lines.slice(start, j).join("\n") });
    i = j;
  }
  return out;
}

const local = yamlBlocks("docs/local.md");
const cloud = yamlBlocks("docs/cloud.md");
const complete = parseYaml(local[0]!.text) as { deployments: Record<string, Record<string, unknown>>; groups: unknown };

/** A section shown alone (`metrics: {...}`, `cache: {...}`) in the complete local deployment, as an aws deployment. */
function withSection(fragment: Record<string, unknown>) {
  const d = { ...complete.deployments.local!, provider: "aws", ...fragment };
  return { deployments: { docs: d }, groups: complete.groups };
}

function check(raw: unknown) {
  const { config } = parseConfig(raw, "docs", {});
  // The adapters' constructors check what the schemas cannot (e.g. CloudFront aliases need a certificate).
  const dir = mkdtempSync(join(tmpdir(), "honua-adapters-docs-"));
  const log = new OpLog(join(dir, "ops.sqlite"));
  try {
    for (const name of Object.keys(config.deployments)) {
      if (config.deployments[name]!.provider !== "sandbox") realAdapters(name, config.deployments[name]!, { log, env: {}, cwd: dir });
    }
  } finally {
    log.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return config;
}

describe("every YAML example in docs/local.md and docs/cloud.md parses with the schemas", () => {
  it("finds the examples", () => {
    expect(local.length).toBeGreaterThanOrEqual(2);
    expect(cloud.length).toBeGreaterThanOrEqual(6);
  });

  it.each(local.map((b) => [`docs/local.md:${b.line}`, b.text]))("%s", (_, text) => {
    const raw = parseYaml(text) as Record<string, unknown>;
    check("deployments" in raw ? raw : withSection(raw));
  });

  it.each(cloud.map((b) => [`docs/cloud.md:${b.line}`, b.text]))("%s", (_, text) => {
    const raw = parseYaml(text) as Record<string, unknown>;
    check(withSection(raw));
  });

  it("the complete local deployment keeps what the page says it does", () => {
    const d = check(complete).deployments.local!;
    expect(d.cache).toMatchObject({ redis: { url: "redis://127.0.0.1:6379/0", keyPrefix: "honua:", nodeType: "cache.t4g.small" } });
    expect(d.traffic).toMatchObject({ kind: "nginx", primary: "honua_primary", candidate: "honua_candidate" });
    expect(d.monitoring.sampleEveryMinutes).toBe(1);
  });
});
