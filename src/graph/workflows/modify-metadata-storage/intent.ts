import { Text, lexicon } from "../../../core/text.js";
import { FROM_MARK, MOVE, count } from "../../../core/grammar.js";
import type { Extraction, Missing, WorkflowIntent } from "../module.js";
import { MetadataStoreKind } from "./params.js";

const STORES = lexicon({
  postgres: ["postgres", "postgresql", "pg", "psql"],
  sqlite: ["sqlite", "sqlite3"],
  files: ["files", "file-based", "file based", "json files", "flat files", "filesystem", "file system", "disk"],
  elasticsearch: ["elasticsearch", "elastic search", "elastic", "es"],
  opensearch: ["opensearch", "open search"],
});
const UNSUPPORTED_STORE = /\b(mongodb|mongo|mysql|mariadb|dynamodb|dynamo|cassandra|oracle|sql server|mssql|couchdb|redis|firestore|bigquery|snowflake)\b/;

const STORE_NAMES = MetadataStoreKind.options.join(", ");
/** Asked when the target store is missing (the model planner asks the same). */
export const TO_STORE_QUESTION = `Which metadata store should I move to: ${STORE_NAMES}?`;

const TO_MARK = /(?:\b(?:to|into|onto|over to|with|use|using|for|towards?|by|on|in)\s+(?:the\s+|an?\s+)?(?:new\s+)?|(?:->|=>|>)\s*)$/;
const ARROW_AFTER = /^\s*(?:->|=>|>|to|into)\s+/;
const BATCH = [
  /\bbatch(?:es)?\s+(?:size\s+)?(?:of\s+)?(?:=|:|to)?\s*(\d[\d,_]*k?)\b/,
  /\bbatch size\s*(?:of|=|:|to)?\s*(\d[\d,_]*k?)\b/,
  /\b(\d[\d,_]*k?)\s*(?:rows|records|items|docs|documents|entries)?\s*(?:at a time|per batch|a batch)\b/,
  /\bin\s+(\d[\d,_]*k?)s\b/,
];

function extract(t: Text): Extraction {
  const params: Record<string, unknown> = {};
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
    const question = unsupported ? `${unsupported[1]} isn't a metadata store I support. Which should I move to: ${STORE_NAMES}?` : TO_STORE_QUESTION;
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

export const intent: WorkflowIntent = {
  signals: [
    [/\b(?:metadata|catalogs?|stac)\b/, 4],
    [new RegExp(STORES.source), 1],
    [new RegExp(`\\bfrom\\s+${STORES.source}\\s+(?:to|->|into)\\s+${STORES.source}`), 2],
    [MOVE, 1],
    [UNSUPPORTED_STORE, 1],
  ],
  sqlScore: 0,
  vocabulary: {
    triggers: ["metadata", "catalog", "catalogs", "postgres", "postgresql", "sqlite", "elasticsearch", "opensearch"],
    notTypos: ["postures"],
    notDeployments: [...STORES.words, "metadata", "catalog", "stac"],
    things: ["store"],
    safeObjects: [],
  },
  capability: `move the metadata store (${STORE_NAMES})`,
  listed: 17,
  extract,
};
