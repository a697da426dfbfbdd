import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type { LockKv } from "../../LockKv.js"
import * as time from "./time.js"

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
  /** Set when its wake time came without the turn (a failed try). */
  woken: boolean
  /** Clock millis at which the timer wakes it, unless the turn comes first. */
  wakeAt: number
  /** Resumes the waiting fiber, while it waits. */
  resume: ((effect: Effect.Effect<void>) => void) | undefined
}

/** Resumes `waiter` if it is waiting (a plain callback: cheaper than a Deferred per wait). */
const resumeWaiter = (waiter: Waiter) => {
  const resume = waiter.resume
  if (resume !== undefined) {
    waiter.resume = undefined
    resume(Effect.void)
  }
}

/** Suspends until the turn or the wake time reaches `waiter`. */
const sleepUntilSignalled = (waiter: Waiter): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (waiter.given || waiter.woken) return resume(Effect.void)
    waiter.resume = resume
    return Effect.sync(() => (waiter.resume = undefined))
  })

interface Line {
  readonly waiters: Array<Waiter>
}

/**
 * One timer fiber per store wakes the waiters whose backoff delay ran out, so
 * that waiting costs no fiber or race of its own: a waiter only awaits its
 * `signal`, and a hand-off is one `Deferred` completion.
 */
interface Timer {
  readonly waiters: Set<Waiter>
  /** Completing it makes the timer look at its waiters again. */
  wake: Deferred.Deferred<void> | undefined
  /** Clock millis it sleeps until (-Infinity while it looks at its waiters). */
  sleepingUntil: number
}

interface StoreLines {
  readonly lines: Map<string, Line>
  timer: Timer | undefined
}

/** Per store, so two stores (two Redis servers or namespaces) never share a line. */
const byStore = new WeakMap<LockKv.Service, StoreLines>()

const linesOf = (store: LockKv.Service): StoreLines => {
  let lines = byStore.get(store)
  if (lines === undefined) {
    lines = { lines: new Map(), timer: undefined }
    byStore.set(store, lines)
  }
  return lines
}

const makeTurn = (lines: StoreLines, key: string): Turn => {
  let passed = false
  return {
    pass: () => {
      if (passed) return
      passed = true
      handOn(lines, key)
    }
  }
}

const handOn = (lines: StoreLines, key: string): void => {
  const line = lines.lines.get(key)
  if (line === undefined) return
  const next = line.waiters.shift()
  if (next === undefined) {
    lines.lines.delete(key)
  } else {
    next.given = true
    lines.timer?.waiters.delete(next)
    resumeWaiter(next)
  }
}

/** The turn at once when no other fiber of this process holds or awaits `key`, else `undefined` (synchronous). */
export const tryEnter = (store: LockKv.Service, key: string): Turn | undefined => {
  const lines = linesOf(store)
  if (lines.lines.has(key)) return undefined
  lines.lines.set(key, { waiters: [] })
  return makeTurn(lines, key)
}

const wakeTimer = (timer: Timer) => {
  const wake = timer.wake
  if (wake !== undefined) {
    timer.wake = undefined
    Deferred.unsafeDone(wake, Exit.void)
  }
}

/** Sleeps until the earliest wake time among its waiters, wakes those due, and so on; ends with the store. */
const runTimer = (timer: Timer): Effect.Effect<never> =>
  Effect.clockWith((clock) =>
    Effect.forever(Effect.suspend(() => {
      const wake = Deferred.unsafeMake<void>(FiberId.none)
      timer.wake = wake
      const now = time.monotonicMillis(clock)
      let next = Infinity
      for (const waiter of timer.waiters) {
        if (waiter.wakeAt <= now) {
          timer.waiters.delete(waiter)
          waiter.woken = true
          resumeWaiter(waiter)
        } else if (waiter.wakeAt < next) {
          next = waiter.wakeAt
        }
      }
      timer.sleepingUntil = next
      if (next === Infinity) return Deferred.await(wake)
      // Capped at an hour: a JavaScript timer cannot sleep past 2^31 − 1 ms.
      return Effect.raceFirst(Deferred.await(wake), Effect.sleep(Duration.millis(Math.min(next - now, 3_600_000))))
    }).pipe(Effect.ensuring(Effect.sync(() => (timer.sleepingUntil = -Infinity)))))
  )

/** Puts `waiter` under the store's timer (started on first use, in the store's lifetime, with the caller's Clock). */
const arm = (store: LockKv.Service, lines: StoreLines, waiter: Waiter): Effect.Effect<void> => {
  const timer = lines.timer
  if (timer !== undefined) {
    timer.waiters.add(waiter)
    if (waiter.wakeAt < timer.sleepingUntil) wakeTimer(timer)
    return Effect.void
  }
  const created: Timer = { waiters: new Set([waiter]), wake: undefined, sleepingUntil: -Infinity }
  lines.timer = created
  return Effect.asVoid(Effect.forkIn(runTimer(created), store.lifetime))
}

/**
 * Waits for this fiber's turn on `key` until `deadline` (Clock millis), waking
 * at the delays `backoff` gives (each wake without the turn is a failed try; the
 * backoff may give up). `None` when it gave up. Interruption leaves the line intact.
 */
export const enter = (
  store: LockKv.Service,
  key: string,
  deadline: number,
  backoff: (now: number) => Effect.Effect<Option.Option<number>>
): Effect.Effect<Option.Option<Turn>> =>
  Effect.suspend(() => {
    const lines = linesOf(store)
    const line = lines.lines.get(key)
    if (line === undefined) {
      lines.lines.set(key, { waiters: [] })
      return Effect.succeed(Option.some(makeTurn(lines, key)))
    }
    const waiter: Waiter = { given: false, woken: false, wakeAt: Infinity, resume: undefined }
    line.waiters.push(waiter)
    const waitForTurn: Effect.Effect<boolean> = Effect.gen(function*() {
      while (true) {
        if (waiter.given) return true
        const now = yield* time.now
        if (now >= deadline) return false
        const delay = yield* backoff(now)
        if (Option.isNone(delay)) return false
        if (waiter.given) return true
        waiter.woken = false
        waiter.wakeAt = now + Math.max(0, Math.ceil(Math.min(delay.value, deadline - now)))
        yield* arm(store, lines, waiter)
        yield* sleepUntilSignalled(waiter)
      }
    })
    return waitForTurn.pipe(
      Effect.map((got) => got ? Option.some(makeTurn(lines, key)) : Option.none<Turn>()),
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (exit._tag === "Success" && Option.isSome(exit.value)) return
          lines.timer?.waiters.delete(waiter)
          const index = line.waiters.indexOf(waiter)
          if (index !== -1) line.waiters.splice(index, 1)
          // The turn reached us as we gave up: hand it on, or the line stalls.
          if (waiter.given) handOn(lines, key)
        })
      )
    )
  })
