/** One behavioural suite for semaphores and read-write locks, run against both backends. */
import { describe, expect } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Schedule } from "effect"
import { type Lock, LockKv, ReadWriteLock, Semaphore } from "../src/index.js"
import { backends } from "./support/backends.js"

/** A small deterministic generator (mulberry32): the random mixes below replay exactly. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6D2B79F5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

for (const backend of backends) {
  describe(`Semaphore and ReadWriteLock (${backend.name})`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, LockKv.LockKv>) => Effect.provide(effect, backend.layer())
    const elapseInSteps = (total: number, step = 50) =>
      Effect.repeatN(backend.elapse(step), Math.max(0, Math.ceil(total / step) - 1))
    const now = Effect.clockWith((clock) => clock.currentTimeMillis)
    /** Runs `effect` forked, lets `total` ms pass in steps, then joins it. */
    const driven = <A, E>(effect: Effect.Effect<A, E, LockKv.LockKv>, total: number) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(effect)
        yield* elapseInSteps(total)
        return yield* Fiber.join(fiber)
      })

    backend.test("withPermits: never more than limit holders at once, and every caller runs", () =>
      run(Effect.gen(function*() {
        let inside = 0
        let most = 0
        let done = 0
        const section = Effect.gen(function*() {
          inside++
          most = Math.max(most, inside)
          yield* Effect.sleep("40 millis")
          inside--
          done++
        })
        yield* driven(
          Effect.all(Array.from({ length: 8 }, () => Semaphore.withPermits(section, "s", 1, { limit: 3 })), {
            concurrency: "unbounded",
            discard: true
          }),
          1500
        )
        expect(most).toBe(3)
        expect(done).toBe(8)
        const kv = yield* LockKv.LockKv
        expect(yield* kv.permitsInUse("s")).toBe(0)
      })))

    backend.test("permits are held while the section runs and given back after, on failure too", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const inUse = yield* Semaphore.withPermits("p", 2, { limit: 5 })(kv.permitsInUse("p"))
        expect(inUse).toBe(2)
        expect(yield* kv.permitsInUse("p")).toBe(0)
        const failed = yield* Effect.either(Semaphore.withPermits(Effect.fail("boom" as const), "p", 5, { limit: 5 }))
        expect(failed._tag === "Left" && failed.left).toBe("boom")
        expect(yield* kv.permitsInUse("p")).toBe(0)
      })))

    backend.test("tryWithPermits: none when the permits are not free, some when they are", () =>
      run(Effect.gen(function*() {
        const opts = { limit: 3 }
        const inner = yield* Semaphore.withPermits("t", 2, opts)(
          Effect.all([
            Semaphore.tryWithPermits("t", 1, opts)(Effect.succeed("one")),
            Semaphore.tryWithPermits("t", 2, opts)(Effect.succeed("two"))
          ])
        )
        expect(inner).toEqual([Option.some("one"), Option.none()])
        expect(yield* Semaphore.tryWithPermits(Effect.succeed(3), "t", 3, opts)).toEqual(Option.some(3))
      })))

    backend.test("scoped acquire: a handle with the permits, released when the Scope closes; fences increase", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const fences: Array<number> = []
        for (let i = 0; i < 4; i++) {
          yield* Effect.scoped(Effect.gen(function*() {
            const handle = yield* Semaphore.acquire("h", 2, { limit: 4 })
            expect(handle).toMatchObject({ key: "h", permits: 2, limit: 4 })
            expect(yield* kv.permitsInUse("h")).toBe(2)
            fences.push(handle.fence)
          }))
          expect(yield* kv.permitsInUse("h")).toBe(0)
        }
        for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!)
        // extend: a new TTL for the permits, here past the ttl that would have let them go.
        const kept = yield* Effect.scoped(Effect.gen(function*() {
          const handle = yield* Semaphore.acquire("hx", 2, { limit: 3, ttl: "300 millis", autoExtend: false })
          yield* handle.extend("2 seconds")
          yield* elapseInSteps(600)
          return yield* kv.permitsInUse("hx")
        }))
        expect(kept).toBe(2)
        // Released early by hand: a no-op the second time.
        const released = yield* Effect.scoped(Effect.flatMap(
          Semaphore.acquire("h", 1, { limit: 4 }),
          (handle) => Effect.all([handle.release, handle.release])
        ))
        expect(released).toEqual([true, false])
      })))

    backend.test("FIFO: a waiter for many permits is not overtaken by a later waiter for few", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const opts: Semaphore.Options = { limit: 3, retry: Schedule.spaced("1 hour"), wait: "1 minute" }
        const order: Array<string> = []
        const gate = yield* Deferred.make<void>()
        const first = yield* Effect.fork(Semaphore.withPermits(Deferred.await(gate), "fifo", 1, opts))
        yield* backend.settle
        const big = yield* Effect.fork(
          Semaphore.withPermits(
            Effect.zipRight(Effect.sync(() => order.push("big")), backend.elapse(0)),
            "fifo",
            3,
            opts
          )
        )
        yield* backend.settle
        const small = yield* Effect.fork(Semaphore.withPermits(Effect.sync(() => order.push("small")), "fifo", 1, opts))
        yield* backend.settle
        // 1 of 3 in use: `small` would fit, but `big` came first.
        expect(order).toEqual([])
        expect(yield* kv.permitsInUse("fifo")).toBe(1)
        // Nor may a one-try caller barge in.
        expect(yield* Semaphore.tryWithPermits(Effect.void, "fifo", 1, opts)).toEqual(Option.none())
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(first)
        yield* backend.settle
        yield* Fiber.join(big)
        yield* Fiber.join(small)
        expect(order).toEqual(["big", "small"])
      })))

    backend.test("an interrupted waiter leaves the queue at once: those behind it go on", () =>
      run(Effect.gen(function*() {
        const opts: Semaphore.Options = { limit: 3, retry: Schedule.spaced("1 hour"), wait: "1 minute" }
        const holder = yield* Effect.fork(Semaphore.withPermits(Effect.never, "leave", 1, opts))
        yield* backend.settle
        const big = yield* Effect.fork(Semaphore.withPermits(Effect.void, "leave", 3, opts))
        yield* backend.settle
        const small = yield* Effect.fork(Semaphore.withPermits(Effect.succeed("small"), "leave", 2, opts))
        yield* backend.settle
        expect(small.unsafePoll()).toBeNull()
        // Leaving hands the head on: 1 + 2 of 3 fit, with no release by a holder.
        yield* Fiber.interrupt(big)
        yield* backend.settle
        // At once: not when the place of the waiter that left would have lapsed (2 s).
        expect(yield* Fiber.join(small).pipe(Effect.timeout("1 second"))).toBe("small")
        yield* Fiber.interrupt(holder)
      })))

    backend.test("a release hands the permits to a waiter at once, without polling", () =>
      run(Effect.gen(function*() {
        const opts: Semaphore.Options = { limit: 2, retry: Schedule.spaced("1 hour"), wait: "2 hours" }
        const holder = yield* Effect.fork(
          Semaphore.withPermits(backend.elapse(0).pipe(Effect.zipRight(Effect.sleep("200 millis"))), "r", 2, opts)
        )
        yield* backend.settle
        const start = yield* now
        const waiter = yield* Effect.fork(Semaphore.withPermits(now, "r", 1, opts))
        yield* backend.settle
        yield* elapseInSteps(200)
        yield* Fiber.join(holder)
        const acquiredAt = yield* Fiber.join(waiter)
        expect(acquiredAt - start).toBeLessThan(1000)
      })))

    backend.test("a crashed holder's permits come back when its TTL ends, not before", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        // A holder that vanished: its permits stay until their TTL ends.
        const taken = yield* kv.acquirePermits("crash", "dead-holder", 2, 3, Duration.millis(400))
        expect(taken._tag).toBe("Acquired")
        expect(yield* Semaphore.tryWithPermits(Effect.void, "crash", 2, { limit: 3 })).toEqual(Option.none())
        const start = yield* now
        const waiter = yield* Effect.fork(
          Semaphore.withPermits(now, "crash", 2, { limit: 3, retry: Schedule.spaced("1 hour") })
        )
        yield* backend.settle
        yield* elapseInSteps(500)
        const acquiredAt = yield* Fiber.join(waiter)
        expect(acquiredAt - start).toBeGreaterThanOrEqual(350)
        expect(acquiredAt - start).toBeLessThan(1500)
      })))

    backend.test("a crashed waiter at the head delays the next waiter by at most its place in the queue", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const opts: Semaphore.Options = { limit: 3, retry: Schedule.spaced("1 hour"), wait: "1 minute" }
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Semaphore.withPermits(Deferred.await(gate), "dw", 1, opts))
        yield* backend.settle
        // A waiter for all 3 permits that joined the queue and then vanished (its place: 2 s from now).
        const queued = yield* kv.acquirePermits("dw", "dead-waiter", 3, 3, Duration.seconds(30), Duration.seconds(2))
        expect(queued._tag).toBe("Held")
        const start = yield* now
        const waiter = yield* Effect.fork(Semaphore.withPermits(now, "dw", 1, opts))
        yield* backend.settle
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        // The release granted the permits to the dead head, for what was left of its place.
        yield* elapseInSteps(1000)
        expect(waiter.unsafePoll()).toBeNull()
        yield* elapseInSteps(1500)
        const acquiredAt = yield* Fiber.join(waiter)
        expect(acquiredAt - start).toBeGreaterThanOrEqual(1500)
        expect(acquiredAt - start).toBeLessThan(3000)
      })))

    backend.test("auto-extension keeps permits well past their TTL", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const holder = yield* Effect.fork(
          Semaphore.withPermits(backend.elapse(0).pipe(Effect.zipRight(Effect.never)), "ae", 2, {
            limit: 2,
            ttl: "300 millis"
          })
        )
        yield* backend.settle
        yield* elapseInSteps(1500)
        expect(yield* kv.permitsInUse("ae")).toBe(2)
        expect(yield* Semaphore.tryWithPermits(Effect.void, "ae", 1, { limit: 2 })).toEqual(Option.none())
        expect(holder.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(holder)
        expect(yield* kv.permitsInUse("ae")).toBe(0)
      })))

    backend.test("permits taken away: LockLost through `lost`, and the section is interrupted", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const token = yield* Deferred.make<string>()
        const holder = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const handle = yield* Semaphore.acquire("lost", 1, { limit: 2, ttl: "600 millis" })
          yield* Deferred.succeed(token, handle.token)
          return yield* handle.lost
        })))
        // Released behind the holder's back (an operator, a bug): its next renewal finds them gone.
        expect(yield* kv.releasePermits("lost", yield* Deferred.await(token))).toBe(true)
        yield* elapseInSteps(400)
        const lost = yield* Fiber.join(holder)
        expect(lost).toMatchObject({ _tag: "LockLost", key: "lost" })

        // Unconfirmed (no auto-extension): the validity deadline interrupts the section.
        let interrupted = false
        const result = yield* driven(
          Effect.either(
            Effect.never.pipe(
              Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))),
              Semaphore.withPermits("lost2", 1, { limit: 2, ttl: "300 millis", autoExtend: false })
            )
          ),
          500
        )
        expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
        expect(interrupted).toBe(true)
      })))

    backend.test("wait running out gives LockNotAcquired with the caller's key", () =>
      run(Effect.gen(function*() {
        const holder = yield* Effect.fork(Semaphore.withPermits(Effect.never, "w", 2, { limit: 2 }))
        yield* backend.settle
        const result = yield* driven(
          Effect.either(Semaphore.withPermits(Effect.void, "w", 1, { limit: 2, wait: "300 millis" })),
          400
        )
        expect(result._tag === "Left" && result.left._tag === "LockNotAcquired" && result.left.key).toBe("w")
        yield* Fiber.interrupt(holder)
      })))

    backend.test("a limit other than the current holders' fails with InvalidArgument naming both", () =>
      run(Effect.gen(function*() {
        const result = yield* Semaphore.withPermits("lim", 1, { limit: 3 })(
          Effect.either(Semaphore.withPermits(Effect.void, "lim", 1, { limit: 5 }))
        )
        expect(result._tag === "Left" && result.left._tag === "InvalidArgument" && result.left.argument).toBe("limit")
        expect(result._tag === "Left" && result.left.message).toMatch(/limit 3.*limit 5/)
        // Once nobody holds or awaits the key, a new limit is taken.
        expect(yield* Semaphore.withPermits(Effect.succeed("ok"), "lim", 5, { limit: 5 })).toBe("ok")
      })))

    backend.test("invalid input fails with InvalidArgument before the store is touched", () =>
      run(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const cases: Array<[() => Effect.Effect<unknown, unknown, LockKv.LockKv>, string]> = [
          [() => Semaphore.withPermits(Effect.void, "v", 0, { limit: 3 }), "permits"],
          [() => Semaphore.withPermits(Effect.void, "v", 4, { limit: 3 }), "permits"],
          [() => Semaphore.withPermits(Effect.void, "v", 1.5, { limit: 3 }), "permits"],
          [() => Semaphore.withPermits(Effect.void, "v", Number.NaN, { limit: 3 }), "permits"],
          [() => Semaphore.withPermits(Effect.void, "v", 1, { limit: 0 }), "limit"],
          [() => Semaphore.withPermits(Effect.void, "v", 1, { limit: 2.5 }), "limit"],
          [() => Semaphore.withPermits(Effect.void, "v", 1, { limit: Semaphore.maxLimit + 1 }), "limit"],
          [() => Semaphore.tryWithPermits(Effect.void, "v", 1, { limit: -1 }), "limit"],
          [() => Effect.scoped(Semaphore.acquire("v", 1, undefined as unknown as Semaphore.Options)), "options"],
          [() => Semaphore.withPermits(Effect.void, "", 1, { limit: 3 }), "key"],
          [() => Semaphore.withPermits(Effect.void, "v", 1, { limit: 3, ttl: "10 millis" }), "ttl"],
          [() => Semaphore.withPermits(Effect.void, "v", 1, { limit: 3, wait: -1 }), "wait"],
          [() => ReadWriteLock.withRead(Effect.void, "v", { ttl: -5 }), "ttl"],
          [() => ReadWriteLock.withWrite(Effect.void, "", {}), "key"],
          // Only Lock has replicas (WAIT): refused, not ignored, when a JavaScript caller passes it.
          [
            () => Semaphore.withPermits(Effect.void, "v", 1, { limit: 3, replicas: 1 } as Semaphore.Options),
            "replicas"
          ],
          [() => ReadWriteLock.withWrite(Effect.void, "v", { replicas: 1 } as ReadWriteLock.Options), "replicas"]
        ]
        for (const [make, argument] of cases) {
          const result = yield* Effect.either(make())
          expect(result, argument).toMatchObject({ _tag: "Left", left: { _tag: "InvalidArgument", argument } })
        }
        // The store methods check too.
        const direct = yield* Effect.either(kv.acquirePermits("v", "tok", 2, 1, Duration.seconds(1)))
        expect(direct).toMatchObject({ _tag: "Left", left: { _tag: "InvalidArgument", argument: "permits" } })
        expect(yield* kv.permitsInUse("v")).toBe(0)
      })))

    backend.test("random mix: never more than limit permits in use", () =>
      run(Effect.gen(function*() {
        const random = seeded(backend.name === "memory" ? 17 : 23)
        const limit = 4
        let inUse = 0
        let most = 0
        let runs = 0
        const caller = (permits: number, sleep: number) =>
          Semaphore.withPermits(
            Effect.gen(function*() {
              inUse += permits
              most = Math.max(most, inUse)
              yield* Effect.sleep(Duration.millis(sleep))
              inUse -= permits
              runs++
            }),
            "mix",
            permits,
            { limit, wait: "1 minute" }
          )
        const callers = Array.from({ length: 16 }, () => caller(1 + Math.floor(random() * limit), 5 + random() * 25))
        yield* driven(Effect.all(callers, { concurrency: "unbounded", discard: true }), 2500)
        expect(runs).toBe(16)
        expect(most).toBeLessThanOrEqual(limit)
        expect(most).toBeGreaterThan(1)
      })))

    // -- read-write locks ------------------------------------------------------

    backend.test("readers share the lock; a writer has it alone", () =>
      run(Effect.gen(function*() {
        const both = yield* ReadWriteLock.withRead("rw")(
          Effect.all([
            ReadWriteLock.tryWithRead(Effect.succeed("reader"), "rw"),
            ReadWriteLock.tryWithWrite(Effect.succeed("writer"), "rw")
          ])
        )
        expect(both).toEqual([Option.some("reader"), Option.none()])
        const underWrite = yield* ReadWriteLock.withWrite("rw")(
          Effect.all([
            ReadWriteLock.tryWithRead(Effect.succeed("reader"), "rw"),
            ReadWriteLock.tryWithWrite(Effect.succeed("writer"), "rw")
          ])
        )
        expect(underWrite).toEqual([Option.none(), Option.none()])
      })))

    backend.test("a waiting writer holds back later readers: a stream of readers cannot starve it", () =>
      run(Effect.gen(function*() {
        const opts: Lock.Options = { retry: Schedule.spaced("1 hour"), wait: "1 minute" }
        const order: Array<string> = []
        const gate = yield* Deferred.make<void>()
        const reader1 = yield* Effect.fork(ReadWriteLock.withRead(Deferred.await(gate), "starve", opts))
        yield* backend.settle
        const writer = yield* Effect.fork(
          ReadWriteLock.withWrite(
            Effect.zipRight(Effect.sync(() => order.push("writer")), backend.elapse(0)),
            "starve",
            opts
          )
        )
        yield* backend.settle
        const reader2 = yield* Effect.fork(
          ReadWriteLock.withRead(Effect.sync(() => order.push("reader2")), "starve", opts)
        )
        yield* backend.settle
        expect(order).toEqual([])
        expect(yield* ReadWriteLock.tryWithRead(Effect.void, "starve")).toEqual(Option.none())
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(reader1)
        yield* Fiber.join(writer)
        yield* Fiber.join(reader2)
        expect(order).toEqual(["writer", "reader2"])
      })))

    backend.test("writer fences strictly increase, readers' acquisitions included", () =>
      run(Effect.gen(function*() {
        const fences: Array<number> = []
        for (let i = 0; i < 3; i++) {
          fences.push(yield* Effect.scoped(Effect.map(ReadWriteLock.acquireWrite("fw"), (h) => h.fence)))
          yield* Effect.scoped(ReadWriteLock.acquireRead("fw"))
        }
        for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]! + 1)
      })))

    backend.test("random mix of readers and writers: never a reader with a writer, never two writers", () =>
      run(Effect.gen(function*() {
        const random = seeded(backend.name === "memory" ? 5 : 7)
        let readers = 0
        let writers = 0
        let mostReaders = 0
        const violations: Array<string> = []
        const section = (write: boolean, sleep: number) =>
          Effect.gen(function*() {
            if (write) {
              if (readers > 0 || writers > 0) violations.push(`writer with ${readers} readers, ${writers} writers`)
              writers++
            } else {
              if (writers > 0) violations.push(`reader with ${writers} writers`)
              readers++
              mostReaders = Math.max(mostReaders, readers)
            }
            yield* Effect.sleep(Duration.millis(sleep))
            if (write) writers--
            else readers--
          })
        const opts: Lock.Options = { wait: "1 minute" }
        const callers = Array.from({ length: 20 }, () => {
          const write = random() < 0.3
          const sleep = 5 + random() * 20
          return write
            ? ReadWriteLock.withWrite(section(true, sleep), "mixrw", opts)
            : ReadWriteLock.withRead(section(false, sleep), "mixrw", opts)
        })
        yield* driven(Effect.all(callers, { concurrency: "unbounded", discard: true }), 2500)
        expect(violations).toEqual([])
        expect(mostReaders).toBeGreaterThan(1)
      })))
  })
}
