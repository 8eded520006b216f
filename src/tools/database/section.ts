import { z } from "zod";
import { SmokeQuery } from "./types.js";

/** A PostgreSQL URL with no password in it, or `env:VAR` naming one. */
export const DatabaseUrl = z.union([
  z.string().regex(/^env:[A-Za-z_][A-Za-z0-9_]*$/),
  z.string().regex(/^postgres(ql)?:\/\//, "a postgres:// URL or env:VAR").refine((u) => {
    try {
      return new URL(u).password === "";
    } catch {
      return false;
    }
  }, "the database URL holds a password: put the URL in an environment variable and write env:VARIABLE"),
]);

/** `database:` Honua's PostgreSQL/PostGIS and how schema changes run on it. */
export const DatabaseSection = z
  .object({
    url: DatabaseUrl,
    /** Each statement's lock_timeout: a statement that cannot get its lock this fast gives up instead of queueing writes behind it. */
    lockTimeoutMs: z.number().int().min(50).max(60_000).default(1000),
    statementTimeoutMs: z.number().int().min(1000).default(6 * 3_600_000),
    retries: z.object({ attempts: z.number().int().min(1).max(20).default(5), baseMs: z.number().int().min(1).default(200), maxMs: z.number().int().min(1).default(5000) }).strict().default({ attempts: 5, baseMs: 200, maxMs: 5000 }),
    backup: z
      .object({
        mode: z.enum(["schema", "full"]).default("schema"),
        /** Where pg_dump writes its archive (a directory). */
        dir: z.string().min(1).default("./backups"),
      })
      .strict()
      .default({ mode: "schema", dir: "./backups" }),
    smokeQueries: z.array(SmokeQuery).default([]),
    /** The Honua version the change needs, when it needs one (rolled out by UpdateApplicationCode). */
    honuaVersion: z.string().min(1).optional(),
  })
  .strict();
export type DatabaseSection = z.infer<typeof DatabaseSection>;

export const DATABASE_EXAMPLE = "database: { url: env:HONUA_DATABASE_URL, lockTimeoutMs: 1000, backup: { mode: schema, dir: ./backups }, smokeQueries: [{ name: bbox, sql: \"SELECT count(*) FROM features WHERE geom && ST_MakeEnvelope(0,0,1,1,4326)\" }] }";
