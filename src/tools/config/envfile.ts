import type { ConfigChange } from "../../core/sections.js";
import type { OpLog } from "../../store/oplog.js";
import { FileConfigStore, type ConfigFormat } from "./file.js";

const LINE = /^(\s*)(export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)$/;

function unquote(raw: string): string {
  const v = raw.trim();
  if (v.startsWith('"')) {
    const end = v.lastIndexOf('"');
    const body = end > 0 ? v.slice(1, end) : v.slice(1);
    return body.replace(/\\(["\\$n])/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  if (v.startsWith("'")) {
    const end = v.lastIndexOf("'");
    return end > 0 ? v.slice(1, end) : v.slice(1);
  }
  // Unquoted: an inline comment needs whitespace before `#` (compose and systemd agree on that).
  return v.replace(/\s+#.*$/, "").trim();
}

const escapeDq = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$/g, "\\$").replace(/\n/g, "\\n");

/** Plain when it reads back unchanged; double-quoted otherwise. */
function quote(value: string): string {
  return /^[A-Za-z0-9_./:,@=+\-]*$/.test(value) ? value : `"${escapeDq(value)}"`;
}

/** The new value in the old one's clothes: same quotes, same spacing, same inline comment. */
function restyle(raw: string, value: string): string {
  const lead = /^\s*/.exec(raw)![0];
  const rest = raw.slice(lead.length);
  const q = rest[0];
  if (q === '"' || (q === "'" && !value.includes("'"))) {
    const end = rest.lastIndexOf(q);
    const trail = end > 0 ? rest.slice(end + 1) : "";
    return `${lead}${q}${q === '"' ? escapeDq(value) : value}${q}${trail}`;
  }
  const comment = q === "'" ? "" : (/(\s+#.*)$/.exec(rest)?.[1] ?? "");
  return `${lead}${quote(value)}${comment}`;
}

/** A compose `.env` / systemd EnvironmentFile: `KEY=VALUE` lines; comments, order and quoting of other lines are kept. */
export const envFileFormat: ConfigFormat = {
  describe: "env file",
  parse(text) {
    const out: Record<string, string> = {};
    for (const raw of text.split("\n")) {
      const line = raw.replace(/\r$/, ""); // CRLF files (edited on Windows) read the same
      if (/^\s*(#|$)/.test(line)) continue;
      const m = LINE.exec(line);
      if (m) out[m[3]!] = unquote(m[4]!);
    }
    return out;
  },
  apply(text, changes: ConfigChange[]) {
    const byKey = new Map(changes.map((c) => [c.key, c.after]));
    const done = new Set<string>();
    const lines = text.split("\n");
    const out: string[] = [];
    for (const raw of lines) {
      const cr = raw.endsWith("\r") ? "\r" : "";
      const line = raw.slice(0, raw.length - cr.length);
      const m = /^\s*#/.test(line) ? null : LINE.exec(line);
      if (!m || !byKey.has(m[3]!)) {
        out.push(raw);
        continue;
      }
      const after = byKey.get(m[3]!);
      done.add(m[3]!);
      if (after === null || after === undefined) continue;
      out.push(`${m[1]}${m[2] ?? ""}${m[3]}=${restyle(m[4]!, after)}${cr}`);
    }
    const added = changes.filter((c) => c.after !== null && !done.has(c.key));
    if (added.length) {
      // After the last non-blank line, so trailing blank lines and a missing final newline stay as they were and
      // removing the keys again gives the original bytes back.
      let at = out.length;
      while (at > 0 && /^\s*$/.test(out[at - 1]!)) at--;
      const eol = text.includes("\r\n") ? "\r" : "";
      out.splice(at, 0, ...added.map((c) => `${c.key}=${quote(c.after!)}${eol}`));
    }
    return out.join("\n");
  },
};

export class EnvFileConfigStore extends FileConfigStore {
  constructor(path: string, log: OpLog, deployment: string) {
    super(path, envFileFormat, log, deployment);
  }
}
