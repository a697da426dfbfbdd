import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Schedule, TestClock } from "effect"
import { Lock, LockKv } from "../src/index.js"

const provide = Effect.provide(LockKv.layerMemory)

describe("Lock on the memory backend (TestClock)", () => {
  it.effect("withLock runs the effect and releases", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      const result = yield* Effect.gen(function*() {
        const held = yield* kv.get("a")
        return held
      }).pipe(Lock.withLock("a"))
      expect(Option.isSome(result)).toBe(true)
      expect(yield* kv.get("a")).toEqual(Option.none())
    }).pipe(provide))

  it.effect("expiry without extension lets another acquire", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      const first = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const handle = yield* Lock.acquire("b", { ttl: "1 second", autoExtend: false })
        const lost = yield* handle.lost
        return [handle.fence, lost._tag] as const
      })))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1001 millis")
      const second = yield* Lock.acquire("b", { ttl: "1 second", wait: 0 }).pipe(Effect.map((h) => h.fence), Effect.scoped)
      const [fence, tag] = yield* Fiber.join(first)
      expect(tag).toBe("LockLost")
      expect(second).toBeGreaterThan(fence)
      void kv
    }).pipe(provide))

  it.effect("auto-extension keeps a lock past many TTLs", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.sleep("20 seconds").pipe(Lock.withLock("c", { ttl: "1 second" })))
      for (let i = 0; i < 100; i++) {
        yield* TestClock.adjust("100 millis")
      }
      const other = yield* Lock.tryWithLock(Effect.succeed(1), "c")
      expect(other).toEqual(Option.none())
      for (let i = 0; i < 100; i++) {
        yield* TestClock.adjust("100 millis")
      }
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(Option.isSome(yield* Lock.tryWithLock(Effect.succeed(1), "c"))).toBe(true)
    }).pipe(provide))

  it.effect("wait running out gives LockNotAcquired", () =>
    Effect.gen(function*() {
      yield* Effect.fork(Effect.never.pipe(Lock.withLock("d", { ttl: "1 second" })))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Effect.either(Lock.withLock(Effect.void, "d", { wait: "3 seconds" })))
      for (let i = 0; i < 40; i++) yield* TestClock.adjust("100 millis")
      const result = yield* Fiber.join(waiter)
      expect(result._tag === "Left" && result.left._tag).toBe("LockNotAcquired")
    }).pipe(provide))

  it.effect("a release wakes a waiter at once", () =>
    Effect.gen(function*() {
      const holder = yield* Effect.fork(Effect.sleep("100 millis").pipe(Lock.withLock("e")))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Lock.withLock(Clock_now(), "e", { retry: Schedule.spaced("1 hour"), wait: "2 hours" }))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(holder)
      const acquiredAt = yield* Fiber.join(waiter)
      expect(acquiredAt).toBe(100)
    }).pipe(provide))

  it.effect("retry schedule is honoured", () =>
    Effect.gen(function*() {
      yield* Effect.fork(Effect.never.pipe(Lock.withLock("f", { ttl: "1 minute" })))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(Effect.either(Lock.withLock(Effect.void, "f", { retry: Schedule.recurs(2) })))
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(waiter)
      expect(result._tag === "Left" && result.left._tag).toBe("LockNotAcquired")
    }).pipe(provide))

  it.effect("bad input fails with InvalidArgument", () =>
    Effect.gen(function*() {
      const cases: Array<[string, Lock.Options]> = [
        ["", {}],
        ["k", { ttl: -1 }],
        ["k", { ttl: Number.NaN }],
        ["k", { ttl: 0 }],
        ["k", { ttl: Duration.infinity }],
        ["k", { wait: -1 }],
        ["k", { wait: Number.NaN }],
        ["x".repeat(5000), {}]
      ]
      for (const [key, options] of cases) {
        const result = yield* Effect.either(Lock.withLock(Effect.void, key, options))
        expect(result._tag === "Left" && result.left._tag).toBe("InvalidArgument")
      }
    }).pipe(provide))

  it.effect("interruption releases at once", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      const fiber = yield* Effect.fork(Effect.never.pipe(Lock.withLock("g")))
      yield* Effect.yieldNow()
      expect(Option.isSome(yield* kv.get("g"))).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(yield* kv.get("g")).toEqual(Option.none())
    }).pipe(provide))

  it.effect("lost lock interrupts the protected effect", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      let interrupted = false
      const fiber = yield* Effect.fork(Effect.either(
        Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => { interrupted = true })), Lock.withLock("h", { ttl: "3 seconds" }))
      ))
      yield* Effect.yieldNow()
      yield* kv.del("h")
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
      expect(interrupted).toBe(true)
    }).pipe(provide))
})

const Clock_now = () => Effect.clockWith((clock) => clock.currentTimeMillis)
