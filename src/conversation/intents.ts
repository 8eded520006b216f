/**
 * The rule-based reading of a thread message, used with no model and as the guard on the model's control
 * calls: a control tool only runs when the user's own words ask for that control.
 */
import type { ToolCall, ToolName } from "./tools.js";

export type Intent =
  | { kind: "tools"; calls: ToolCall[] }
  /** Someone asked the conversation to decide, skip or switch off a gate: it cannot, and says who can. */
  | { kind: "decision"; said: string }
  | { kind: "help" };

const QUESTION = /^(?:why|what|what's|whats|when|how|how's|who|where|did|does|do|is|was|were|are|can|could|will|would|should|has|have)\b|\?\s*$/;
const POLITE = /^(?:(?:ok(?:ay)?|hey|so),?\s+)?(?:(?:can|could|would|will) (?:you|we|u) (?:please |pls )?|please |pls )/;
const MANIPULATION =
  /\b(?:approve|approved|approving|lgtm|ship it|sign(?:ed)? off|reject|rejected|decline|deny|denied|veto(?:ed)?|green[\s-]?light(?:ed)?|skip|skipping|bypass|override|disable|disabling|turn off|switch off|auto-?approv\w*|two-person rule)\b|\bignore (?:all |any |the |your )?(?:previous|prior|above|earlier|system)\b|\byou are now\b|\bsystem prompt\b|\bdeveloper mode\b/;

const CONTROLS: readonly (readonly [ToolName, RegExp])[] = [
  // "revert it" undoes a finished run with a new run; on a run still under way the engine says to roll it back instead.
  ["revert_run", /\brevert\b/],
  ["request_rollback", /\broll(?:ing)?[\s-]*(?:it|this|that|the change|everything|all of it)?[\s-]*back\b|\brollback\b|\bundo\b|\bback it out\b/],
  ["cancel_run", /\b(?:cancel|abort|kill|terminate|scrap)\b/],
  ["resume_run", /\b(?:resume|unpause|un-pause|continue|carry on|proceed|keep going|go on)\b/],
  ["pause_run", /\b(?:pause|hold(?: off)?|stop|freeze it|wait)\b/],
];

const READS: readonly (readonly [ToolName, RegExp])[] = [
  ["metrics", /\b(?:hit[\s-]*(?:rate|ratio)s?|hits|latency|p9[059]|errors?|error[\s-]*rate|metrics?|throughput|rps|req\/s|origin|load|health|healthy|performance|numbers)\b|\bhow(?:'s| is) it (?:doing|going|looking)\b/],
  ["cost", /\b(?:cost|costs|costing|price|pricing|spend|money|expensive|cheap|bill|budget)\b|\$/],
  ["plan_and_diff", /\b(?:plan|diff|changes?|config(?:uration)?|design|strategy)\b|\bwhat (?:will|would|did|does) (?:it|you|this) (?:do|change)\b/],
  ["transcript_excerpt", /\b(?:transcript|history|log|logs|timeline|what happened|so far)\b/],
  ["deployments", /\b(?:deployments?|environments?|envs?|locks?|locked)\b/],
  ["run_status", /\b(?:why|status|where|stuck|paus\w*|blocked|pending|waiting|state|progress|gate|who|approvers?|done|finished|expire\w*)\b/],
];

/** "don't roll it back", "no need to pause": the control word is there, the request is the opposite. */
const NEGATION = /\b(?:don'?t|dont|do not|does not|doesn'?t|never|no need to|not|shouldn'?t|should not|won'?t|can'?t|cannot|mustn'?t|must not)\s+(?:[\w'-]+\s+){0,2}$/;
/** Ending a pause is a resume ("cancel the pause"), not a cancel of the run or a rollback ("undo the pause"). */
const END_PAUSE = /\b(?:cancel|abort|scrap|undo|revert|lift|end|remove|drop|stop)\s+(?:the\s+|my\s+|that\s+|this\s+)?(?:pause|hold|freeze)\b/;
/** Calling off a rollback ("stop the rollback", "cancel the rollback request") is not a control this thread has. */
const CALL_OFF_ROLLBACK = /\b(?:cancel|abort|scrap|undo|withdraw|stop|halt)\s+(?:the\s+|my\s+|that\s+|this\s+)?(?:roll[\s-]?back|revert)\b/;

/** The first control the message asks for, skipping control words it negates. */
function controlAsked(t: string): ToolName | undefined {
  if (END_PAUSE.test(t)) return "resume_run";
  if (CALL_OFF_ROLLBACK.test(t)) return undefined;
  let best: { tool: ToolName; at: number } | undefined;
  for (const [tool, re] of CONTROLS) {
    const g = new RegExp(re.source, "g");
    for (let m = g.exec(t); m; m = g.exec(t)) {
      if (NEGATION.test(t.slice(0, m.index))) continue;
      if (!best) best = { tool, at: m.index };
      break;
    }
    if (best) break;
  }
  return best?.tool;
}

/** The reason as the user put it: "pause until after the deploy freeze" -> "until after the deploy freeze". */
function reasonOf(text: string): string | null {
  const m = /\b(?:until|till|til|because|since|during|while|for)\b.*$/i.exec(text.trim());
  return m ? m[0].replace(/[.!?]+$/, "").trim() : null;
}

/** The run id a message names ("revert run-20261126-ab12cd34ef"), or null. */
export function runNamed(text: string): string | null {
  return /\b(run-[0-9a-z]+(?:-[0-9a-z]+)*)\b/i.exec(text)?.[1]?.toLowerCase() ?? null;
}

export function matchIntent(raw: string): Intent {
  const text = raw.replace(/<@[\w]+>/g, " ").replace(/\s+/g, " ").trim();
  const t = text.toLowerCase();
  if (t === "") return { kind: "help" };
  // "can you pause it?" is a request, not a question about pausing.
  const question = !POLITE.test(t) && QUESTION.test(t);
  if (MANIPULATION.test(t) && !question) return { kind: "decision", said: text };
  if (!question) {
    const tool = controlAsked(t);
    if (tool) {
      const reason = reasonOf(text);
      if (tool === "resume_run") return { kind: "tools", calls: [{ tool, args: {} }] };
      if (tool === "revert_run") return { kind: "tools", calls: [{ tool, args: { run: runNamed(text) } }] };
      return { kind: "tools", calls: [{ tool, args: { reason } } as ToolCall] };
    }
  }
  const reads: ToolCall[] = READS.filter(([, re]) => re.test(t)).map(([tool]) => (tool === "transcript_excerpt" ? { tool, args: { last: null } } : { tool, args: {} }) as ToolCall);
  // A control word that was negated or called off: say where the run stands, so the user sees nothing changed.
  const mentionsControl = CONTROLS.some(([, re]) => re.test(t));
  if ((MANIPULATION.test(t) || mentionsControl) && !reads.some((c) => c.tool === "run_status")) reads.push({ tool: "run_status", args: {} });
  if (reads.length > 0) return { kind: "tools", calls: reads };
  return question ? { kind: "tools", calls: [{ tool: "run_status", args: {} }] } : { kind: "help" };
}

/** Whether the user's message itself asks for this control; the model may not add one they did not ask for. */
export function userAskedFor(text: string, tool: ToolName): boolean {
  const intent = matchIntent(text);
  return intent.kind === "tools" && intent.calls.some((c) => c.tool === tool);
}
