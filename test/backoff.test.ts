/**
 * The default retry is computed directly (backoff.ts, `defaultBackoff`) rather
 * than by stepping `defaultRetry`: both must give the same delays, 50 ms · 2ⁿ
 * capped at 1 s, with a jitter in [0.8, 1.2).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schedule } from "effect"
import { defaultRetry, makeBackoff } from "../src/internal/lock/backoff.js"

const delays = (backoff: (now: number) => Effect.Effect<Option.Option<number>>, steps: number) =>
  Effect.gen(function*() {
    const out: Array<number> = []
    for (let i = 0; i < steps; i++) out.push(Option.getOrThrow(yield* backoff(0)))
    return out
  })

describe("default retry", () => {
  it.effect("computed directly, it gives the delays of the Schedule it stands for", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 20; round++) {
        // A copy of the schedule that is not the same object is stepped as a Schedule.
        const stepped = makeBackoff("k", defaultRetry.pipe(Schedule.map((out) => out)))
        const direct = makeBackoff("k", defaultRetry)
        const [a, b] = [yield* delays(stepped, 8), yield* delays(direct, 8)]
        for (let n = 0; n < 8; n++) {
          const base = Math.min(50 * 2 ** n, 1_000)
          for (const delay of [a[n]!, b[n]!]) {
            expect(delay).toBeGreaterThanOrEqual(base * 0.8 - 1)
            expect(delay).toBeLessThanOrEqual(base * 1.2 + 1)
          }
        }
      }
    }))
})
