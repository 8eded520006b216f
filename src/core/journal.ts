import { z } from "zod";

/**
 * What one side effect of a run replaced, recorded before it acts (write-ahead) under the effect's idempotency key.
 * A rollback reads only this: it restores what this run changed, to the value the run found, and nothing else.
 */
export const Effect = z.discriminatedUnion("kind", [
  /** A Honua setting: `before` is the value found (null: unset), `after` the value written. */
  z.object({ kind: z.literal("config"), key: z.string(), before: z.string().nullable(), after: z.string().nullable() }),
  /** The share of traffic on one feature's new path, in percent. */
  z.object({ kind: z.literal("share"), feature: z.string(), before: z.number(), after: z.number() }),
  /**
   * Something the run created or wrote that a restore does not take away (a cache node, warmed keys): offered
   * for deletion behind a `delete` gate when `created`. `id` is null while the effect has not reported it yet.
   */
  z.object({
    kind: z.literal("resource"),
    capability: z.string(),
    id: z.string().nullable(),
    resourceKind: z.string(),
    description: z.string(),
    created: z.boolean(),
    /** What deleting it destroys, for the delete card (e.g. "the 120 tile keys this run wrote; every other key stays"). */
    deletes: z.string().optional(),
  }),
  /** A setting of a capability's own (e.g. Redis `maxmemory-policy`), restored through that capability. */
  z.object({ kind: z.literal("restore"), capability: z.string(), target: z.string(), before: z.string(), after: z.string() }),
  /** A point of no return: what a rollback can no longer restore once this ran. */
  z.object({ kind: z.literal("irreversible"), description: z.string() }),
]);
export type Effect = z.infer<typeof Effect>;

export const JournalEntry = z.object({
  /** The side effect's idempotency key (`run:step:stage:name`). */
  key: z.string(),
  step: z.string(),
  stage: z.number().int().nullable(),
  /** Order of first record within the run. */
  seq: z.number().int(),
  effects: z.array(Effect),
  /** False until the side effect returned: a crash in between leaves it false, and the rollback treats it as maybe done. */
  done: z.boolean(),
  at: z.string(),
});
export type JournalEntry = z.infer<typeof JournalEntry>;

/**
 * A step's view of its run's journal. Names are per step and stage; the key they give (`run:step:stage[:name]`, null
 * naming the step's own key) is the side effect's idempotency key.
 */
export interface Journal {
  /** Records what the side effect `name` will replace. Only the first record counts: a replay gets it back, not what it sees now. */
  intend(name: string | null, effects: Effect[]): Promise<{ key: string; effects: Effect[] }>;
  /** Marks `name` as done, adding what only its result could tell (the id of what it created, what an adapter replaced). */
  done(name: string | null, effects?: Effect[]): Promise<void>;
  /** Every entry of the run, in the order first recorded. */
  entries(): Promise<JournalEntry[]>;
}

type ConfigEffect = Extract<Effect, { kind: "config" }>;
type ShareEffect = Extract<Effect, { kind: "share" }>;
type RestoreEffect = Extract<Effect, { kind: "restore" }>;
export type ResourceEffect = Extract<Effect, { kind: "resource" }>;

/** What undoing a run takes, computed from its journal only: each target back to the value the run first found. */
export interface Undo {
  /** Newest first (the reverse of the order the run touched them). */
  steps: (
    | { kind: "config"; changes: { key: string; before: string | null; after: string | null }[] }
    | { kind: "share"; feature: string; from: number; to: number }
    | { kind: "restore"; capability: string; target: string; from: string; to: string }
  )[];
  /** What the run created, for the delete gate; entries whose side effect may not have returned are `pending`. */
  resources: (ResourceEffect & { key: string; pending: boolean })[];
  /** Points of no return the run passed. */
  irreversible: string[];
}

const canonical = (key: string): string => key.replace(/:/g, "__").toLowerCase();

/**
 * The net undo of a run: per target, the value found before the first change (the run's own later changes of the
 * same target collapse into one restore), newest target first. A target whose first value equals its last is left alone.
 */
export function undoOf(entries: readonly JournalEntry[]): Undo {
  const ordered = [...entries].sort((a, b) => a.seq - b.seq);
  const firstTouch = new Map<string, number>();
  const config = new Map<string, { key: string; first: string | null; last: string | null }>();
  const shares = new Map<string, { first: number; last: number }>();
  const restores = new Map<string, { capability: string; target: string; first: string; last: string }>();
  const resources: Undo["resources"] = [];
  const irreversible: string[] = [];
  let n = 0;
  const touch = (id: string) => {
    if (!firstTouch.has(id)) firstTouch.set(id, n);
    n++;
  };
  for (const e of ordered) {
    for (const f of e.effects) {
      switch (f.kind) {
        case "config": {
          const id = `config:${canonical(f.key)}`;
          const c = config.get(id);
          if (c) c.last = (f as ConfigEffect).after;
          else config.set(id, { key: f.key, first: f.before, last: f.after });
          touch("config");
          break;
        }
        case "share": {
          const s = shares.get(f.feature);
          if (s) s.last = (f as ShareEffect).after;
          else shares.set(f.feature, { first: f.before, last: f.after });
          touch(`share:${f.feature}`);
          break;
        }
        case "restore": {
          const id = `${f.capability}:${f.target}`;
          const r = restores.get(id);
          if (r) r.last = (f as RestoreEffect).after;
          else restores.set(id, { capability: f.capability, target: f.target, first: f.before, last: f.after });
          touch(`restore:${id}`);
          break;
        }
        case "resource": {
          // A later record of the same resource (the id, once known) replaces the placeholder written before acting.
          const at = resources.findIndex((r) => r.key === e.key && r.capability === f.capability && r.resourceKind === f.resourceKind);
          const rec = { ...f, key: e.key, pending: !e.done };
          if (at >= 0) resources[at] = rec;
          else resources.push(rec);
          break;
        }
        case "irreversible":
          irreversible.push(f.description);
          break;
      }
    }
  }
  const steps: (Undo["steps"][number] & { order: number })[] = [];
  const configChanges = [...config.values()].filter((c) => c.first !== c.last).map((c) => ({ key: c.key, before: c.last, after: c.first }));
  if (configChanges.length) steps.push({ kind: "config", changes: configChanges, order: firstTouch.get("config")! });
  for (const [feature, s] of shares) if (s.first !== s.last) steps.push({ kind: "share", feature, from: s.last, to: s.first, order: firstTouch.get(`share:${feature}`)! });
  for (const [id, r] of restores) if (r.first !== r.last) steps.push({ kind: "restore", capability: r.capability, target: r.target, from: r.last, to: r.first, order: firstTouch.get(`restore:${id}`)! });
  steps.sort((a, b) => b.order - a.order);
  return { steps: steps.map(({ order: _o, ...s }) => s), resources, irreversible };
}

/** A journal kept in memory (tests, benchmarks): entries shared by every step view made from one instance. */
export class MemoryJournal implements Journal {
  private readonly all: JournalEntry[];
  constructor(
    private readonly prefix: string,
    private readonly step = "step",
    private readonly stage: number | null = null,
    shared: JournalEntry[] = [],
  ) {
    this.all = shared;
  }
  /** The same journal as seen from another step (keys `prefix:step:stage[:name]`). */
  at(step: string, stage: number | null = null): MemoryJournal {
    return new MemoryJournal(this.prefix, step, stage, this.all);
  }
  private key(name: string | null): string {
    return [this.prefix, this.step, this.stage ?? 0, ...(name === null ? [] : [name])].join(":");
  }
  async intend(name: string | null, effects: Effect[]): Promise<{ key: string; effects: Effect[] }> {
    const key = this.key(name);
    let e = this.all.find((x) => x.key === key);
    if (!e) {
      e = { key, step: this.step, stage: this.stage, seq: this.all.length + 1, effects: structuredClone(effects), done: false, at: new Date(0).toISOString() };
      this.all.push(e);
    }
    return { key, effects: structuredClone(e.effects) };
  }
  async done(name: string | null, effects: Effect[] = []): Promise<void> {
    const e = this.all.find((x) => x.key === this.key(name));
    if (!e) throw new Error(`journal entry ${this.key(name)} was never intended`);
    if (!e.done) {
      e.effects.push(...structuredClone(effects));
      e.done = true;
    }
  }
  async entries(): Promise<JournalEntry[]> {
    return structuredClone(this.all).sort((a, b) => a.seq - b.seq);
  }
}
