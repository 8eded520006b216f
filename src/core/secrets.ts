import { createHash } from "node:crypto";

export const sha256 = (text: string | Buffer): string => createHash("sha256").update(text).digest("hex");

/** References are kept as they are: the server (or its platform) resolves them, the agent never sees the value. */
const REFERENCE = /^(env:|aws:secretsmanager:|aws:ssm:|ref:|k8s:|secret:sha256:|\$\{)/i;
const SECRET_KEY = /(password|passwd|secret|token|apikey|api_key|credential|privatekey)/i;
/** What may follow `password=` without being a credential: a reference the server resolves. */
const REF_AHEAD = "(?!env:|aws:secretsmanager:|aws:ssm:|ref:|k8s:|secret:sha256:|\\$\\{)";
const SECRET_IN_VALUE = new RegExp(`((^|[;,\\s])(password|pwd)\\s*=\\s*${REF_AHEAD}[^;,\\s]+)|(:\\/\\/[^/@:\\s]*:[^/@\\s]+@)`, "i");

/** `KEY=value`, `key: value`, `"Key": "value"` where the key names a credential. */
const SECRET_LINE = /^(\s*(?:export\s+)?"?[\w.-]*(?:password|passwd|secret|token|apikey|api_key|credential|privatekey)[\w.-]*"?\s*[:=]\s*)(\S.*)$/i;

export const isReference = (value: string): boolean => REFERENCE.test(value.trim());

/** True when `value` (under `key`) holds a literal credential rather than a reference to one. */
export function isSecretLiteral(key: string, value: string): boolean {
  if (value === "" || isReference(value)) return false;
  return SECRET_KEY.test(key) || SECRET_IN_VALUE.test(value);
}

/** A URL as it may appear in a message: the password of `user:password@` and secret-named query values masked (works on unparseable strings too). */
export const maskUrl = (url: string): string =>
  url.replace(/(:\/\/[^/@:\s]*:)[^/@\s]+@/g, "$1***@").replace(/([?&][^=&#\s]*(?:password|passwd|pwd|secret|token|key|sig|signature|credential)[^=&#\s]*=)[^&#\s]*/gi, "$1***");

/** What the agent shows and records instead of a literal secret: stable, so a diff can tell "unchanged". */
export const secretMarker = (value: string): string => `secret:sha256:${sha256(value).slice(0, 16)}`;

export function redact(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, isSecretLiteral(k, v) ? secretMarker(v) : v]));
}

/** One line of a config file as an approver may read it: a credential-named value or an inline password masked. */
export function maskSecretLine(line: string): string {
  const named = SECRET_LINE.exec(line);
  if (named && !isReference(named[2]!.replace(/^["']/, ""))) return `${named[1]}***`;
  return line.replace(new RegExp(`((?:password|pwd)\\s*=\\s*)${REF_AHEAD}[^;,\\s"]+`, "gi"), "$1***").replace(/(:\/\/[^/@:\s]*:)[^/@\s]+@/g, "$1***@");
}
