import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type { LockKv } from "../../LockKv.js"
import * as time from "./time.js"

/**
 * One timer fiber per store, for every wake-up of its locks: waiters' retry
 * delays and the end of a holder's TTL, and the lease manager's next renewal
 * or deadline. A waiter races its alarm against a callback (a release, a
 * hand-off) inside one `Effect.async`, instead of racing a sleeping fiber per
 * wait: a hand-off then costs one resume, not two forked fibers and an
 * interruption. Alarms are read on the store's Clock as the fiber that started
 * the timer saw it, so `TestClock` drives them.
 */
interface Alarm {
  readonly at: number
  readonly ring: () => void
}

interface Timer {
  readonly alarms: Set<Alarm>
  /** Completing it makes the timer look at its alarms again. */
  wake: Deferred.Deferred<void> | undefined
  /** Clock millis it sleeps until (-Infinity while it looks at its alarms). */
  sleepingUntil: number
}

const timers = new WeakMap<LockKv.Service, Timer>()

const wakeUp = (timer: Timer) => {
  const wake = timer.wake
  if (wake !== undefined) {
    timer.wake = undefined
    Deferred.unsafeDone(wake, Exit.void)
  }
}

/** Sleeps until the earliest alarm, rings the alarms due, and so on; ends with the store. */
const run = (timer: Timer): Effect.Effect<never> =>
  Effect.clockWith((clock) =>
    Effect.forever(
      Effect.suspend(() => {
        const wake = Deferred.unsafeMake<void>(FiberId.none)
        timer.wake = wake
        const now = time.monotonicMillis(clock)
        let next = Infinity
        for (const alarm of timer.alarms) {
          if (alarm.at <= now) {
            timer.alarms.delete(alarm)
            alarm.ring()
          } else if (alarm.at < next) {
            next = alarm.at
          }
        }
        timer.sleepingUntil = next
        if (next === Infinity) return Deferred.await(wake)
        // Capped at an hour: a JavaScript timer cannot sleep past 2^31 − 1 ms.
        return Effect.raceFirst(Deferred.await(wake), Effect.sleep(Duration.millis(Math.min(next - now, 3_600_000))))
      }).pipe(Effect.ensuring(Effect.sync(() => (timer.sleepingUntil = -Infinity))))
    )
  )

/**
 * Starts the store's timer fiber (in the store's lifetime, with the caller's
 * Clock) unless it runs already; `Effect.void` then, so it is cheap to call
 * before every wait.
 */
export const ensureStarted = (store: LockKv.Service): Effect.Effect<void> => {
  if (timers.has(store)) return Effect.void
  return Effect.suspend(() => {
    if (timers.has(store)) return Effect.void
    const timer: Timer = { alarms: new Set(), wake: undefined, sleepingUntil: -Infinity }
    timers.set(store, timer)
    return Effect.asVoid(Effect.forkIn(run(timer), store.lifetime))
  })
}

/** `effect` once the store's timer runs (`ensureStarted`): as is when it already does. */
export const whenStarted = <A, E, R>(store: LockKv.Service, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  timers.has(store) ? effect : Effect.zipRight(ensureStarted(store), effect)

/**
 * Calls `ring` from the timer fiber once the store's Clock reaches `at` (monotonic
 * millis), unless cancelled with the returned function. The timer must have
 * been started (`ensureStarted`).
 */
export const setAlarm = (store: LockKv.Service, at: number, ring: () => void): () => void => {
  const timer = timers.get(store)!
  const alarm: Alarm = { at, ring }
  timer.alarms.add(alarm)
  if (at < timer.sleepingUntil) wakeUp(timer)
  return () => {
    timer.alarms.delete(alarm)
  }
}
