import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Option, Schedule, TestClock } from "effect"
import { Lock, LockKv } from "../src/index.js"
import * as leases from "../src/internal/lock/leases.js"
import * as localQueue from "../src/internal/lock/localQueue.js"

const provide = Effect.provide(LockKv.layerMemory)

/**
 * Memory-only timing, exact to the millisecond under TestClock (the shared
 * suite in Lock.test.ts covers behaviour on both backends). Time is moved with
 * bare TestClock.adjust calls, without extra yields, on purpose: this is how a
 * fractional deadline once made the lease manager spin.
 */
describe("Lock on the memory backend (TestClock, exact times)", () => {
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
      const second = yield* Lock.acquire("b", { ttl: "1 second", wait: 0 }).pipe(
        Effect.map((h) => h.fence),
        Effect.scoped
      )
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

  it.effect("a release wakes a waiter at once", () =>
    Effect.gen(function*() {
      const holder = yield* Effect.fork(Effect.sleep("100 millis").pipe(Lock.withLock("e")))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(
        Lock.withLock(Clock_now(), "e", { retry: Schedule.spaced("1 hour"), wait: "2 hours" })
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(holder)
      const acquiredAt = yield* Fiber.join(waiter)
      expect(acquiredAt).toBe(100)
    }).pipe(provide))
})

describe("Lock.minimumTtl", () => {
  it("is the smallest ttl whose validity outlasts a renewal sent at ttl/3 and confirmed a full ttl/3 later", () => {
    const min = leases.minimumTtlMillis
    expect(Duration.toMillis(Lock.minimumTtl)).toBe(min)
    const trustedThroughFirstRenewal = (ttl: number) => leases.validityMillis(ttl) >= (2 * ttl) / 3
    expect(trustedThroughFirstRenewal(min - 1)).toBe(false)
    for (let ttl = min; ttl <= 100_000; ttl++) {
      if (!trustedThroughFirstRenewal(ttl)) expect.fail(`ttl ${ttl} ms is not trusted through its first renewal`)
    }
  })
})

const Clock_now = () => Effect.clockWith((clock) => clock.currentTimeMillis)

describe("Lock on the memory backend: cost per cycle", () => {
  it.effect("short locks do not wake the lease manager each time", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      const cycles = Effect.gen(function*() {
        for (let i = 0; i < 200; i++) {
          yield* Lock.withLock(Effect.void, "cost")
          // Let other fibers (the lease manager) run between cycles, as store I/O would.
          yield* Effect.yieldNow()
        }
      })
      // Warm up: the store's lease manager starts with the first lock.
      yield* cycles
      const before = leases.managerLooks(kv)
      yield* cycles
      // It sleeps until the first renewal would be due (ttl/3 = 10 s of TestClock time, which stands still).
      expect(leases.managerLooks(kv) - before).toBeLessThanOrEqual(1)
    }).pipe(provide))

  it.effect("the in-process lines of a store stay bounded however many keys are locked", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      // One key, many cycles: its line is reused.
      for (let i = 0; i < 100; i++) yield* Lock.withLock(Effect.void, "same")
      expect(localQueue.lineCount(kv)).toBe(1)
      // Many keys, once each: free lines are dropped once there are more than 256.
      for (let i = 0; i < 2_000; i++) yield* Lock.withLock(Effect.void, `key-${i}`)
      expect(localQueue.lineCount(kv)).toBeLessThanOrEqual(257)
      // A key held while the others come and go keeps its line, and its waiter.
      const held = yield* Effect.fork(Lock.withLock(Effect.never, "held"))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      const waiter = yield* Effect.fork(Lock.withLock(Effect.succeed("got it"), "held", { wait: "1 minute" }))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      for (let i = 0; i < 1_000; i++) yield* Lock.withLock(Effect.void, `other-${i}`)
      expect(waiter.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(held)
      expect(yield* Fiber.join(waiter)).toBe("got it")
    }).pipe(provide))
})
