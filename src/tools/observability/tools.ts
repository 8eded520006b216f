import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentError } from "../../core/errors.js";
import type { ToolRun } from "./types.js";

/** Where the real tools are (Debian packages `prometheus` and `prometheus-alertmanager`). */
export interface ToolPaths {
  promtool: string;
  amtool: string;
}
export const DEFAULT_TOOLS: ToolPaths = { promtool: process.env.PROMTOOL_BIN ?? "/usr/bin/promtool", amtool: process.env.AMTOOL_BIN ?? "/usr/bin/amtool" };

/** Why a tool cannot run here, or null when it can. */
export const toolMissing = (path: string, pkg: string): string | null => (existsSync(path) ? null : `${path} not found: install the Debian package ${pkg} (promtool and amtool check every change before it is applied)`);

function run(bin: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd, timeout: 60_000, maxBuffer: 4 * 1024 * 1024, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd } }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`.trim();
      if (err && typeof err.code !== "number") return reject(new AgentError("unavailable", `${bin} could not run: ${err.message}`));
      resolve({ code: err ? Number(err.code) : 0, out });
    });
  });
}

/** Runs a tool in a fresh temp dir holding `files`; the paths it names are the file names. */
async function inDir<T>(files: Record<string, string>, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "honua-obs-"));
  try {
    for (const [name, content] of Object.entries(files)) {
      if (!/^[\w.-]+$/.test(name)) throw new AgentError("bad-input", `not a plain file name: ${name}`);
      await writeFile(join(dir, name), content);
    }
    return await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const need = (path: string, pkg: string) => {
  const missing = toolMissing(path, pkg);
  if (missing) throw new AgentError("unavailable", missing);
};

/** The real promtool and amtool, each on copies of the files in a temp dir (the deployment's files are never touched). */
export class ObservabilityTools {
  constructor(private readonly paths: ToolPaths = DEFAULT_TOOLS) {}

  async checkRules(files: Record<string, string>): Promise<ToolRun> {
    need(this.paths.promtool, "prometheus");
    const names = Object.keys(files);
    if (names.length === 0) return { command: "promtool check rules (no rule files changed)", ok: true, output: "" };
    return inDir(files, async (dir) => {
      const r = await run(this.paths.promtool, ["check", "rules", ...names], dir);
      return { command: `promtool check rules ${names.join(" ")}`, ok: r.code === 0, output: r.out };
    });
  }

  async testRules(files: Record<string, string>, tests: string): Promise<ToolRun> {
    need(this.paths.promtool, "prometheus");
    return inDir({ ...files, "honua-agent-tests.yml": tests }, async (dir) => {
      const r = await run(this.paths.promtool, ["test", "rules", "honua-agent-tests.yml"], dir);
      return { command: "promtool test rules honua-agent-tests.yml", ok: r.code === 0, output: r.out };
    });
  }

  async checkAlertmanager(content: string): Promise<ToolRun> {
    need(this.paths.amtool, "prometheus-alertmanager");
    return inDir({ "alertmanager.yml": content }, async (dir) => {
      const r = await run(this.paths.amtool, ["check-config", "alertmanager.yml"], dir);
      return { command: "amtool check-config alertmanager.yml", ok: r.code === 0, output: r.out };
    });
  }

  async routeReceivers(content: string, labels: Record<string, string>): Promise<{ receivers: string[]; run: ToolRun }> {
    need(this.paths.amtool, "prometheus-alertmanager");
    const args = Object.entries(labels).map(([k, v]) => {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) throw new AgentError("bad-input", `not a label name: ${k}`);
      return `${k}=${JSON.stringify(v)}`;
    });
    return inDir({ "alertmanager.yml": content }, async (dir) => {
      const r = await run(this.paths.amtool, ["config", "routes", "test", "--config.file=alertmanager.yml", ...args], dir);
      const line = r.out.split("\n").map((l) => l.trim()).filter((l) => l && !/^Warning:/.test(l)).at(-1) ?? "";
      const receivers = r.code === 0 && line ? line.split(",").map((x) => x.trim()).filter(Boolean) : [];
      return { receivers, run: { command: `amtool config routes test ${args.join(" ")}`, ok: r.code === 0, output: r.out } };
    });
  }
}
