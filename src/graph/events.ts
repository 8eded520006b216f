import type { GatePayload } from "./state.js";
import type { RunStatus } from "../core/records.js";

/** Progress as it happens, for whoever watches a run (terminal, Slack). Replays may repeat events. */
export type RunEvent =
  /** `stage` is the stage index (as in gates and decisions), `stageValue` its value (e.g. the traffic percentage). */
  | { type: "step-start"; run: string; step: string; stage: number | null; stageValue: number | null }
  | { type: "step-end"; run: string; step: string; stage: number | null; stageValue: number | null; status: "done" | "failed"; note: string; verdict?: "healthy" | "degraded" | "inconclusive" | null }
  | { type: "progress"; run: string; step: string; message: string }
  | { type: "gate"; run: string; payload: GatePayload; planHash: string }
  | { type: "decision"; run: string; step: string; decision: string; by: string }
  | { type: "rollback"; run: string; reason: string; automatic: boolean }
  | { type: "finish"; run: string; status: RunStatus; reason: string };

export type EventSink = (e: RunEvent) => void;
