/**
 * `wait: Duration.infinity` waits until the lock is acquired, however long
 * that takes (what `effect-lock exec --wait infinity` relies on), on the memory
 * backend under TestClock; the CLI test covers it across processes on Redis.
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, TestClock } from "effect"
import { Lock, LockKv } from "../src/index.js"

// One memory store (and TestClock) for the block: each test uses keys of its own.
layer(LockKv.layerMemory)("Lock wait: Duration.infinity", (it) => {
  it.effect("keeps waiting past any finite wait, then acquires when the holder releases", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Deferred.await(release).pipe(Lock.withLock("forever", { ttl: "1 day" })))
      yield* Effect.yieldNow()

      const forever = yield* Effect.fork(
        Effect.clockWith((clock) => clock.currentTimeMillis).pipe(
          Lock.withLock("forever", { wait: Duration.infinity })
        )
      )
      // The default wait (10 s) for comparison: it gives up.
      const bounded = yield* Effect.fork(Lock.withLock(Effect.void, "forever"))
      yield* Effect.yieldNow()

      // 2 minutes of TestClock: far past the 10 s default (each simulated second costs real time here).
      yield* TestClock.adjust("1 minute")
      yield* TestClock.adjust("1 minute")
      const boundedExit = yield* Fiber.await(bounded)
      expect(Exit.isFailure(boundedExit) && boundedExit.cause._tag === "Fail" && boundedExit.cause.error._tag).toBe(
        "LockNotAcquired"
      )
      expect(Option.isNone(yield* Fiber.poll(forever))).toBe(true)

      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      for (let i = 0; i < 10 && Option.isNone(yield* Fiber.poll(forever)); i++) yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(forever)).toBeGreaterThanOrEqual(120_000)
    }))

  it.effect("accepts infinity as a wait, never as a ttl", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Lock.withLock(Effect.void, "forever-ttl", { ttl: Duration.infinity }))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("InvalidArgument")
      expect(yield* Lock.withLock(Effect.succeed(1), "forever-ok", { wait: Duration.infinity })).toBe(1)
    }))
})
