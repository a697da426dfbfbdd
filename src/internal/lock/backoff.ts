import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import { type LockNotAcquired, notAcquired } from "./errors.js"

/**
 * Polling is only the fallback: waiters also wake on a release notification
 * addressed to them and when the holder's TTL ends, so the first retry can wait.
 * Exponential from 50 ms, jittered, capped at 1 s.
 */
export const defaultRetry: Schedule.Schedule<unknown, LockNotAcquired> = Schedule.exponential("50 millis", 2).pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.jittered
)

/**
 * The caller's retry schedule, stepped by hand: each call is one failed try and
 * gives the delay before the next, or none once the schedule is done. `sync`,
 * when present, gives the same without an Effect.
 */
export type Backoff = ((now: number) => Effect.Effect<Option.Option<number>>) & {
  readonly sync?: ((now: number) => number) | undefined
}

export const makeBackoff = (key: string, schedule: Schedule.Schedule<unknown, LockNotAcquired>): Backoff => {
  if (schedule === defaultRetry) return defaultBackoff()
  let state: unknown = schedule.initial
  let input: LockNotAcquired | undefined
  return (now: number): Effect.Effect<Option.Option<number>> =>
    Effect.map(schedule.step(now, input ??= notAcquired(key), state), ([next, , decision]) => {
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      return Option.some(Math.max(0, Intervals.start(decision.intervals) - now))
    })
}

/**
 * `defaultRetry` computed directly: 50 ms · 2ⁿ, at most 1 s, times a jitter in
 * [0.8, 1.2). Every contended acquisition steps its backoff at least once, and
 * stepping the Schedule (with the failed try as its input, an error whose
 * construction alone is a few µs) costs more than the rest of a local hand-off.
 */
const defaultBackoff = (): Backoff => {
  let step = 0
  const sync = (_now: number): number => {
    const delay = Math.min(50 * 2 ** step, 1_000) * (0.8 + 0.4 * Math.random())
    step = Math.min(step + 1, 20)
    return delay
  }
  return Object.assign((now: number) => Effect.succeed(Option.some(sync(now))), { sync })
}
