/**
 * (c) The memory backend against in-process locks: effect-lock `withLock` on
 * `LockKv.layerMemory`, `Effect.makeSemaphore(1)` + `withPermits(1)`, and
 * async-mutex `runExclusive`; uncontended (one fiber, empty section) and 8
 * fibers on one lock (the section yields once, so the others queue up). Also
 * the cost of a scoped `Lock.acquire` cycle against a bare scoped
 * `acquireRelease` cycle.
 */
import { Mutex } from "async-mutex"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { LockKv as LockKvTypes } from "../../src/index.js"
import type { Baseline } from "../lib/baseline.js"
import { compareRounds, type Comparison, type RoundFigures } from "../lib/compare.js"
import type { BenchConfig } from "../lib/config.js"
import { Lock, LockKv } from "../lib/effectLock.js"
import { ratio } from "../lib/stats.js"
import { int, num, renderTable, section } from "../lib/table.js"
import { atLeast, atMost, type Target } from "../lib/targets.js"
import { collectGarbage, cpuMicros, now } from "../lib/time.js"

/** Ids of the baseline's entries (`--baseline`): `baseline:withLock`. */
const baselinePrefix = "baseline:"

/** Cycles between two deadline checks, so that reading the clock stays out of the measure. */
const batch = 16

export interface MemoryRow {
  readonly id: string
  readonly label: string
  readonly fibers: number
  readonly cycles: number
  readonly seconds: number
  readonly cyclesPerSec: number
  /** Mean wall time per cycle, ns (all fibers together). */
  readonly nsPerCycle: number
  /** CPU time of the process per cycle, ns. */
  readonly cpuNsPerCycle: number
  readonly perFiber: ReadonlyArray<number>
  readonly error: string | undefined
}

export interface MemoryResult {
  readonly rows: ReadonlyArray<MemoryRow>
  readonly ratios: Readonly<Record<string, number>>
  readonly targets: ReadonlyArray<Target>
  readonly table: string
  /** Working tree ÷ baseline, with `--baseline` only. */
  readonly comparisons: ReadonlyArray<Comparison>
}

interface Entry {
  readonly id: string
  readonly label: string
  readonly fibers: number
  /** Runs `fibers` loops until `until`; resolves with each loop's cycle count. */
  readonly run: (until: number) => Promise<ReadonlyArray<number>>
  readonly perFiber: Array<number>
  readonly rounds: Array<RoundFigures>
  ms: number
  cpuUs: number
  error: string | undefined
}

const effectCount = <R>(cycle: Effect.Effect<unknown, unknown, R>, until: number): Effect.Effect<number, unknown, R> =>
  Effect.gen(function*() {
    let n = 0
    while (now() < until) {
      for (let i = 0; i < batch; i++) yield* cycle
      n += batch
    }
    return n
  })

const effectFibers = <R>(cycle: Effect.Effect<unknown, unknown, R>, fibers: number, until: number) =>
  Effect.all(Array.from({ length: fibers }, () => effectCount(cycle, until)), { concurrency: "unbounded" })

const promiseCount = async (cycle: () => Promise<unknown>, until: number): Promise<number> => {
  let n = 0
  while (now() < until) {
    for (let i = 0; i < batch; i++) await cycle()
    n += batch
  }
  return n
}

export const runMemory = async (
  config: BenchConfig["memory"],
  log: (line: string) => void,
  baseline?: Baseline
): Promise<MemoryResult> => {
  // Every Effect contender runs in this one runtime: the cost of scopes and
  // forks grows with the context a fiber carries, so all carry the same.
  const runtime = ManagedRuntime.make(LockKv.layerMemory)
  await runtime.runPromise(LockKv.LockKv)
  // The baseline's store has the same tag key as the working tree's, so it gets
  // a runtime of its own, carrying the same context (that one service).
  const base = baseline?.module
  const baseRuntime = base === undefined ? undefined : ManagedRuntime.make(base.LockKv.layerMemory)
  if (baseRuntime !== undefined && base !== undefined) await baseRuntime.runPromise(base.LockKv.LockKv)
  const semaphore = Effect.unsafeMakeSemaphore(1)
  const mutex = new Mutex()
  const mutexContended = new Mutex()
  const semaphoreContended = Effect.unsafeMakeSemaphore(1)
  const yieldOnce = () => Promise.resolve()
  const { fibers } = config

  const make = (id: string, label: string, n: number, run: Entry["run"]): Entry => ({
    id,
    label,
    fibers: n,
    run,
    perFiber: Array.from({ length: n }, () => 0),
    rounds: [],
    ms: 0,
    cpuUs: 0,
    error: undefined
  })
  /** The baseline's twin of an effect-lock entry (`--baseline`), right after it in the rotating order. */
  const twin = (
    id: string,
    label: string,
    n: number,
    cycle: (lib: NonNullable<typeof base>) => Effect.Effect<unknown, unknown, LockKvTypes.LockKv>
  ): Array<Entry> =>
    base === undefined || baseRuntime === undefined || baseline === undefined
      ? []
      : [make(`${baselinePrefix}${id}`, label.replace("effect-lock", `effect-lock @${baseline.ref}`), n, (until) =>
        baseRuntime.runPromise(effectFibers(cycle(base), n, until)))]
  const entries: Array<Entry> = [
    make(
      "withLock",
      "effect-lock withLock (memory)",
      1,
      (until) => runtime.runPromise(effectFibers(Lock.withLock(Effect.void, "bench:c:1"), 1, until))
    ),
    ...twin("withLock", "effect-lock withLock (memory)", 1, (lib) => lib.Lock.withLock(Effect.void, "bench:c:1")),
    make(
      "semaphore",
      "Effect.makeSemaphore(1).withPermits(1)",
      1,
      (until) => runtime.runPromise(effectFibers(semaphore.withPermits(1)(Effect.void), 1, until))
    ),
    make(
      "async-mutex",
      "async-mutex runExclusive",
      1,
      (until) => Promise.all([promiseCount(() => mutex.runExclusive(() => {}), until)])
    ),
    make(
      "acquire",
      "effect-lock scoped Lock.acquire (memory)",
      1,
      (until) => runtime.runPromise(effectFibers(Effect.scoped(Lock.acquire("bench:c:acquire")), 1, until))
    ),
    ...twin(
      "acquire",
      "effect-lock scoped Lock.acquire (memory)",
      1,
      (lib) => Effect.scoped(lib.Lock.acquire("bench:c:acquire"))
    ),
    make("bare", "bare Effect.scoped(acquireRelease(void))", 1, (until) =>
      runtime.runPromise(
        effectFibers(Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void)), 1, until)
      )),
    make(
      `withLock×${fibers}`,
      `effect-lock withLock (memory), ${fibers} fibers`,
      fibers,
      (until) => runtime.runPromise(effectFibers(Lock.withLock(Effect.yieldNow(), "bench:c:8"), fibers, until))
    ),
    ...twin(
      `withLock×${fibers}`,
      `effect-lock withLock (memory), ${fibers} fibers`,
      fibers,
      (lib) => lib.Lock.withLock(Effect.yieldNow(), "bench:c:8")
    ),
    make(
      `semaphore×${fibers}`,
      `Effect semaphore, ${fibers} fibers`,
      fibers,
      (until) => runtime.runPromise(effectFibers(semaphoreContended.withPermits(1)(Effect.yieldNow()), fibers, until))
    ),
    make(`async-mutex×${fibers}`, `async-mutex, ${fibers} fibers`, fibers, (until) =>
      Promise.all(
        Array.from({ length: fibers }, () => promiseCount(() => mutexContended.runExclusive(yieldOnce), until))
      ))
  ]

  const runEntry = async (entry: Entry, ms: number, measured: boolean) => {
    if (entry.error !== undefined) return
    collectGarbage()
    const cpuStart = cpuMicros()
    const start = now()
    try {
      const counts = await entry.run(start + ms)
      if (measured) {
        const [roundMs, cpuUs] = [now() - start, cpuMicros() - cpuStart]
        entry.ms += roundMs
        entry.cpuUs += cpuUs
        counts.forEach((n, i) => (entry.perFiber[i]! += n))
        entry.rounds.push({ units: counts.reduce((a, b) => a + b, 0), ms: roundMs, cpuUs })
      }
    } catch (error) {
      entry.error = error instanceof Error ? error.message : String(error)
    }
  }
  try {
    if (config.warmupMs > 0) { for (const entry of entries) await runEntry(entry, config.warmupMs, false) }
    for (let round = 0; round < config.rounds; round++) {
      const order = entries.map((_, i) => entries[(i + round) % entries.length]!)
      for (const entry of order) await runEntry(entry, config.roundMs, true)
      log(`  (c) round ${round + 1}/${config.rounds} done`)
    }
  } finally {
    await runtime.dispose()
    await baseRuntime?.dispose()
  }

  const rows: Array<MemoryRow> = entries.map((e) => {
    const cycles = e.perFiber.reduce((a, b) => a + b, 0)
    return {
      id: e.id,
      label: e.label,
      fibers: e.fibers,
      cycles,
      seconds: e.ms / 1000,
      cyclesPerSec: cycles / (e.ms / 1000),
      nsPerCycle: (e.ms * 1e6) / cycles,
      cpuNsPerCycle: (e.cpuUs * 1e3) / cycles,
      perFiber: e.perFiber,
      error: e.error
    }
  })
  const rate = (id: string) => rows.find((r) => r.id === id)?.cyclesPerSec ?? Number.NaN
  const ratios = {
    withLockPerSemaphore: ratio(rate("withLock"), rate("semaphore")),
    withLockPerSemaphoreContended: ratio(rate(`withLock×${fibers}`), rate(`semaphore×${fibers}`)),
    withLockPerAsyncMutex: ratio(rate("withLock"), rate("async-mutex")),
    withLockPerAsyncMutexContended: ratio(rate(`withLock×${fibers}`), rate(`async-mutex×${fibers}`)),
    /** cost ratio: time per acquire cycle ÷ time per bare scope cycle */
    acquirePerBareCost: ratio(rate("bare"), rate("acquire")),
    acquirePerWithLockCost: ratio(rate("withLock"), rate("acquire"))
  }
  const scenario = "(c) memory"
  const targets = [
    atLeast(scenario, "withLock ÷ semaphore cycles/s, 1 fiber", ratios.withLockPerSemaphore, 0.5),
    atLeast(scenario, `withLock ÷ semaphore cycles/s, ${fibers} fibers`, ratios.withLockPerSemaphoreContended, 0.5),
    atMost(scenario, "scoped Lock.acquire cycle ÷ bare scoped cycle, time", ratios.acquirePerBareCost, 1.5)
  ]
  const table = [
    section(`(c) memory backend: ${config.rounds} × ${config.roundMs} ms per entry, interleaved`),
    renderTable(
      ["contender", "fibers", "cycles/s", "ns/cycle", "CPU ns/cycle", "per-fiber min/max", "error"],
      rows.map((r) => [
        r.label,
        String(r.fibers),
        int(r.cyclesPerSec),
        int(r.nsPerCycle),
        int(r.cpuNsPerCycle),
        r.fibers > 1 ? num(ratio(Math.min(...r.perFiber), Math.max(...r.perFiber))) : "",
        r.error ?? ""
      ])
    ),
    "",
    renderTable(["ratio", "value"], [
      ["withLock ÷ semaphore (cycles/s), 1 fiber", num(ratios.withLockPerSemaphore, 3)],
      [`withLock ÷ semaphore (cycles/s), ${fibers} fibers`, num(ratios.withLockPerSemaphoreContended, 3)],
      ["withLock ÷ async-mutex (cycles/s), 1 fiber", num(ratios.withLockPerAsyncMutex, 3)],
      [`withLock ÷ async-mutex (cycles/s), ${fibers} fibers`, num(ratios.withLockPerAsyncMutexContended, 3)],
      ["scoped acquire ÷ bare scope (time per cycle)", num(ratios.acquirePerBareCost, 1)],
      ["scoped acquire ÷ withLock (time per cycle)", num(ratios.acquirePerWithLockCost, 2)]
    ])
  ].join("\n")
  const roundsOf = (id: string) => entries.find((e) => e.id === id && e.error === undefined)?.rounds
  const comparisons = [
    ["withLock", "withLock, 1 fiber"],
    [`withLock×${fibers}`, `withLock, ${fibers} fibers`],
    ["acquire", "scoped acquire, 1 fiber"]
  ].flatMap(([id, row]) => {
    const [ours, theirs] = [roundsOf(id!), roundsOf(`${baselinePrefix}${id}`)]
    return ours === undefined || theirs === undefined ? [] : [compareRounds("(c) memory", row!, ours, theirs)]
  })
  return { rows, ratios, targets, table, comparisons }
}
