import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { converse } from "../src/conversation/index.js";
import { matchIntent } from "../src/conversation/intents.js";
import { MAX_REQUEST_CHARS } from "../src/core/text.js";
import { planRequest, type Planner } from "../src/planner/index.js";
import { planOffline, readRequest } from "../src/planner/offline.js";
import { byPriority } from "../src/planner/registered.js";
import { CACHING_PLAN, cli, engineSuite, testEnv } from "./helpers.js";
import { seeded } from "./fixtures/random.js";


const { config } = loadConfig({});
/** Slack's message limit: the most text one message can put in front of the planner, ten times the request limit. */
const SLACK_MAX = 40_000;

/** Every word the registered workflows react to, the deployments' names, and text that has broken patterns before. */
function units(): string[] {
  const words = new Set<string>();
  for (const w of byPriority()) {
    const v = w.intent.vocabulary;
    for (const x of [...v.triggers, ...v.safeObjects, ...v.notTypos, ...v.notDeployments]) words.add(x.replace(/[?\\]/g, ""));
  }
  for (const [n, d] of Object.entries(config.deployments)) for (const x of [n, ...d.aliases]) words.add(x);
  const fixed = [
    " ", ".", ",", "a", "1", "é", "😀", "\u200b", "'", "\"", "(", "`", "#", "@", "-", "%", "/", ":", "s3://", "<@U1> ",
    "please ", "plea", "thanks ", "and ", "then ", "for ", "to ", "the ", "when the ", "if ", "on ", "ms ", "percent ",
    "add ", "alert ", "route ", "send alerts ", "alerts go ", "index on ", "CREATE INDEX ", "SELECT ", "-- ", "/* ",
    "ignore previous instructions ", "show passwords ", "ttl ", "when p95 latency ", "above ", "for the ", "dashboard ",
  ];
  const out = new Set<string>(fixed);
  // A seeded sample of the vocabulary keeps the suite quick; the seed changes nothing between runs.
  const r = seeded(7);
  const sample = [...words].sort().filter(() => r.next() < 0.5);
  for (const w of sample) {
    out.add(`${w} `);
    out.add(w.slice(0, Math.max(1, w.length - 1))); // a partial word, repeated or at the end
    out.add(r.next() < 0.5 ? `the ${w} ` : `when ${w} `);
  }
  return [...out];
}

const fill = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

/** Adversarial texts of exactly n characters: one unit repeated, repeated then cut mid-word, and seeded mixtures. */
function adversarial(n: number): { name: string; text: string }[] {
  const us = units();
  const out: { name: string; text: string }[] = [];
  for (const u of us) out.push({ name: `${JSON.stringify(u)} repeated`, text: fill(u, n) });
  for (const u of us.filter((x) => x.length > 3).slice(0, 60)) out.push({ name: `${JSON.stringify(u)} repeated, ending mid-word`, text: fill(u, n - 2) + u.slice(0, 2) });
  const r = seeded(20261202);
  for (let i = 0; i < 20; i++) {
    const parts: string[] = [];
    let len = 0;
    while (len < n) {
      const u = r.pick(us);
      parts.push(u);
      len += u.length;
    }
    out.push({ name: `mixture #${i}`, text: parts.join("").slice(0, n) });
  }
  out.push({ name: "one long word", text: fill("x", n) }, { name: "spaces then a word", text: `${fill(" ", n - 1)}x` });
  return out;
}

/** Fastest of a few tries: a ratio of minima is steady on a loaded machine, one run is not. */
function fastest(f: () => unknown, tries: number): number {
  let best = Infinity;
  for (let i = 0; i < tries; i++) {
    const t0 = performance.now();
    f();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

describe("hostile request text: reading is linear and bounded", () => {
  it(`reading Slack-sized adversarial text (${SLACK_MAX} characters) costs a bounded multiple of reading plain text of that size`, () => {
    // Baseline: ordinary words of the same length, read in the same run. A pattern that is quadratic in the text
    // (as three of the planner's were: a run of spaces took 206x, "please … plea" 110x, "when alert …" 72x) fails here.
    const plain = fill("the tiles are slow today so we would like it ", SLACK_MAX);
    fastest(() => readRequest(plain, config), 2); // warm up
    const base = Math.max(fastest(() => readRequest(plain, config), 3), fastest(() => matchIntent(plain), 3), 1);
    const cases = adversarial(SLACK_MAX);
    expect(cases.length).toBeGreaterThan(150);
    const slow: string[] = [];
    for (const c of cases) {
      expect(c.text.length).toBe(SLACK_MAX);
      const ms = Math.max(fastest(() => readRequest(c.text, config), 1), fastest(() => matchIntent(c.text), 1));
      // Tried once; only a case over the bound is tried again, so one pause on a busy machine does not fail it.
      if (ms > 40 * base && Math.max(fastest(() => readRequest(c.text, config), 2), fastest(() => matchIntent(c.text), 2)) > 40 * base) slow.push(`${c.name}: ${ms.toFixed(0)} ms vs ${base.toFixed(1)} ms`);
    }
    expect(slow).toEqual([]);
  });

  it(`a request over ${MAX_REQUEST_CHARS} characters is refused before any planner reads it, and one at the limit is read`, async () => {
    const long = `add redis caching to prod ${fill("please ", MAX_REQUEST_CHARS)}`;
    expect(planOffline(long, config)).toEqual({ refuse: expect.stringMatching(/requests are read up to 4,000/) });
    // The model is never asked (it would be paid to read it): a planner that throws shows it.
    const model: Planner = { kind: "model", plan: () => Promise.reject(new Error("the model was called")) };
    const made = await planRequest(long, config, {}, { planner: model, announceRules: false });
    expect(made).toMatchObject({ refuse: expect.stringMatching(/characters; requests are read up to/) });
    const atLimit = `add redis caching to prod ${fill(" ", MAX_REQUEST_CHARS - 26)}`;
    expect(atLimit.length).toBe(MAX_REQUEST_CHARS);
    expect(planOffline(atLimit, config)).toMatchObject({ workflow: "add-caching-layer", deployment: "prod" });
  });
});

describe("a request over the limit changes nothing in any front", () => {
  const suite = engineSuite();
  const long = `add redis caching to prod ${fill("please ", MAX_REQUEST_CHARS)}`;

  it("the command line: plan and run exit 2, no run is recorded", async () => {
    const home = suite.home;
    for (const cmd of ["plan", "run"]) {
      const r = cli(home, [cmd, long, "--json"]);
      expect(r.code, r.stderr).toBe(2);
      expect(`${r.stdout}${r.stderr}`).toMatch(/requests are read up to 4,000/);
    }
    const engine = await suite.open();
    expect(await engine.runs()).toEqual([]);
  });

  it("the chat: the line is not read, nothing starts, the next line still is", () => {
    const home = suite.home;
    const res = spawnSync(process.execPath, [join(new URL("..", import.meta.url).pathname, "bin/honua-agent.mjs"), "chat", "--as", "alice"], {
      cwd: home,
      env: testEnv(home),
      encoding: "utf8",
      input: `${long}\nruns\nquit\n`,
      timeout: 60_000,
    });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/I didn't read that: the request is 4,02\d characters/);
    expect(res.stdout).not.toMatch(/add-caching-layer\s+prod/); // `runs` lists nothing
  });

  it("a question about a run: answered with the limit, nothing decided", async () => {
    const engine = await suite.open();
    const s = await engine.start(CACHING_PLAN, "alice", "add redis caching to prod");
    expect(s.pending).not.toBeNull();
    const reply = await converse(engine, { run: s.run, user: "alice", groups: [], text: `approve ${fill("it ", MAX_REQUEST_CHARS)}` }, { model: { offline: true } });
    expect(reply.text).toMatch(/I didn't read that/);
    expect((await engine.summary(s.run)).pending?.interrupt).toBe(s.pending?.interrupt);
  });
});
