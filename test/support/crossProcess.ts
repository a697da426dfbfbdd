/**
 * The cross-process counter test, shared by every topology (one server,
 * Cluster, Sentinel): `processes` lockWorker processes of `fibers` fibers each
 * increment one counter under one lock, `iterations` times per fiber (ttl 1 s;
 * every 15th section takes 1.5 s, so only renewal keeps it), and log the fence
 * of every section.
 */
import { expect } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { type ProcessResult, runTs } from "./runProcess.js"

const worker = fileURLToPath(new URL("./lockWorker.ts", import.meta.url))

export interface CounterRun {
  readonly processes: number
  readonly fibers: number
  readonly iterations: number
}

/** Runs the workers against `target` (a URL, `cluster:<nodes>` or `sentinel:<name>:<sentinels>`). */
export const runCounterWorkers = (
  target: string,
  namespace: string,
  { fibers, iterations, processes }: CounterRun
): Promise<ReadonlyArray<ProcessResult>> =>
  Promise.all(
    Array.from({ length: processes }, () =>
      runTs(worker, {
        args: [target, namespace, "counter", String(fibers), String(iterations), "1000", "15", "1500"],
        timeoutMs: 90_000
      }))
  )

/** Every worker exited 0, the counter is exact, and the fences increase in section order. */
export const expectExactCounter = async (
  results: ReadonlyArray<ProcessResult>,
  raw: {
    readonly get: (key: string) => Promise<string | null>
    readonly lrange: (key: string, start: number, stop: number) => Promise<Array<string>>
  },
  namespace: string,
  { fibers, iterations, processes }: CounterRun
): Promise<void> => {
  for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 })
  const total = processes * fibers * iterations
  const counter = Number(await raw.get(`${namespace}-data:counter`))
  const fences = (await raw.lrange(`${namespace}-data:fences`, 0, -1)).map(Number)
  expect(counter).toBe(total)
  expect(fences).toHaveLength(total)
  for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!)
}
