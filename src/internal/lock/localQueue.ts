import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { LockKv } from "../../LockKv.js"
import * as time from "./time.js"
import * as timers from "./timers.js"

/**
 * The fibers of one process that want the same key of the same store take turns
 * here, first come first served, so that only one of them at a time contends in
 * the store (or waits in its queue). A turn is passed on when its holder
 * releases the lock, loses it or gives up.
 */
export interface Turn {
  /** Hands the turn to the next waiting fiber. Idempotent. */
  readonly pass: () => void
}

interface Waiter {
  /** Set (synchronously) when the turn is handed to this waiter. */
  given: boolean
  /** Resumes the waiting fiber, while it waits. */
  resume: (() => void) | undefined
}

interface Line {
  readonly waiters: Array<Waiter>
}

/** Per store, so two stores (two Redis servers or namespaces) never share a line. */
const linesByStore = new WeakMap<LockKv.Service, Map<string, Line>>()

const linesOf = (store: LockKv.Service): Map<string, Line> => {
  let lines = linesByStore.get(store)
  if (lines === undefined) {
    lines = new Map()
    linesByStore.set(store, lines)
  }
  return lines
}

const makeTurn = (lines: Map<string, Line>, key: string): Turn => {
  let passed = false
  return {
    pass: () => {
      if (passed) return
      passed = true
      handOn(lines, key)
    }
  }
}

const handOn = (lines: Map<string, Line>, key: string): void => {
  const line = lines.get(key)
  if (line === undefined) return
  const next = line.waiters.shift()
  if (next === undefined) {
    lines.delete(key)
  } else {
    next.given = true
    const resume = next.resume
    next.resume = undefined
    resume?.()
  }
}

/** The turn at once when no other fiber of this process holds or awaits `key`, else `undefined` (synchronous). */
export const tryEnter = (store: LockKv.Service, key: string): Turn | undefined => {
  const lines = linesOf(store)
  if (lines.has(key)) return undefined
  lines.set(key, { waiters: [] })
  return makeTurn(lines, key)
}

/** Suspends until the turn reaches `waiter` or the store's Clock reaches `wakeAt` (a plain callback, no fiber). */
const sleepUntilTurn = (store: LockKv.Service, waiter: Waiter, wakeAt: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (waiter.given) return resume(Effect.void)
    const cancelAlarm = timers.setAlarm(store, wakeAt, () => {
      waiter.resume = undefined
      resume(Effect.void)
    })
    waiter.resume = () => {
      cancelAlarm()
      resume(Effect.void)
    }
    return Effect.sync(() => {
      cancelAlarm()
      waiter.resume = undefined
    })
  })

/**
 * Waits for this fiber's turn on `key` until `deadline` (millis of `clock`).
 * With a `backoff` it also wakes at the delays it gives (each wake without the
 * turn is a failed try, and the backoff may give up); without one (the default
 * retry, which never gives up by itself) it wakes only for its turn or at the
 * deadline, so a line of waiters sets no alarm per turn. `None` when it gave
 * up. Interruption leaves the line intact.
 */
export const enter = (
  store: LockKv.Service,
  clock: Clock.Clock,
  key: string,
  deadline: number,
  backoff: ((now: number) => Effect.Effect<Option.Option<number>>) | undefined
): Effect.Effect<Option.Option<Turn>> =>
  Effect.suspend(() => {
    const lines = linesOf(store)
    const line = lines.get(key)
    if (line === undefined) {
      lines.set(key, { waiters: [] })
      return Effect.succeed(Option.some(makeTurn(lines, key)))
    }
    const waiter: Waiter = { given: false, resume: undefined }
    line.waiters.push(waiter)
    const waitForTurn = (): Effect.Effect<boolean> => {
      if (waiter.given) return Effect.succeed(true)
      const now = time.monotonicMillis(clock)
      if (now >= deadline) return Effect.succeed(false)
      if (backoff === undefined) return Effect.flatMap(sleepUntilTurn(store, waiter, deadline), waitForTurn)
      return Effect.flatMap(backoff(now), (delay) =>
        Option.isNone(delay)
          ? Effect.succeed(false)
          : Effect.flatMap(
            sleepUntilTurn(store, waiter, now + Math.max(0, Math.ceil(Math.min(delay.value, deadline - now)))),
            waitForTurn
          ))
    }
    return Effect.zipRight(timers.ensureStarted(store), Effect.suspend(waitForTurn)).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (exit._tag === "Success" && exit.value) return
          const index = line.waiters.indexOf(waiter)
          if (index !== -1) line.waiters.splice(index, 1)
          // The turn reached us as we gave up: hand it on, or the line stalls.
          if (waiter.given) handOn(lines, key)
        })
      ),
      Effect.map((got) => got ? Option.some(makeTurn(lines, key)) : Option.none<Turn>())
    )
  })
