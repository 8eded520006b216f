/**
 * The deterministic planner: free text -> one typed plan, a clarifying question, or a refusal.
 * It runs when no model key is configured and is the baseline the model planner is evaluated against.
 * Conservative by design: when the deployment or the change itself is unclear it asks, it never guesses.
 */
import { resolveDeployment, type AgentConfig } from "../config.js";
import { HONUA_MAX_TTL_SECONDS, HONUA_TTL_RULE, ttlProblem } from "../tools/cache/honua-options.js";
import { MetadataStoreKind, PlanResult, type WorkflowId } from "./plan.js";

type Span = readonly [number, number];
type Params = Record<string, unknown>;
interface Missing {
  param: string;
  question: string;
}
interface Extraction {
  params: Params;
  missing: Missing[];
  /** Words the params used (receivers, buckets, regions, tables), so they are never taken for a deployment name. */
  claimed: string[];
}

// ---------------------------------------------------------------------------------------------- text

const collapse = (s: string): string => s.replace(/\s+/g, " ").trim();
const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
/** `(?:a|b|c)` from a list of regex fragments, so word lists stay readable as lists. */
const oneOf = (fragments: readonly string[]): string => `(?:${fragments.join("|")})`;

/** The request twice, aligned character for character: as typed (values keep their case) and lower-cased (for matching). */
class Text {
  private constructor(
    readonly orig: string,
    readonly lower: string,
  ) {}
  static of(s: string): Text {
    const orig = collapse(s);
    // Per code point, so the two strings stay the same length even for characters whose lower case is longer.
    const lower = Array.from(orig, (c) => (c.toLowerCase().length === c.length ? c.toLowerCase() : c)).join("");
    return new Text(orig, lower);
  }
  without(spans: readonly Span[]): Text {
    let [o, l] = [this.orig, this.lower];
    for (const [s, e] of mergeSpans(spans).reverse()) {
      o = `${o.slice(0, s)} ${o.slice(e)}`;
      l = `${l.slice(0, s)} ${l.slice(e)}`;
    }
    return new Text(collapse(o), collapse(l));
  }
  slice(s: number, e?: number): Text {
    return new Text(this.orig.slice(s, e), this.lower.slice(s, e));
  }
}

function mergeSpans(spans: readonly Span[]): Span[] {
  const out: [number, number][] = [];
  for (const [s, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

function matchAll(re: RegExp, s: string): RegExpExecArray[] {
  const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`);
  const out: RegExpExecArray[] = [];
  for (let m = g.exec(s); m; m = g.exec(s)) {
    out.push(m);
    if (m[0] === "") g.lastIndex++;
  }
  return out;
}

const spansOf = (res: readonly RegExp[], s: string): Span[] =>
  res.flatMap((re) => matchAll(re, s).map((m): Span => [m.index, m.index + m[0].length]));

/** A synonym table compiled to one regex: `find` returns each mention with its canonical value, in order. */
function lexicon<V extends string>(entries: Record<V, readonly string[]>) {
  const byWord = new Map<string, V>();
  for (const [value, words] of Object.entries(entries) as [V, readonly string[]][]) {
    for (const w of words) byWord.set(w, value);
  }
  const alternatives = [...byWord.keys()].sort((a, b) => b.length - a.length).map((w) => escapeRe(w).replace(/ /g, "\\s+"));
  const source = `(?<![\\w])(?:${alternatives.join("|")})(?![\\w])`;
  return {
    source,
    words: [...byWord.keys()],
    find(lower: string): { value: V; start: number; end: number }[] {
      return matchAll(new RegExp(source), lower).flatMap((m) => {
        const value = byWord.get(collapse(m[0]));
        return value ? [{ value, start: m.index, end: m.index + m[0].length }] : [];
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------- typos

/** Trigger words worth correcting ("cahce", "redsi", "dashbaord"); deployment names are never corrected. */
const VOCABULARY = [
  "cache", "caches", "cached", "caching", "redis", "varnish", "cloudfront", "elasticache", "memcached",
  "metadata", "catalog", "catalogs", "storage", "backend", "backends", "bucket", "buckets", "azure",
  "schema", "schemas", "index", "indexes", "column", "columns", "extension", "extensions", "migration", "migrations",
  "dashboard", "dashboards", "alert", "alerts", "alerting", "alertmanager", "grafana", "prometheus", "retention",
  "recording", "postgres", "postgresql", "sqlite", "elasticsearch", "opensearch", "rollout", "latency", "rasters",
];
const VOCABULARY_SET = new Set(VOCABULARY);
/** Real words one edit away from a trigger word. */
const NOT_TYPOS = new Set([
  "backed", "vanish", "avert", "scheme", "schemes", "catching", "coaching", "cachet", "redid", "alter", "alters",
  "altered", "altering", "columnar", "postures", "reds", "alerted", "indexed", "stories", "starage",
]);

function editDistance(a: string, b: string): number {
  const w = b.length + 1;
  const d = new Array<number>((a.length + 1) * w).fill(0);
  const at = (i: number, j: number): number => d[i * w + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * w] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * w + j] = v;
    }
  }
  return at(a.length, b.length);
}

function correction(word: string, keep: ReadonlySet<string>): string | undefined {
  if (VOCABULARY_SET.has(word) || NOT_TYPOS.has(word) || keep.has(word)) return undefined;
  const budget = word.length >= 8 ? 2 : 1;
  let best: string | undefined;
  let bestDistance = budget + 1;
  for (const v of VOCABULARY) {
    if (v[0] !== word[0] || Math.abs(v.length - word.length) > budget) continue;
    const dist = editDistance(word, v);
    if (dist < bestDistance) [best, bestDistance] = [v, dist];
  }
  return best;
}

function fixTypos(s: string, keep: ReadonlySet<string>): string {
  // Whole words only, and not CamelCase names (HighErrorRate) or parts of identifiers (honua-cold, features.geom).
  return s.replace(/(?<![\w\-./:@#])[A-Za-z]{5,}(?![\w\-/:@#]|\.\w)/g, (w) => {
    const lower = w.toLowerCase();
    const plain = w === lower || w === w.toUpperCase() || w === w[0] + lower.slice(1);
    return (plain && correction(lower, keep)) || w;
  });
}

// ---------------------------------------------------------------------------------------------- vocabulary

const CACHE_TYPES = lexicon({
  redis: ["redis", "elasticache", "elasti-cache"],
  varnish: ["varnish"],
  cloudfront: ["cloudfront", "cloud front", "cdn", "cdns"],
});
const UNSUPPORTED_CACHE = /\b(memcached?|cloudflare|fastly|akamai|hazelcast|squid|dragonfly|keydb)\b/;

const STORES = lexicon({
  postgres: ["postgres", "postgresql", "pg", "psql"],
  sqlite: ["sqlite", "sqlite3"],
  files: ["files", "file-based", "file based", "json files", "flat files", "filesystem", "file system", "disk"],
  elasticsearch: ["elasticsearch", "elastic search", "elastic", "es"],
  opensearch: ["opensearch", "open search"],
});
const UNSUPPORTED_STORE = /\b(mongodb|mongo|mysql|mariadb|dynamodb|dynamo|cassandra|oracle|sql server|mssql|couchdb|redis|firestore|bigquery|snowflake)\b/;

const BACKENDS = lexicon({
  s3: ["s3", "aws s3", "amazon s3", "minio", "s3-compatible"],
  "azure-blob": ["azure blob storage", "azure blob", "azure-blob", "azure", "blob storage", "blob"],
  gcs: ["gcs", "google cloud storage", "google storage", "gcp storage", "gcp"],
  filesystem: ["filesystem", "file system", "local disk", "local filesystem", "local storage", "nfs", "disk", "mounted volume", "efs"],
});
const UNSUPPORTED_BACKEND = /\b(hdfs|s?ftp|dropbox|google drive|onedrive|backblaze)\b/;

const WORKFLOW_TITLES: Record<WorkflowId, string> = {
  "add-caching-layer": "add a caching layer",
  "modify-metadata-storage": "move the metadata store",
  "add-storage-backend": "add a storage backend",
  "upgrade-database-schema": "change the database schema",
  "modify-observability": "change alerts, dashboards or retention",
};

const CAPABILITIES =
  "I can add a caching layer (redis, varnish, cloudfront), move the metadata store (postgres, sqlite, files, " +
  "elasticsearch, opensearch), add a storage backend (s3, azure-blob, gcs, filesystem), change the database schema, " +
  "or change observability (alert rules, recording rules, dashboards, alert routes, Prometheus retention).";
const REFUSALS = {
  "out-of-scope": `That isn't one of the changes I make. ${CAPABILITIES}`,
  destructive: `I won't do that: deleting or wiping deployments, databases, data or infrastructure is not one of my workflows. ${CAPABILITIES}`,
  manipulation: `Approvals come from the deployment's policy; a request can't skip, disable or grant them. ${CAPABILITIES}`,
} as const;
type RefusalKind = keyof typeof REFUSALS;

// ---------------------------------------------------------------------------------------------- request hygiene

const normalizeChars = (s: string): string =>
  s
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2192\u21d2\u27f6]/g, "->")
    .replace(/[\u2013\u2014]/g, "-")
    .replace(/\s*(?:percent|pct)\b/gi, "%")
    .replace(/<@[\w]+>|(?<!\w)@honua[\w-]*/gi, " ");

/**
 * Attempts to steer the agent. They are cut out of the request: the plan has no field for approvals,
 * so whatever legitimate change is left gets the normal gated plan, and nothing left means a refusal.
 */
const SKIP = [
  "skip", "skipping", "bypass", "bypassing", "disable", "disabling", "turn off", "switch off", "remove", "ignore",
  "override", "circumvent", "avoid", "suspend", "waive", "without", "no", "forget",
];
const SAFEGUARDS = [
  "approvals?", "approval gates?", "approval steps?", "gates?", "gating", "sign-?offs?", "reviews?", "confirmations?",
  "two-person rule", "2-person rule", "checks", "guardrails", "interrupts?", "auto-?rollbacks?", "rollbacks?", "backups?", "locks?",
];
const MANIPULATION = [
  /\bignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier|your|system|all|these|those)(?:\s+(?:instructions?|rules|prompts?|guidelines|policies|constraints|messages?))?/,
  new RegExp(`\\b${oneOf(SKIP)}\\s+(?:the\\s+|all\\s+|any\\s+|every\\s+|of\\s+)*(?:human\\s+|manual\\s+|safety\\s+)?${oneOf(SAFEGUARDS)}\\b`),
  /\bauto-?approv\w*(?:\s*[:=]?\s*\[[^\]]*\]|\s+(?:it|this|everything|all|gates?|provision|traffic|delete))*/,
  /\b(?:just\s+)?approve\s+(?:it|this|that|everything|all|them|yourself|automatically|on my behalf|every\w*)\b/,
  /\b(?:it'?s\s+|already\s+|pre-?)?approved(?:\s+(?:by|from)\s+[\w@.-]+)?/,
  /\b(?:don'?t|do not|no need to|never)\s+(?:ask|wait|bother|stop|pause)\b(?:\s+(?:for|me|anyone|approval|on|at))*/,
  /\byou are now\b[^.,;]*|\bpretend\b[^.,;]*|\b(?:system prompt|developer mode|jailbreak|admin mode|god mode|sudo mode)\b/,
  /\bas (?:an?\s+)?(?:admin|administrator|root|superuser)\b/,
  /\bi(?:'m| am)\s+(?:the\s+|an?\s+)?(?:admin|approver|on-?call|owner|cto|boss)\b/,
  /\bapprov\w*\b/,
];

const PREAMBLE = new RegExp(
  `^(?:${oneOf([
    "hey", "hi", "hello", "yo", "ok", "okay", "so", "please", "pls", "plz", "kindly", "bot", "agent", "honua", "can you",
    "could you", "would you", "will you", "can we", "could we", "let's", "lets", "we need to", "we need", "i need you to",
    "i need", "i want you to", "i want to", "i want", "i'd like you to", "i'd like to", "i'd like", "we'd like to",
    "we want to", "go ahead and", "time to", "need to", "want to", "help me", "quick one", "then", "and", "also",
  ])}\\b[\\s,:;!.-]*)+`,
);
const TRAILER = /(?:[\s,;:!?.]+|\b(?:please|pls|plz|thanks|thank you|thx|ty|asap|cheers|kthx|and|then)\b)+$/;

function tidy(t: Text): Text {
  const lead = PREAMBLE.exec(t.lower);
  const trail = TRAILER.exec(t.lower);
  const spans: Span[] = [];
  if (lead) spans.push([0, lead[0].length]);
  if (trail) spans.push([trail.index, t.lower.length]);
  const leadingPunctuation = /^[\s,;:.!-]+/.exec(t.lower);
  if (leadingPunctuation) spans.push([0, leadingPunctuation[0].length]);
  return spans.length ? tidy(t.without(spans)) : t;
}

// ---------------------------------------------------------------------------------------------- refusals

/** Requests that are not modifications at all (questions, restarts, scaling), recognised by how they start. */
const NOT_A_CHANGE = new RegExp(
  `^${oneOf([
    "scale", "restart", "reboot", "redeploy", "deploy", "roll ?back", "rollback", "revert", "undo", "downgrade", "rotate",
    "flush", "clear", "invalidate", "silence", "mute", "ack", "acknowledge", "resize", "failover", "fail over", "promote",
    "restore", "show", "list", "what", "what's", "whats", "why", "who", "where", "tell", "explain", "write", "compose",
    "check", "inspect", "analy[sz]e", "audit", "describe", "ping", "status", "is", "are", "does", "do", "did", "was",
    "were", "how", "give me",
  ])}\\b`,
);
const OFF_TOPIC = [
  /\b(?:replicas?|poems?|haikus?|jokes?|songs?|stor(?:y|ies)|essays?|limericks?|recipes?|weather|bitcoin|autoscal\w*)\b/,
  /\b(?:show|give|send|tell|print|dump|reveal|leak|post)\b.*\b(?:passwords?|credentials?|secrets?|keys?|tokens?)\b/,
  // Software upgrades ("upgrade redis to 7.2"), not schema upgrades.
  /\b(?:upgrade|update|bump|patch|downgrade)\s+(?:the\s+)?(?:[\w-]+\s+){0,2}(?:to\s+(?:version\s+|v)?\d+(?:\.\d+)*(?![\w%])|version\b)/,
];
const DESTRUCTIVE_VERB = new RegExp(
  `\\b${oneOf([
    "delete", "destroy", "drop", "wipe", "nuke", "purge", "erase", "truncate", "tear down", "teardown", "shut down",
    "shutdown", "terminate", "decommission", "remove", "deprovision", "rm -rf", "kill", "obliterate", "trash",
  ])}\\b`,
);
/** What a destructive-sounding verb may act on inside a workflow (an index, an alert...): gated there, not refused. */
const SAFE_OBJECT = new RegExp(
  `\\b${oneOf([
    "index", "indexes", "indices", "columns?", "constraints?", "extension", "default", "alerts?", "alerting", "rules?",
    "dashboards?", "panels?", "routes?", "routing", "receiver", "retention", "ttl", "threshold", "below", "under", "table",
    "view", "trigger", "sequence",
  ])}\\b`,
);
const EVERYTHING = /\b(?:all|every|everything|entire|whole|any)\b/;
const DESTRUCTIVE_SQL = /^(?:drop\s+(?:database|schema|owned)|truncate|delete\s+from)\b|\bcascade\b/i;

function destructive(lower: string): boolean {
  return matchAll(DESTRUCTIVE_VERB, lower).some((m) => {
    const rest = lower.slice(m.index + m[0].length);
    const window = (rest.split(/[,;.]|\band\b|\bthen\b/)[0] ?? "").split(/\s+/).slice(0, 7).join(" ");
    if (/^\s*from\b/.test(rest) && /^delete/.test(m[0])) return true;
    return EVERYTHING.test(window) || !SAFE_OBJECT.test(window);
  });
}

function refusal(t: Text, statements: readonly string[]): RefusalKind | undefined {
  if (statements.some((s) => DESTRUCTIVE_SQL.test(s)) || destructive(t.lower)) return "destructive";
  if (NOT_A_CHANGE.test(t.lower) || OFF_TOPIC.some((re) => re.test(t.lower))) return "out-of-scope";
  return undefined;
}

// ---------------------------------------------------------------------------------------------- SQL

const DDL =
  /\b(?:(?:create|alter|drop)\s+(?:unique\s+)?(?:index|table|extension|view|materialized\s+view|schema|type|sequence|trigger|function|database)|comment\s+on|reindex|truncate|delete\s+from)\b/i;

/** DDL statements in the request (code spans, or SQL typed inline), and the request with them cut out. */
function extractSql(raw: string, config: AgentConfig): { statements: string[]; rest: string } {
  const statements: string[] = [];
  const split = (sql: string): string[] =>
    sql.split(";").map(collapse).filter((s) => s.length > 0);
  let rest = raw.replace(/```(?:sql)?([\s\S]*?)```|`([^`]+)`/gi, (span, block?: string, inline?: string) => {
    const sql = block ?? inline ?? "";
    if (!DDL.test(sql)) return span;
    statements.push(...split(sql));
    return " ";
  });
  if (statements.length > 0) return { statements, rest };

  const start = DDL.exec(rest);
  // Lower-case "create index on x" is a description; SQL is shouted, terminated or has a column list.
  if (!start || (start[0] !== start[0].toUpperCase() && !/[;(]/.test(rest.slice(start.index)))) return { statements, rest };
  const prose: string[] = [rest.slice(0, start.index)];
  const fragments = rest.slice(start.index).split(";");
  fragments.forEach((fragment, i) => {
    const at = DDL.exec(fragment);
    if (!at) return void prose.push(fragment);
    prose.push(fragment.slice(0, at.index));
    let sql = fragment.slice(at.index);
    if (i === fragments.length - 1) {
      // A trailing "on prod" typed in prose style after SQL belongs to the request, not the statement.
      const tail = /\s+(on|in|for|against|to)\s+(?:the\s+)?([A-Za-z][\w-]*)(?:\s+(?:deployment|environment|env|cluster))?\s*[.!]?\s*$/.exec(sql);
      const shouted = at[0] === at[0].toUpperCase();
      if (tail && (resolveDeployment(config, tail[2] ?? "") || (shouted && tail[1] === tail[1]?.toLowerCase()))) {
        prose.push(tail[0]);
        sql = sql.slice(0, tail.index);
      }
    }
    statements.push(...split(sql));
  });
  rest = prose.join(" ");
  return { statements, rest };
}

// ---------------------------------------------------------------------------------------------- which workflow

const MOVE = /\b(?:move|moving|migrate|migrating|switch|switching|swap|port|transfer|shift|replatform|replace|change)\b/;
const SIGNALS: Record<WorkflowId, readonly (readonly [RegExp, number])[]> = {
  "modify-observability": [
    // Outweighs every other workflow's words together: in "a dashboard for storage backend latency" they are the subject.
    [/\b(?:alerts?|alerting|alertmanager|dashboards?|grafana|prometheus|recording rules?|retention|alarms?)\b/, 12],
    [/\bpage (?:me|us|oncall|on-call|the)\b|\bnotify (?:me|us)\b|\bthreshold\b/, 3],
  ],
  "upgrade-database-schema": [
    [/\b(?:index|indexes|indices|columns?|schemas?|ddl|constraints?|not null|primary key|foreign key)\b/, 5],
    [/\b(?:extensions?|postgis|migrations?)\b/, 3],
    [/\b(?:create|drop|alter|rename|partition)\s+(?:the\s+|a\s+|an\s+)?(?:[\w.]+\s+)?tables?\b/, 5],
    [/\btables?\b/, 1],
  ],
  "add-caching-layer": [
    [new RegExp(`\\b(?:cache|caches|cached|caching)\\b|${CACHE_TYPES.source}|${UNSUPPORTED_CACHE.source}`), 4],
    [/\bttl\b/, 3],
  ],
  "add-storage-backend": [
    [/\bstorage backends?\b/, 5],
    [new RegExp(`\\b(?:backends?|buckets?|object storage)\\b|s3:\\/\\/|gs:\\/\\/|${BACKENDS.source}`), 3],
    [/\b(?:storage|nfs|cold)\b/, 2],
    [/\b(?:rasters?|cogs?|imagery)\b/, 1],
    [MOVE, 1],
  ],
  "modify-metadata-storage": [
    [/\b(?:metadata|catalogs?|stac)\b/, 4],
    [new RegExp(STORES.source), 1],
    [new RegExp(`\\bfrom\\s+${STORES.source}\\s+(?:to|->|into)\\s+${STORES.source}`), 2],
    [MOVE, 1],
    [UNSUPPORTED_STORE, 1],
  ],
};
/** On a tie the more specific workflow wins: an alert about the cache is observability, a CDN before a bucket is caching. */
const PRIORITY: readonly WorkflowId[] = [
  "modify-observability",
  "upgrade-database-schema",
  "add-caching-layer",
  "add-storage-backend",
  "modify-metadata-storage",
];
const MIN_SCORE = 3;

function strongest(lower: string, sql: boolean): WorkflowId | undefined {
  let best: WorkflowId | undefined;
  let bestScore = MIN_SCORE - 1;
  for (const wf of PRIORITY) {
    const base = wf === "upgrade-database-schema" && sql ? 10 : 0;
    const score = SIGNALS[wf].reduce((n, [re, weight]) => n + (re.test(lower) ? weight : 0), base);
    if (score > bestScore) [best, bestScore] = [wf, score];
  }
  return best;
}

/** Verbs that start a new request inside one message: "add redis, then move metadata to opensearch". */
const CLAUSE_VERBS = [
  "add", "set", "create", "move", "migrate", "switch", "route", "send", "put", "enable", "configure", "remove", "delete",
  "drop", "change", "update", "slap", "throw", "spin", "hook", "wire", "mount", "attach", "bump", "raise", "lower",
  "increase", "decrease", "alert", "page", "install", "turn", "make", "use", "keep", "build",
];
const CLAUSE_BREAK = new RegExp(
  String.raw`\s*(?:;|\.\s+|,?\s+(?:and|then|also|plus|&)\s+(?:then\s+|also\s+)?(?=${oneOf(CLAUSE_VERBS)}\b)|,\s*(?=${oneOf(CLAUSE_VERBS)}\b))`,
);

function clauses(t: Text): Text[] {
  const out: Text[] = [];
  let from = 0;
  for (const m of matchAll(CLAUSE_BREAK, t.lower)) {
    if (m.index > from) out.push(t.slice(from, m.index));
    from = m.index + m[0].length;
  }
  out.push(t.slice(from));
  return out.filter((c) => c.lower.trim() !== "");
}

function chooseWorkflow(t: Text, sql: boolean): WorkflowId | WorkflowId[] | undefined {
  const whole = strongest(t.lower, sql);
  if (!whole) return undefined;
  const perClause = unique(clauses(t).flatMap((c) => strongest(c.lower, false) ?? []));
  // The SQL was cut out of `t`: a prose clause asking for another change ("add redis, then DROP TABLE x") is a
  // second change, not a preamble to the SQL.
  if (sql && perClause.some((w) => w !== "upgrade-database-schema")) return unique(["upgrade-database-schema", ...perClause]);
  return perClause.length > 1 ? perClause : whole;
}

// ---------------------------------------------------------------------------------------------- deployment

const PREPOSITIONS = new Set(["to", "in", "on", "for", "of", "at", "against", "from", "into", "onto", "across"]);
const DETERMINERS = new Set(["the", "our", "my", "a", "an", "this", "that"]);
const ENVIRONMENT_WORDS = new Set(["deployment", "environment", "env", "cluster", "stack", "instance", "site", "tenant"]);
/** A word followed by one of these names a table, a bucket, a channel... not a deployment. */
const THING_WORDS = new Set([
  "table", "tables", "column", "columns", "index", "bucket", "container", "store", "backend", "endpoint", "endpoints",
  "api", "layer", "layers", "collection", "collections", "dashboard", "channel", "team", "schema", "field", "fields",
  "database", "db", "alert", "alerts", "metric", "metrics", "tiles", "data", "queries", "traffic", "requests",
]);
/** Words that follow a preposition in ordinary requests and are never deployment names. */
const COMMON_WORDS = [
  "it", "this", "that", "them", "all", "both", "everything", "everywhere", "anything", "me", "us", "you", "front",
  "top", "place", "there", "here", "now", "today", "tomorrow", "tonight", "stages", "steps", "step", "batches", "batch",
  "tiles", "tile", "rasters", "raster", "data", "features", "feature", "items", "item", "collections", "collection",
  "layers", "layer", "api", "apis", "endpoint", "endpoints", "requests", "request", "traffic", "users", "service",
  "services", "server", "servers", "honua", "metadata", "catalog", "stac", "cache", "storage", "backend", "bucket",
  "buckets", "index", "column", "table", "tables", "schema", "database", "db", "alerts", "alert", "dashboard",
  "dashboards", "latency", "errors", "error", "reads", "writes", "queries", "query", "geom", "geometry", "performance",
  "speed", "cost", "each", "every", "new", "old", "cold", "hot", "warm", "critical", "warning", "info", "oncall",
  "on-call", "slack", "email", "pagerduty", "opsgenie", "grafana", "prometheus", "alertmanager", "retention",
  "minutes", "minute", "seconds", "hours", "days", "weeks", "months", "years", "ms", "hit", "ratio", "rate", "gradual",
  "gradually", "once", "default", "defaults", "later", "phases", "chunks", "parallel", "peak", "case", "order",
  "region", "west", "east", "europe", "north", "south", "central", "caching", "ttl", "rollout", "then",
  "and", "or", "with", "p95", "p99", "p50", "disk", "usage", "cpu", "memory", "archive", "backup", "backups",
  "images", "imagery", "cogs", "objects", "files", "uploads", "scenes", "mosaics", "ogc", "wms", "wmts", "wfs",
  "postgis", "extension", "migration", "migrations", "version", "latest", "team", "channel", "someone", "anyone",
  "good", "real", "sure", "speedup", "elsewhere", "use", "mount", "path",
];
const NOT_DEPLOYMENTS = new Set([
  ...COMMON_WORDS,
  ...DETERMINERS,
  ...CACHE_TYPES.words,
  ...STORES.words,
  ...BACKENDS.words,
  ...VOCABULARY,
]);

interface Token {
  start: number;
  end: number;
  word: string;
  lower: string;
  possessive: boolean;
  colon: boolean;
  next: string;
}

function tokenize(t: Text): Token[] {
  const raw = matchAll(/\S+/, t.orig);
  return raw.map((m, i) => {
    const lead = /^[("'`[<*_]*/.exec(m[0])?.[0].length ?? 0;
    const trail = /(?:'s)?[)"'`\]>.,!?:;*]*$/i.exec(m[0].slice(lead))?.[0] ?? "";
    const start = m.index + lead;
    const end = m.index + m[0].length - trail.length;
    const word = t.orig.slice(start, end);
    return {
      start,
      end,
      word,
      lower: word.toLowerCase(),
      possessive: /^'s/i.test(trail),
      colon: trail.includes(":"),
      next: (raw[i + 1]?.[0] ?? "").toLowerCase(),
    };
  });
}

type DeploymentFinding =
  | { kind: "known"; name: string; spans: Span[] }
  | { kind: "several"; names: string[]; spans: Span[] }
  | { kind: "none"; spans: Span[] };

/** A rollout "stage" is not the staging alias: "stage 1", "stage by stage", "each stage". */
const ORDINALS = new Set([
  "each", "every", "per", "first", "second", "third", "final", "last", "next", "one", "a", "another", "single", "canary",
  "rollout", "by", "rolling",
]);

function knownDeployments(t: Text, config: AgentConfig): DeploymentFinding {
  const toks = tokenize(t);
  const hits = toks.flatMap((tok, i) => {
    const name = resolveDeployment(config, tok.word);
    const prev = toks[i - 1]?.lower ?? "";
    const endsPhrase = tok.end < t.orig.length && t.orig[tok.end] !== " ";
    if (!name || (!endsPhrase && /^(?:\d+%?|by)$/.test(tok.next)) || ORDINALS.has(prev)) return [];
    const positioned =
      PREPOSITIONS.has(prev) || tok.possessive || tok.colon || ENVIRONMENT_WORDS.has(tok.next.replace(/\W+$/, "")) ||
      (DETERMINERS.has(prev) && PREPOSITIONS.has(toks[i - 2]?.lower ?? "")) ||
      // "to prod and staging": the second name is in the same position as the first.
      (/^(?:and|or|&|\+)$/.test(prev) && resolveDeployment(config, toks[i - 2]?.word ?? "") !== undefined);
    return [{ name, positioned, span: phraseSpan(t, tok) }];
  });
  const spans = hits.map((h) => h.span);
  const preferred = hits.some((h) => h.positioned) ? hits.filter((h) => h.positioned) : hits;
  const names = unique(preferred.map((h) => h.name));
  if (names.length === 0) return { kind: "none", spans };
  if (names.length > 1) return { kind: "several", names, spans };
  return { kind: "known", name: names[0] ?? "", spans };
}

/** "on the prod deployment", "prod's", "prod:" — the whole phrase, so it can be cut from descriptions. */
function phraseSpan(t: Text, tok: Token): Span {
  const before = /(?:\b(?:on|in|for|to|at|of|from|against|into|onto)\s+(?:the\s+)?)$/.exec(t.lower.slice(0, tok.start));
  const after = /^(?:'s|:)?(?:\s+(?:deployment|environment|env|cluster))?/.exec(t.lower.slice(tok.end));
  return [before ? before.index : tok.start, tok.end + (after?.[0].length ?? 0)];
}

/** A plain name in a deployment position that is not a known deployment: asked about, never guessed. */
function unknownDeployment(t: Text, claimed: ReadonlySet<string>): string | undefined {
  const toks = tokenize(t);
  const hit = toks.find((tok, i) => {
    if (!/^[a-z][a-z0-9_-]{0,39}$/i.test(tok.word) || NOT_DEPLOYMENTS.has(tok.lower) || claimed.has(tok.lower)) return false;
    const next = tok.next.replace(/[.,!?;:]+$/, "");
    if (tok.possessive || ENVIRONMENT_WORDS.has(next) || (i === 0 && tok.colon)) return true;
    const prev = toks[i - 1]?.lower ?? "";
    return PREPOSITIONS.has(prev) && !THING_WORDS.has(next) && !/^[(.[]/.test(tok.next) && !/^\d/.test(next);
  });
  return hit?.word;
}

function nearestName(word: string, config: AgentConfig): string | undefined {
  const lower = word.toLowerCase();
  for (const [name, d] of Object.entries(config.deployments)) {
    if ([name, ...d.aliases].some((n) => lower.length >= 3 && editDistance(lower, n.toLowerCase()) <= 2)) return name;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------- numbers

const UNIT_SECONDS: Record<string, number> = {
  ms: 0.001, millisecond: 0.001, milliseconds: 0.001,
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86_400, day: 86_400, days: 86_400,
  w: 604_800, week: 604_800, weeks: 604_800,
  month: 2_592_000, months: 2_592_000,
  y: 31_536_000, year: 31_536_000, years: 31_536_000,
};
const UNIT = "(ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|months?|y|years?)";
const seconds = (n: string, unit = "s"): number => Number(n) * (UNIT_SECONDS[unit] ?? 1);

/** A Prometheus duration ("30d", "2w", "5m"); months have no Prometheus unit and become days. */
function promDuration(n: string, unit: string): string {
  const u = unit.toLowerCase();
  if (/^months?$/.test(u)) return `${Number(n) * 30}d`;
  if (u === "ms" || /^millis/.test(u)) return `${n}ms`;
  return `${n}${u[0] ?? "s"}`;
}

const count = (s: string): number => {
  const n = Number(s.replace(/[,_]/g, "").replace(/k$/i, ""));
  return /k$/i.test(s) ? n * 1000 : n;
};

// ---------------------------------------------------------------------------------------------- add-caching-layer

const TTL = [
  new RegExp(`\\bttl\\s*(?:of|=|:|to|is|at|around|~)?\\s*(\\d+(?:\\.\\d+)?)\\s*${UNIT}?(?![\\w%])`),
  new RegExp(`\\b(\\d+(?:\\.\\d+)?)[\\s-]*${UNIT}[\\s-]+ttl\\b`),
  new RegExp(`\\b(?:expire|expires|expiry|expiration|expiring)\\s*(?:after|in|of|=|:|at)?\\s*(\\d+(?:\\.\\d+)?)\\s*${UNIT}\\b`),
  new RegExp(`\\bcache[ds]?\\s+(?:[a-z]+\\s+){0,3}?for\\s+(\\d+(?:\\.\\d+)?)\\s*${UNIT}\\b`),
];
const NOT_A_STEP = String.raw`(?!\d|\s*(?:ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|k|x|gb|mb|replicas?|rows|records)\b)`;
const STEP = String.raw`\d{1,3}\s*%?${NOT_A_STEP}`;
const STEP_LIST = new RegExp(
  String.raw`(?<![\w.])${STEP}(?:\s*(?:,\s*(?:then|and)?|\/|->|=>|>|\bthen\b|\band\b|\bto\b)\s*${STEP})+`,
);
const ROLLOUT_CONTEXT = /\b(?:roll ?-?outs?|rolling|roll out|stages?|staged|steps?|canary|ramp\w*|gradual\w*|phases?|increments?|traffic|then)\b/;
const FIRST_STEP = new RegExp(
  String.raw`\b(?:start(?:ing)?|canary|begin(?:ning)?|first|initially|roll ?-?out|ramp(?:ing)?)(?:\s+(?:at|with|of|from|to))?\s+(\d{1,3})(?:\s*%|${NOT_A_STEP})`,
);
const STRAIGHT_TO_100 = /\b(?:straight|directly|immediately)\s+(?:to\s+)?100\s*%|\ball at once\b|\bin one go\b|\b100\s*%\s+(?:immediately|right away|at once)/;
const STEPS_QUESTION = "Rollout steps must be percentages that increase and end at 100 (e.g. 10, 50, 100). Which steps should I use?";

function rolloutSteps(lower: string): number[] | "invalid" | undefined {
  const list = STEP_LIST.exec(lower);
  let steps: number[] | undefined;
  // A bare "10/50/100" is a rollout when it ends at 100 or the request talks about rolling out.
  if (list && (/%|\b100\s*$/.test(list[0]) || ROLLOUT_CONTEXT.test(lower))) steps = (list[0].match(/\d+/g) ?? []).map(Number);
  else if (STRAIGHT_TO_100.test(lower)) steps = [100];
  else {
    const first = FIRST_STEP.exec(lower);
    if (first) steps = [Number(first[1])];
  }
  if (!steps) return undefined;
  if (steps[steps.length - 1] !== 100) steps.push(100);
  const valid = steps.every((v, i) => v >= 1 && v <= 100 && (i === 0 || v > (steps[i - 1] ?? 0)));
  return valid ? steps : "invalid";
}

function caching(t: Text): Extraction {
  const params: Params = {};
  const missing: Missing[] = [];
  const unsupported = UNSUPPORTED_CACHE.exec(t.lower);
  const types = unique(CACHE_TYPES.find(t.lower).map((m) => m.value));
  if (unsupported) {
    missing.push({ param: "cacheType", question: `${unsupported[1]} isn't a cache I can set up. Should I use redis, varnish or cloudfront?` });
  } else if (types.length === 1) params.cacheType = types[0];

  const ttl = TTL.map((re) => re.exec(t.lower)).find((m) => m);
  if (ttl) {
    const value = seconds(ttl[1] ?? "", ttl[2]);
    if (ttlProblem(value) === null) params.ttlSeconds = value;
    else {
      const unit = ttl[2] ?? "s";
      const given = `${ttl[1] ?? ""} ${unit}${UNIT_SECONDS[unit] === 1 ? "" : ` (${Number(value.toPrecision(6))} s)`}`;
      const why = Number.isInteger(value) ? `${HONUA_TTL_RULE}` : `it is not a whole number of seconds, and Honua takes cache TTLs in whole seconds from 1 to ${HONUA_MAX_TTL_SECONDS} (1 day)`;
      missing.push({ param: "ttlSeconds", question: `A TTL of ${given} can't be set: ${why}. What TTL should I use (at most ${HONUA_MAX_TTL_SECONDS} s)?` });
    }
  }
  const steps = rolloutSteps(t.lower);
  if (steps === "invalid") missing.push({ param: "rolloutSteps", question: STEPS_QUESTION });
  else if (steps) params.rolloutSteps = steps;
  return { params, missing, claimed: [] };
}

// ---------------------------------------------------------------------------------------------- modify-metadata-storage

const STORE_NAMES = MetadataStoreKind.options.join(", ");
const FROM_MARK = new RegExp(
  `\\b${oneOf(["from", "off", "off of", "out of", "away from", "leaving", "currently on", "currently in", "currently", "replace", "replacing", "instead of"])}` +
    String.raw`\s+(?:the\s+)?(?:current\s+|old\s+|existing\s+)?$`,
);
const TO_MARK = /(?:\b(?:to|into|onto|over to|with|use|using|for|towards?|by|on|in)\s+(?:the\s+|an?\s+)?(?:new\s+)?|(?:->|=>|>)\s*)$/;
const ARROW_AFTER = /^\s*(?:->|=>|>|to|into)\s+/;
const BATCH = [
  /\bbatch(?:es)?\s+(?:size\s+)?(?:of\s+)?(?:=|:|to)?\s*(\d[\d,_]*k?)\b/,
  /\bbatch size\s*(?:of|=|:|to)?\s*(\d[\d,_]*k?)\b/,
  /\b(\d[\d,_]*k?)\s*(?:rows|records|items|docs|documents|entries)?\s*(?:at a time|per batch|a batch)\b/,
  /\bin\s+(\d[\d,_]*k?)s\b/,
];

function metadata(t: Text): Extraction {
  const params: Params = {};
  const missing: Missing[] = [];
  const mentions = STORES.find(t.lower).map((m) => {
    const before = t.lower.slice(Math.max(0, m.start - 24), m.start);
    const role = FROM_MARK.test(before) ? "from" : ARROW_AFTER.test(t.lower.slice(m.end)) ? "from" : TO_MARK.test(before) ? "to" : "unmarked";
    return { ...m, role };
  });
  // "postgres metadata to sqlite": an unmarked store before the target is the source; alone, it is the target.
  const to = mentions.filter((m) => m.role === "to").at(-1);
  const from = mentions.find((m) => m.role === "from") ?? mentions.find((m) => m.role === "unmarked" && to && m.start < to.start);
  const target = to ?? mentions.find((m) => m.role === "unmarked" && m.value !== from?.value);
  if (from) params.fromStore = from.value;
  if (target) params.toStore = target.value;

  const unsupported = UNSUPPORTED_STORE.exec(t.lower);
  if (!target) {
    const question = unsupported
      ? `${unsupported[1]} isn't a metadata store I support. Which should I move to: ${STORE_NAMES}?`
      : `Which metadata store should I move to: ${STORE_NAMES}?`;
    missing.push({ param: "toStore", question });
  } else if (from && from.value === target.value) {
    missing.push({ param: "toStore", question: `The metadata is already on ${target.value}. Which store should I move it to: ${STORE_NAMES}?` });
  }
  const batch = BATCH.map((re) => re.exec(t.lower)).find((m) => m);
  if (batch) {
    const size = count(batch[1] ?? "");
    if (Number.isInteger(size) && size > 0 && size <= 100_000) params.batchSize = size;
    else missing.push({ param: "batchSize", question: "The batch size must be between 1 and 100000. What batch size should I use?" });
  }
  return { params, missing, claimed: [] };
}

// ---------------------------------------------------------------------------------------------- add-storage-backend

const AZURE_REGIONS = [
  "eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northcentralus", "southcentralus", "westcentralus",
  "northeurope", "westeurope", "uksouth", "ukwest", "francecentral", "germanywestcentral", "swedencentral",
  "switzerlandnorth", "norwayeast", "eastasia", "southeastasia", "japaneast", "japanwest", "australiaeast",
  "australiasoutheast", "canadacentral", "canadaeast", "brazilsouth", "centralindia", "southindia", "koreacentral",
  "uaenorth", "southafricanorth",
];
const DIRECTIONS = "(?:north|south|east|west|central|northeast|southeast|northwest|southwest)";
const REGION = new RegExp(
  `\\b(?:(?:us|eu|ap|sa|ca|me|af|il|mx)(?:-gov)?-${DIRECTIONS}-\\d|(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-${DIRECTIONS}\\d|${AZURE_REGIONS.join("|")})\\b`,
);
const NOT_BUCKET_NAMES = new Set([
  "for", "on", "in", "to", "the", "with", "named", "called", "and", "at", "per", "a", "an", "new", "our", "my", "of",
  "s3", "gcs", "azure", "blob", "that", "this",
]);
const BUCKET = [
  /\b(?:bucket|container)\s+(?:named\s+|called\s+)?["'`]?([a-z0-9][a-z0-9._-]{1,61}[a-z0-9])/i,
  /["'`]?([a-z0-9][a-z0-9._-]*[-_.0-9][a-z0-9._-]*)["'`]?\s+(?:bucket|container)\b/i,
];
const URL = /\b(?:s3|gs):\/\/([a-z0-9][a-z0-9._-]+)(?:\/(\S*))?/i;
const PATH = /(?:^|\s)(\.?\/[\w.-]+(?:\/[\w.-]*)*)/;
const DATA_NOUN = "(?:rasters?|data|tiles|imagery|images|cogs?|scenes|datasets?|files|objects|layers|uploads|mosaics)";
const AGE = String.raw`(?:\s+(?:older than|from before|before)\s+(?:\d+\s*[a-z]+|\d{4}))?`;
const PLACEMENT = [
  /\bplacement\s*[:=]\s*([^,;]+)/i,
  new RegExp(`\\b(?:(?:cold|hot|warm|archived?|archival|old(?:er)?|historical|historic|infrequently[- ]accessed|rarely[- ]accessed|raw|large|backup)\\s+)+${DATA_NOUN}${AGE}`, "i"),
  new RegExp(`\\b${DATA_NOUN}\\s+(?:older than|from before|before)\\s+(?:\\d+\\s*[a-z]+|\\d{4})`, "i"),
];

function storage(t: Text): Extraction {
  const params: Params = {};
  const missing: Missing[] = [];
  const unsupported = UNSUPPORTED_BACKEND.exec(t.lower);
  const mentions = BACKENDS.find(t.lower).filter((m) => !FROM_MARK.test(t.lower.slice(Math.max(0, m.start - 24), m.start)));
  const values = unique(mentions.map((m) => m.value));
  if (unsupported) {
    missing.push({ param: "backend", question: `${unsupported[1]} isn't a storage backend I support. Should I use s3, azure-blob, gcs or filesystem?` });
  } else if (values.length === 1) params.backend = values[0];

  const url = URL.exec(t.orig);
  const region = REGION.exec(t.lower);
  const bucket = url?.[1] ?? BUCKET.map((re) => re.exec(t.orig)?.[1]).find((b) => b && !NOT_BUCKET_NAMES.has(b.toLowerCase()));
  const path = url?.[2] || PATH.exec(t.orig)?.[1];
  const placement = PLACEMENT.map((re) => re.exec(t.orig)).find((m) => m);
  if (region) params.region = region[0];
  if (bucket) params.bucket = bucket;
  if (path) params.path = path;
  const where = collapse(placement?.[1] ?? placement?.[0] ?? "");
  if (where) params.placement = where;
  if (!params.backend && url) params.backend = /^gs:/i.test(url[0]) ? "gcs" : "s3";
  return { params, missing, claimed: [region?.[0], bucket].flatMap((w) => (w ? [w.toLowerCase()] : [])) };
}

// ---------------------------------------------------------------------------------------------- upgrade-database-schema

/** Something concrete to change; "upgrade the schema" alone is not. */
const CONCRETE_CHANGE =
  /\b(?:index(?:es)?|indices|columns?|constraints?|extensions?|tables?|views?|triggers?|sequences?|partitions?|primary key|foreign key|not null|default|rename|enum|type|postgis|gist|gin|brin|btree|unique|pending|latest|version)\b|\w\.\w|\w_\w|\(/;
const CHANGES_QUESTION =
  "What schema change should I make? Give the DDL (e.g. CREATE INDEX ...) or describe it (e.g. add a GIST index on features.geom).";

function schema(t: Text, statements: readonly string[]): Extraction {
  if (statements.length > 0) return { params: { changes: [...statements] }, missing: [], claimed: [] };
  const claimed = matchAll(/\b(?:table|into|from)\s+([a-z_][\w]*)|\b([a-z_][\w]*)\s+(?:table|column)\b/, t.lower).map((m) => m[1] ?? m[2] ?? "");
  if (!CONCRETE_CHANGE.test(t.lower)) return { params: {}, missing: [{ param: "changes", question: CHANGES_QUESTION }], claimed };
  return { params: { changes: t.orig }, missing: [], claimed };
}

// ---------------------------------------------------------------------------------------------- modify-observability

type ObservabilityKind = "alert-rule" | "recording-rule" | "dashboard" | "alert-route" | "retention";
type ObservabilityAction = "add" | "modify" | "remove";
interface ObservabilityChange {
  kind: ObservabilityKind;
  action: ObservabilityAction;
  name?: string;
  spec?: Record<string, unknown>;
}

/** First match wins: the most specific kind of change a clause talks about. */
const KINDS: readonly (readonly [ObservabilityKind, RegExp])[] = [
  ["recording-rule", /\brecording rules?\b/],
  ["retention", /\bretention\b|\bkeep (?:prometheus |the )?metrics\b/],
  [
    "alert-route",
    /\b(?:route|routes|routed|routing|reroute|receivers?)\b|\b(?:send|forward|pipe|deliver|direct)\b.*\b(?:alerts?|notifications?)\b.*\bto\b|\balerts?\b.*\b(?:go|goes|should go)\s+to\b/,
  ],
  ["dashboard", /\b(?:dashboards?|panels?)\b/],
  ["alert-rule", /\b(?:alerts?|alerting|alarms?|threshold)\b|\bpage (?:me|us|oncall|on-call|the)\b|\bnotify (?:me|us)\b/],
  ["dashboard", /\bgrafana\b/],
];
const ACTIONS: readonly (readonly [ObservabilityAction, RegExp])[] = [
  ["remove", /\b(?:remove|delete|drop|disable|stop|get rid of|retire|deprecate|kill)\b/],
  ["add", /\b(?:add|create|set up|setup|new|build|make|install|introduce)\b/],
  ["modify", /\b(?:change|modify|update|raise|lower|increase|decrease|bump|tune|adjust|set|edit|rename|tweak|reduce|extend|tighten|loosen)\b/],
];
const COMPARATORS: Record<string, string> = {
  above: ">", over: ">", exceeds: ">", exceed: ">", exceeding: ">", "greater than": ">", "more than": ">",
  "higher than": ">", crosses: ">", ">": ">", ">=": ">=", below: "<", under: "<", "less than": "<",
  "lower than": "<", "<": "<", "<=": "<=",
};
const CONDITION = new RegExp(
  String.raw`\b(?:when|if|whenever|once|on|for)\s+(?:the\s+)?(.+?)\s*(?:is\s+|are\s+|goes\s+|gets\s+|rises\s+|climbs\s+|jumps\s+|spikes\s+|stays\s+|drops\s+|falls\s+|dips\s+)?(` +
    Object.keys(COMPARATORS).sort((a, b) => b.length - a.length).map(escapeRe).join("|") +
    String.raw`)\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|%)?`,
);
const SUBJECT = /\b(?:when|if|whenever|on|for)\s+(?:the\s+)?(?:high|low|elevated|increased|rising|spiking|slow)?\s*(.+)$/;
const FOR_DURATION = new RegExp(String.raw`\bfor\s+(\d+)\s*${UNIT}\b`);
const SEVERITY = /\b(critical|warning|info)\b/;
/** CamelCase words that are products, not alert names. */
const PRODUCT_NAMES = new Set([
  "pagerduty", "opsgenie", "cloudfront", "opensearch", "elasticsearch", "elasticache", "postgresql", "postgis", "github",
  "dynamodb", "victorops", "alertmanager", "honua",
]);
const CAMEL_NAME = /\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b/g;
const QUOTED = /"([^"]+)"|`([^`]+)`/;

function ruleName(c: Text): string | undefined {
  const quoted = QUOTED.exec(c.orig);
  if (quoted) return quoted[1] ?? quoted[2];
  const called = /\b(?:called|named|titled)\s+([\w:.-]+(?:\s+[A-Z][\w-]*)*)/.exec(c.orig);
  if (called) return called[1];
  return (c.orig.match(CAMEL_NAME) ?? []).find((w) => !PRODUCT_NAMES.has(w.toLowerCase()));
}

/** "p95 latency" -> p95_latency_ms, "cache hit ratio" -> cache_hit_ratio; latency is always in ms. */
function metricName(phrase: string): string {
  const words = phrase
    .toLowerCase()
    .replace(/[^a-z0-9_\s]/g, " ")
    .split(/\s+/)
    .filter((w) => w && !["the", "a", "an", "our", "is", "are", "of"].includes(w));
  if (words.length === 1 && /^p\d{2,3}$/.test(words[0] ?? "")) words.push("latency");
  const name = words.join("_");
  return /latency|duration|response_time/.test(name) && !name.endsWith("_ms") ? `${name}_ms` : name;
}

function threshold(metric: string, value: string, unit = ""): number {
  const n = Number(value);
  if (unit === "%") return Number((n / 100).toFixed(6));
  if (/^s/.test(unit) && metric.endsWith("_ms")) return n * 1000;
  return n;
}

function alertRuleSpec(c: Text, action: ObservabilityAction): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const cond = CONDITION.exec(c.lower);
  if (cond) {
    const metric = metricName(cond[1] ?? "");
    if (metric && (action === "add" || !/\b(?:threshold|alert)\b/.test(cond[1] ?? ""))) spec.metric = metric;
    spec.op = COMPARATORS[cond[2] ?? ""];
    spec.threshold = threshold(metric, cond[3] ?? "", cond[4]);
  } else if (action === "modify") {
    const to = new RegExp(String.raw`\b(?:to|at|of)\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?|%)?`).exec(c.lower);
    if (to) spec.threshold = threshold(/latency/.test(c.lower) ? "_ms" : "", to[1] ?? "", to[2]);
  } else if (action === "add") {
    const subject = SUBJECT.exec(c.lower);
    const metric = metricName(subject?.[1] ?? "");
    if (metric) spec.metric = metric;
  }
  const duration = FOR_DURATION.exec(c.lower.slice(cond ? cond.index + cond[0].length : 0));
  if (duration && cond) spec.for = promDuration(duration[1] ?? "", duration[2] ?? "m");
  const severity = SEVERITY.exec(c.lower);
  if (severity) spec.severity = severity[1];
  return spec;
}

function routeSpec(c: Text): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const severity = SEVERITY.exec(c.lower);
  if (severity) spec.severity = severity[1];
  const receivers = matchAll(/\bto\s+(?:the\s+)?(#[\w-]+|@[\w.-]+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|[A-Za-z][\w-]*)/, c.orig);
  const receiver = receivers.at(-1)?.[1];
  if (receiver && !/^(?:go|be)$/i.test(receiver)) spec.receiver = receiver;
  const alert = ruleName(c);
  if (alert && alert !== receiver) spec.alertname = alert;
  return spec;
}

function dashboardParts(c: Text, action: ObservabilityAction): Pick<ObservabilityChange, "name" | "spec"> {
  const out: Pick<ObservabilityChange, "name" | "spec"> = {};
  const called = /\b(?:called|named|titled)\s+("[^"]+"|`[^`]+`|[\w-]+(?:\s+[A-Z][\w-]*)*)/.exec(c.orig);
  const the = /\bthe\s+(.+?)\s+(?:grafana\s+)?dashboard\b/.exec(c.orig);
  const name = called?.[1]?.replace(/^["`]|["`]$/g, "") ?? (action !== "add" && the && !/^(?:grafana|new)$/i.test(the[1] ?? "") ? the[1] : undefined);
  if (name) out.name = name;
  const word = /\b(?:dashboards?|panels?)\b/.exec(c.lower);
  const after = word ? c.slice(word.index) : c;
  const subject =
    /\b(?:for|showing|with|tracking)\s+(.+?)(?:\s+(?:to|on|in|into)\s+(?:the\s+)?\S.*\bdashboard\b.*)?$/.exec(after.orig)?.[1] ??
    (action === "add" && !name ? /\b(?:an?|new)\s+(.+?)\s+(?:grafana\s+)?dashboard\b/.exec(c.orig)?.[1] : undefined);
  const panels = subject
    ?.split(/\s*(?:,|\band\b|&)\s*/)
    .map((p) => p.replace(/\b(?:panels?|grafana|new)\b/gi, "").trim())
    .filter((p) => p !== "");
  if (panels?.length) out.spec = { panels };
  return out;
}

function observabilityChange(c: Text): ObservabilityChange | undefined {
  const kind = KINDS.find(([, re]) => re.test(c.lower))?.[0];
  if (!kind) return undefined;
  const firstVerb = ACTIONS.flatMap(([action, re]) => {
    const m = re.exec(c.lower);
    return m ? [{ action, at: m.index }] : [];
  }).sort((a, b) => a.at - b.at)[0];
  let action: ObservabilityAction = kind === "retention" ? "modify" : firstVerb?.action ?? "add";
  const change: ObservabilityChange = { kind, action };
  if (kind === "retention") {
    const d = new RegExp(String.raw`(\d+)\s*${UNIT}\b`).exec(c.lower);
    const size = /(\d+)\s*(gb|tb|mb)\b/.exec(c.lower);
    const spec: Record<string, unknown> = {};
    if (d) spec.retention = promDuration(d[1] ?? "", d[2] ?? "d");
    if (size) spec.size = `${size[1]}${(size[2] ?? "").toUpperCase()}`;
    if (Object.keys(spec).length) change.spec = spec;
    return change;
  }
  if (kind === "dashboard") {
    // Adding a panel changes an existing dashboard.
    if (action === "add" && /\bpanels?\b/.test(c.lower) && /\b(?:to|on|in|into)\s+(?:the|our|an?\s+existing)\b.*\bdashboard\b/.test(c.lower)) action = "modify";
    return { ...change, action, ...dashboardParts(c, action) };
  }
  if (kind === "alert-route") {
    const spec = routeSpec(c);
    return Object.keys(spec).length ? { ...change, spec } : change;
  }
  const name = ruleName(c) ?? (action !== "add" ? /\bthe\s+(.+?)\s+(?:alert(?:ing)? rule|alert|alarm|recording rule)s?\b/.exec(c.orig)?.[1] : undefined);
  if (name) change.name = name;
  if (kind === "recording-rule") {
    const idName = /\b([a-z_][a-z0-9_]*(?::[a-z0-9_]+)+)\b/i.exec(c.orig)?.[1];
    if (idName) change.name = idName;
    const expr = /`([^`]+)`/.exec(c.orig)?.[1] ?? /\b(?:expr(?:ession)?\s*[:=]?|=)\s*(.+)$/.exec(c.orig)?.[1];
    const subject = /\bfor\s+(.+)$/.exec(c.lower)?.[1];
    if (expr) change.spec = { expr: expr.trim() };
    else if (subject && !idName) change.spec = { metric: metricName(subject) };
    return change;
  }
  const spec = alertRuleSpec(c, action);
  if (Object.keys(spec).length) change.spec = spec;
  return change;
}

const OBSERVABILITY_QUESTION =
  "What should change? I can add, modify or remove alert rules, recording rules, dashboards and alert routes, or set Prometheus retention.";

function observability(t: Text): Extraction {
  // A change with neither a name nor a spec ("set up alerting") says nothing the Design step could act on.
  const changes = clauses(t).flatMap((c) => observabilityChange(c) ?? []).filter((c) => c.name !== undefined || c.spec !== undefined);
  if (changes.length === 0) return { params: {}, missing: [{ param: "changes", question: OBSERVABILITY_QUESTION }], claimed: [] };
  const claimed = changes
    .flatMap((c) => [c.name, c.spec?.receiver, c.spec?.alertname])
    .flatMap((v) => (typeof v === "string" ? [v.toLowerCase().replace(/^[#@]/, "")] : []));
  return { params: { changes }, missing: [], claimed };
}

const EXTRACTORS: Record<WorkflowId, (t: Text, statements: readonly string[]) => Extraction> = {
  "add-caching-layer": caching,
  "modify-metadata-storage": metadata,
  "add-storage-backend": storage,
  "upgrade-database-schema": schema,
  "modify-observability": observability,
};

// ---------------------------------------------------------------------------------------------- the planner

const refuse = (kind: RefusalKind): PlanResult => ({ refuse: REFUSALS[kind] });

export function planOffline(request: string, config: AgentConfig): PlanResult {
  const known = Object.keys(config.deployments).join(", ");
  const keep = new Set(Object.entries(config.deployments).flatMap(([n, d]) => [n, ...d.aliases].map((w) => w.toLowerCase())));
  const { statements, rest } = extractSql(normalizeChars(request), config);
  const typed = Text.of(fixTypos(rest, keep));
  const manipulation = spansOf(MANIPULATION, typed.lower);
  const text = tidy(typed.without(manipulation));

  const refused = refusal(text, statements);
  if (refused) return refuse(refused);
  const workflow = chooseWorkflow(text, statements.length > 0);
  if (!workflow) return refuse(manipulation.length > 0 ? "manipulation" : "out-of-scope");
  if (Array.isArray(workflow)) {
    const titles = workflow.map((w) => WORKFLOW_TITLES[w]).join("; ");
    return PlanResult.parse({
      clarify: `That is more than one change (${titles}). I run one workflow at a time: which should I do first?`,
      missing: ["workflow"],
    });
  }

  const deployment = knownDeployments(text, config);
  const body = tidy(text.without(deployment.spans));
  const extraction = EXTRACTORS[workflow](body, statements);
  const questions: Missing[] = [];
  let unknown: string | undefined;
  if (deployment.kind === "several") {
    questions.push({
      param: "deployment",
      question: `I can ${WORKFLOW_TITLES[workflow]} on one deployment at a time. Which one? Known deployments: ${known}.`,
    });
  } else if (deployment.kind === "none") {
    unknown = unknownDeployment(text, new Set(extraction.claimed));
    const hint = unknown ? nearestName(unknown, config) : undefined;
    questions.push({
      param: "deployment",
      question: unknown
        ? `Unknown deployment "${unknown}"${hint ? ` (did you mean ${hint}?)` : ""}. Known deployments: ${known}. Which one should I use?`
        : `I can ${WORKFLOW_TITLES[workflow]}, but on which deployment? Known deployments: ${known}.`,
    });
  }
  questions.push(...extraction.missing);
  if (questions.length > 0) {
    return PlanResult.parse({
      clarify: questions.map((q) => q.question).join(" "),
      missing: unique(questions.map((q) => q.param)),
      ...(unknown ? { unknownDeployment: unknown } : {}),
    });
  }
  const name = deployment.kind === "known" ? deployment.name : "";
  // Parsing is the last line of defence: a param the schema rejects is a planner bug, never a plan.
  return PlanResult.parse({ workflow, deployment: name, params: extraction.params });
}
