import type { GatePayload } from "./state.js";
import type { RunStatus } from "../core/records.js";
import type { Progress } from "../core/progress.js";

/** Progress as it happens, for whoever watches a run (terminal, Slack). Replays may repeat events. */
export type RunEvent =
  /** `stage` is the stage index (as in gates and decisions), `stageValue` its value (e.g. the traffic percentage). */
  | { type: "step-start"; run: string; step: string; stage: number | null; stageValue: number | null }
  | { type: "step-end"; run: string; step: string; stage: number | null; stageValue: number | null; status: "done" | "failed"; note: string; verdict?: "healthy" | "degraded" | "inconclusive" | null }
  /** `message` is always the line to show; `progress` is set when the step reported structured progress. */
  | { type: "progress"; run: string; step: string; message: string; progress?: Progress }
  | { type: "gate"; run: string; payload: GatePayload; planHash: string }
  | { type: "decision"; run: string; step: string; decision: string; by: string }
  | { type: "rollback"; run: string; reason: string; automatic: boolean }
  | { type: "finish"; run: string; status: RunStatus; reason: string };

export type EventSink = (e: RunEvent) => void;
