import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/**
 * Milliseconds from Effect's monotonic clock (`currentTimeNanos`: hrtime in the
 * live Clock, the test instant under TestClock). Deadlines are measured with it,
 * so a wall-clock step (NTP, a manual change) cannot stretch a lock's validity.
 */
export const monotonicMillis = (clock: Clock.Clock): number =>
  // The live Clock reads hrtime as a BigInt; `performance.now()` reads the same
  // monotonic source as a double, without the BigInt (a few per lock cycle).
  clock === liveClock ? Math.floor(performance.now()) : Number(clock.unsafeCurrentTimeNanos() / 1_000_000n)

/** The Clock of Effect's default services: real time. */
export const liveClock: Clock.Clock = Effect.runSync(Effect.clock)

export const now: Effect.Effect<number> = Effect.clockWith((clock) => Effect.succeed(monotonicMillis(clock)))
