/**
 * (d) Memory stays bounded: a million short-lived keys (1 ms TTL) written with
 * the memory store's `set`, in real time so the store's own sweeper runs.
 * heapUsed before (after a GC), the peak seen while writing (sampled every
 * 10,000 sets), and after waiting a few seconds and a GC.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { BenchConfig } from "../lib/config.js"
import { LockKv } from "../lib/effectLock.js"
import { int, num, renderTable, section } from "../lib/table.js"
import { collectGarbage, now, sleep } from "../lib/time.js"

export interface MemoryBoundResult {
  readonly keys: number
  readonly ttlMs: number
  readonly setsPerSec: number
  readonly heapMiB: {
    readonly before: number
    readonly peak: number
    readonly afterSettle: number
    readonly afterDispose: number
  }
  readonly retainedMiB: number
  readonly settleMs: number
  readonly gcExposed: boolean
  readonly table: string
}

const mib = (bytes: number) => bytes / 2 ** 20
const heap = () => process.memoryUsage().heapUsed

export const runMemoryBound = async (
  config: BenchConfig["memoryBound"],
  log: (line: string) => void
): Promise<MemoryBoundResult> => {
  const runtime = ManagedRuntime.make(LockKv.layerMemory)
  const kv = await runtime.runPromise(LockKv.LockKv)
  collectGarbage()
  const before = heap()
  let peak = before
  const start = now()
  await runtime.runPromise(Effect.gen(function*() {
    const options = { PX: config.ttlMs }
    for (let i = 0; i < config.keys; i++) {
      yield* kv.set(`bench:d:${i}`, "v", options)
      if (i % 10_000 === 0) peak = Math.max(peak, heap())
    }
  }))
  const writeMs = now() - start
  peak = Math.max(peak, heap())
  log(`  (d) ${config.keys} sets in ${(writeMs / 1000).toFixed(1)} s; waiting ${config.settleMs} ms for the sweeper`)
  await sleep(config.settleMs)
  collectGarbage()
  const afterSettle = heap()
  await runtime.dispose()
  collectGarbage()
  const afterDispose = heap()
  const gcExposed = typeof globalThis.gc === "function"
  const result = {
    keys: config.keys,
    ttlMs: config.ttlMs,
    setsPerSec: config.keys / (writeMs / 1000),
    heapMiB: { before: mib(before), peak: mib(peak), afterSettle: mib(afterSettle), afterDispose: mib(afterDispose) },
    retainedMiB: mib(afterSettle - before),
    settleMs: config.settleMs,
    gcExposed
  }
  const table = [
    section(`(d) memory bound: ${int(config.keys)} keys with a ${config.ttlMs} ms TTL through the memory store's set`),
    renderTable(
      [
        "sets/s",
        "heap before MiB",
        "peak MiB",
        `after ${config.settleMs} ms + gc MiB`,
        "retained MiB",
        "after dispose MiB"
      ],
      [[
        int(result.setsPerSec),
        num(result.heapMiB.before, 1),
        num(result.heapMiB.peak, 1),
        num(result.heapMiB.afterSettle, 1),
        num(result.retainedMiB, 1),
        num(result.heapMiB.afterDispose, 1)
      ]]
    ),
    gcExposed ? "" : "(gc() was not exposed: heap figures include garbage; run through `npm run bench`)"
  ].join("\n")
  return { ...result, table }
}
