/**
 * The parent ⇄ worker protocol of scenario (b'): one JSON object per line.
 * Worker lines start with a marker so that anything a library prints to
 * stdout cannot be mistaken for a message.
 */
import type { CommandCounts } from "./commands.js"
import type { LoopStatsData } from "./loop.js"

export const marker = "@@bench "

export type ToWorker =
  | {
    readonly op: "prepare"
    readonly contender: string
    readonly url: string
    readonly key: string
    readonly probeKey: string
  }
  | { readonly op: "run"; readonly startAt: number; readonly durationMs: number; readonly holdMs: number }
  | { readonly op: "close" }
  | { readonly op: "exit" }

export interface WorkerResult {
  readonly stats: LoopStatsData
  /** Commands this worker's contender sent (the probe connection excluded). */
  readonly sent: CommandCounts
  /** INCR / DECR the probe sent on the holders key, to take out of the server's counts. */
  readonly probeIncr: number
  readonly probeDecr: number
  readonly violations: number
  /** CPU time the worker used during the run, µs. */
  readonly cpuUs: number
}

export type FromWorker =
  | { readonly op: "hello"; readonly pid: number }
  | { readonly op: "prepared" }
  | { readonly op: "result"; readonly result: WorkerResult }
  | { readonly op: "closed" }
  | { readonly op: "error"; readonly message: string }
