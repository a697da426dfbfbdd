/**
 * The store timer (internal/lock/timers.ts) that every waiter's alarm and the
 * lease manager share, under TestClock: alarms ring at their time, in time
 * order, and a cancelled alarm never rings, even when it is cancelled by
 * another alarm ringing in the same pass. Its alarms live in an array with
 * removal by index, so the many-alarms case checks that no removal loses or
 * repeats another alarm.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Random, TestClock } from "effect"
import { LockKv } from "../src/index.js"
import * as timers from "../src/internal/lock/timers.js"

const settle = Effect.repeatN(Effect.yieldNow(), 20)
const advance = (millis: number) => Effect.zipRight(TestClock.adjust(millis), settle)

/** A memory store (the timer is per store), its timer started on the TestClock at 0. */
const withTimer = <A, E>(use: (store: LockKv.LockKv["Type"]) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* LockKv.makeMemory()
    yield* timers.ensureStarted(store)
    yield* settle
    return yield* use(store)
  }))

describe("store timer (TestClock)", () => {
  it.effect("rings alarms at their time and in time order; a cancelled one never rings", () =>
    withTimer((store) =>
      Effect.gen(function*() {
        const rung: Array<string> = []
        timers.setAlarm(store, 30, () => rung.push("c"))
        timers.setAlarm(store, 10, () => rung.push("a"))
        const cancelB = timers.setAlarm(store, 20, () => rung.push("b"))
        cancelB()
        yield* advance(9)
        expect(rung).toEqual([])
        yield* advance(1)
        expect(rung).toEqual(["a"])
        yield* advance(25)
        expect(rung).toEqual(["a", "c"])
      })
    ))

  it.effect("an alarm cancelled by another's ring in the same pass does not ring; one set due by a ring does", () =>
    withTimer((store) =>
      Effect.gen(function*() {
        const rung: Array<string> = []
        let cancelSecond = () => {}
        timers.setAlarm(store, 10, () => {
          rung.push("first")
          cancelSecond()
          // Already due when set: rings in this pass too.
          timers.setAlarm(store, 5, () => rung.push("late"))
        })
        cancelSecond = timers.setAlarm(store, 10, () => rung.push("second"))
        timers.setAlarm(store, 10, () => rung.push("third"))
        yield* advance(10)
        expect(rung.sort()).toEqual(["first", "late", "third"])
      })
    ))

  it.effect("with many alarms set and cancelled in any order, exactly the others ring, each once, in time order", () =>
    withTimer((store) =>
      Effect.gen(function*() {
        const rung: Array<number> = []
        const expected: Array<number> = []
        const cancels: Array<() => void> = []
        for (let i = 0; i < 300; i++) {
          const at = 1 + (yield* Random.nextIntBetween(0, 1000))
          const id = at * 1000 + i
          cancels.push(timers.setAlarm(store, at, () => rung.push(id)))
          expected.push(id)
        }
        // Cancel a random half, in random order (removal moves the last alarm into the gap).
        const order = yield* Random.shuffle(cancels.map((_, i) => i))
        const cancelled = new Set(Array.from(order).slice(0, 150))
        for (const i of cancelled) {
          cancels[i]!()
          cancels[i]!() // twice: idempotent
        }
        for (let t = 0; t <= 1001; t += 7) yield* advance(7)
        const survivors = expected.filter((_, i) => !cancelled.has(i))
        expect(rung.length).toBe(survivors.length)
        expect(new Set(rung)).toEqual(new Set(survivors))
        // In time order (alarms due in the same step may ring in any order among themselves).
        const times = rung.map((id) => Math.floor(id / 1000))
        for (let i = 1; i < times.length; i++) {
          expect(Math.ceil(times[i]! / 7)).toBeGreaterThanOrEqual(Math.ceil(times[i - 1]! / 7))
        }
      })
    ))
})
