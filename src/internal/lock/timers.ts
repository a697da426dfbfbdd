import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import type { LockKv } from "../../LockKv.js"
import * as slots from "../slots.js"
import { storeState } from "./storeState.js"
import * as time from "./time.js"

/**
 * One timer per store, for every wake-up of its locks: waiters' retry delays
 * and the end of a holder's TTL, and the lease manager's next renewal or
 * deadline. A waiter races its alarm against a callback (a release, a
 * hand-off) inside one `Effect.async`, instead of racing a sleeping fiber per
 * wait: a hand-off then costs one resume, not two forked fibers and an
 * interruption. Alarms are read on the store's Clock as the fiber that started
 * the timer saw it: with the live Clock the timer is one Node timeout, with
 * any other (`TestClock`) a fiber sleeping on that Clock, so it drives them.
 */
class Alarm implements slots.Slotted {
  /** Its place in `Timer.alarms` (see slots.ts). */
  slot = -1
  cancelled = false
  constructor(readonly at: number, readonly ring: () => void) {}
}

export interface Timer {
  readonly alarms: Array<Alarm>
  /** Completing it makes the timer fiber look at its alarms again (fiber timers only). */
  wake: Deferred.Deferred<void> | undefined
  /** Clock millis it sleeps until (-Infinity while it looks at its alarms). */
  sleepingUntil: number
  /**
   * With the live Clock no fiber is needed: one Node timeout, moved earlier
   * when an earlier alarm comes. Only `TestClock` (or a custom Clock) needs
   * the fiber, whose re-arming races two forked fibers.
   */
  readonly live: { readonly clock: Clock.Clock; timeout: ReturnType<typeof setTimeout> | undefined } | undefined
}

const wakeUp = (timer: Timer) => {
  const wake = timer.wake
  if (wake !== undefined) {
    timer.wake = undefined
    Deferred.unsafeDone(wake, Exit.void)
  }
}

/**
 * Rings the alarms due (also those that ringing sets, when due: a ring may
 * set a new alarm), except those cancelled by an earlier ring; gives the time
 * of the earliest one left (Infinity: none).
 */
const ringDue = (timer: Timer, now: number): number => {
  const alarms = timer.alarms
  for (;;) {
    const due: Array<Alarm> = []
    for (let i = 0; i < alarms.length;) {
      const alarm = alarms[i]!
      if (alarm.at <= now) {
        // The last alarm moves into place i: look at i again.
        slots.remove(alarms, alarm)
        due.push(alarm)
      } else {
        i++
      }
    }
    if (due.length === 0) break
    for (const alarm of due) if (!alarm.cancelled) alarm.ring()
  }
  let next = Infinity
  for (const alarm of alarms) if (alarm.at < next) next = alarm.at
  return next
}

/**
 * Sets the Node timeout to ring at `at`, replacing a later one. Alarms ring
 * only from the timeout, never inside `setAlarm`: a waiter sets its alarm
 * before it listens for wakes, and must not be rung in between.
 */
const armLive = (timer: Timer, live: NonNullable<Timer["live"]>, at: number): void => {
  if (live.timeout !== undefined) clearTimeout(live.timeout)
  timer.sleepingUntil = at
  // Capped at an hour: a JavaScript timer cannot sleep past 2^31 − 1 ms.
  const delay = Math.min(Math.max(0, at - time.monotonicMillis(live.clock)), 3_600_000)
  live.timeout = setTimeout(() => {
    live.timeout = undefined
    // Alarms set while ringing arm their own timeout.
    timer.sleepingUntil = Infinity
    const next = ringDue(timer, time.monotonicMillis(live.clock))
    if (next < timer.sleepingUntil) armLive(timer, live, next)
  }, delay)
}

/** Sleeps until the earliest alarm, rings the alarms due, and so on; ends with the store. */
const run = (timer: Timer): Effect.Effect<never> =>
  Effect.clockWith((clock) =>
    Effect.forever(
      Effect.suspend(() => {
        const wake = Deferred.unsafeMake<void>(FiberId.none)
        timer.wake = wake
        const now = time.monotonicMillis(clock)
        const next = ringDue(timer, now)
        timer.sleepingUntil = next
        if (next === Infinity) return Deferred.await(wake)
        // Capped at an hour: a JavaScript timer cannot sleep past 2^31 − 1 ms.
        return Effect.raceFirst(Deferred.await(wake), Effect.sleep(Duration.millis(Math.min(next - now, 3_600_000))))
      }).pipe(Effect.ensuring(Effect.sync(() => (timer.sleepingUntil = -Infinity))))
    )
  )

/**
 * Starts the store's timer (in the store's lifetime, with the caller's Clock)
 * unless it runs already; `Effect.void` then, so it is cheap to call before
 * every wait.
 */
export const ensureStarted = (store: LockKv.Service): Effect.Effect<void> => {
  const state = storeState(store)
  if (state.timer !== undefined) return Effect.void
  return Effect.clockWith((clock) => {
    if (state.timer !== undefined) return Effect.void
    if (clock === time.liveClock) {
      const live: NonNullable<Timer["live"]> = { clock, timeout: undefined }
      state.timer = { alarms: [], wake: undefined, sleepingUntil: Infinity, live }
      return Scope.addFinalizer(
        store.lifetime,
        Effect.sync(() => {
          if (live.timeout !== undefined) clearTimeout(live.timeout)
          live.timeout = undefined
        })
      )
    }
    const timer: Timer = { alarms: [], wake: undefined, sleepingUntil: -Infinity, live: undefined }
    state.timer = timer
    return Effect.asVoid(Effect.forkIn(run(timer), store.lifetime))
  })
}

/** `effect` once the store's timer runs (`ensureStarted`): as is when it already does. */
export const whenStarted = <A, E, R>(store: LockKv.Service, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  storeState(store).timer !== undefined ? effect : Effect.zipRight(ensureStarted(store), effect)

/**
 * Calls `ring` from the store's timer once the store's Clock reaches `at` (monotonic
 * millis), unless cancelled with the returned function. The timer must have
 * been started (`ensureStarted`).
 */
export const setAlarm = (store: LockKv.Service, at: number, ring: () => void): () => void => {
  const timer = storeState(store).timer!
  const alarm = new Alarm(at, ring)
  slots.add(timer.alarms, alarm)
  if (at < timer.sleepingUntil) {
    if (timer.live !== undefined) armLive(timer, timer.live, at)
    else wakeUp(timer)
  }
  return () => {
    alarm.cancelled = true
    slots.remove(timer.alarms, alarm)
  }
}
