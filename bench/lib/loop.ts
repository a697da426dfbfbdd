/**
 * The timed acquire → section → release loop every Redis contender runs, in a
 * Promise form and an Effect form with the same shape: check the deadline, take
 * the lock, run the section, release, record. A failed acquisition (a library's
 * own wait ran out) is counted and retried; its waiting time keeps running, so
 * the wait recorded is from the first request to the acquisition.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { Samples } from "./stats.js"
import { now, sleep } from "./time.js"

/**
 * Detects overlapping critical sections: entered on entry, left on exit. A
 * probe that needs no I/O (the in-process counter of (b)) gives `sync` forms:
 * the loops then call it in line, so that it adds no asynchronous step to the
 * section (an awaited resolved promise costs a Promise loop a microtask, an
 * `Effect.promise` costs an Effect loop a suspension and a scheduler turn:
 * unequal costs that measure the probe, not the lock).
 */
export interface Probe {
  readonly enter: () => Promise<void>
  readonly exit: () => Promise<void>
  readonly sync?: { readonly enter: () => void; readonly exit: () => void } | undefined
}

/** Per-client results, accumulated over the rounds. */
export class LoopStats {
  acquisitions = 0
  failures = 0
  readonly errors = new Map<string, number>()
  /** request → released, ms (uncontended latency). */
  readonly cycle = new Samples()
  /** first request → acquired, ms. */
  readonly wait = new Samples()
  /** The longest wait still unfinished when a round ended (a starving client shows here). */
  unfinishedWait = 0

  fail(message: string): void {
    this.failures++
    // One line, whatever the error's shape (Cause.pretty spans several).
    const key = message.replace(/\s+/g, " ").trim().slice(0, 240)
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1)
  }

  /** A plain-data copy (for JSON and for the worker protocol). */
  toJSON(): LoopStatsData {
    return {
      acquisitions: this.acquisitions,
      failures: this.failures,
      errors: Object.fromEntries(this.errors),
      cycle: Array.from(this.cycle.values(), (v) => Math.round(v * 1000) / 1000),
      wait: Array.from(this.wait.values(), (v) => Math.round(v * 1000) / 1000),
      unfinishedWait: this.unfinishedWait
    }
  }

  static fromJSON(data: LoopStatsData): LoopStats {
    const stats = new LoopStats()
    stats.merge(data)
    return stats
  }

  merge(data: LoopStatsData): void {
    this.acquisitions += data.acquisitions
    this.failures += data.failures
    for (const [k, n] of Object.entries(data.errors)) this.errors.set(k, (this.errors.get(k) ?? 0) + n)
    this.cycle.addAll(data.cycle)
    this.wait.addAll(data.wait)
    this.unfinishedWait = Math.max(this.unfinishedWait, data.unfinishedWait)
  }
}

export interface LoopStatsData {
  readonly acquisitions: number
  readonly failures: number
  readonly errors: Readonly<Record<string, number>>
  readonly cycle: ReadonlyArray<number>
  readonly wait: ReadonlyArray<number>
  readonly unfinishedWait: number
}

export interface LoopSpec {
  /** `now()` after which no new acquisition starts. */
  readonly until: number
  /** Time the section holds the lock (0: an empty section). */
  readonly holdMs: number
  readonly probe: Probe | undefined
  readonly stats: LoopStats
}

const message = (error: unknown): string => error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/** A lock in Promise form: acquire, run `section`, release. */
export type PromiseLock = (section: () => Promise<void>) => Promise<void>

/** A lock in Effect form. */
export type EffectLock<R> = (section: Effect.Effect<void>) => Effect.Effect<unknown, unknown, R>

export const promiseLoop = async (lock: PromiseLock, spec: LoopSpec): Promise<void> => {
  const { holdMs, probe, stats } = spec
  let acquiredAt = 0
  const section = probe === undefined && holdMs === 0
    ? () => {
      acquiredAt = now()
      return Promise.resolve()
    }
    : async () => {
      acquiredAt = now()
      if (probe?.sync !== undefined) probe.sync.enter()
      else if (probe !== undefined) await probe.enter()
      try {
        if (holdMs > 0) await sleep(holdMs)
      } finally {
        if (probe?.sync !== undefined) probe.sync.exit()
        else if (probe !== undefined) await probe.exit()
      }
    }
  let pendingSince: number | undefined
  while (now() < spec.until) {
    const start = now()
    pendingSince ??= start
    try {
      await lock(section)
      stats.cycle.add(now() - start)
      stats.wait.add(acquiredAt - pendingSince)
      stats.acquisitions++
      pendingSince = undefined
    } catch (error) {
      stats.fail(message(error))
      // Never spin on a failing store.
      await sleep(1)
    }
  }
  if (pendingSince !== undefined) stats.unfinishedWait = Math.max(stats.unfinishedWait, now() - pendingSince)
}

export const effectLoop = <R>(lock: EffectLock<R>, spec: LoopSpec): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    const { holdMs, probe, stats } = spec
    let acquiredAt = 0
    const mark = Effect.sync(() => {
      acquiredAt = now()
    })
    const enter = probe === undefined
      ? Effect.void
      : probe.sync !== undefined
      ? Effect.sync(probe.sync.enter)
      : Effect.promise(probe.enter)
    const exit = probe === undefined
      ? Effect.void
      : probe.sync !== undefined
      ? Effect.sync(probe.sync.exit)
      : Effect.promise(probe.exit)
    const section: Effect.Effect<void> = probe === undefined && holdMs === 0
      ? mark
      : Effect.zipRight(mark, Effect.acquireUseRelease(enter, () => Effect.sleep(Duration.millis(holdMs)), () => exit))
    let pendingSince: number | undefined
    while (now() < spec.until) {
      const start = now()
      pendingSince ??= start
      const result = yield* Effect.exit(lock(section))
      if (Exit.isSuccess(result)) {
        stats.cycle.add(now() - start)
        stats.wait.add(acquiredAt - pendingSince)
        stats.acquisitions++
        pendingSince = undefined
      } else {
        stats.fail(Cause.pretty(result.cause))
        yield* Effect.sleep(Duration.millis(1))
      }
    }
    if (pendingSince !== undefined) stats.unfinishedWait = Math.max(stats.unfinishedWait, now() - pendingSince)
  })
