/** One behavioural suite for the lock combinators, run against both backends. */
import { expect } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, FiberRef, Option, Schedule } from "effect"
import { Lock, LockKv } from "../src/index.js"
import { backends } from "./support/backends.js"

for (const backend of backends) {
  backend.block(`Lock (${backend.name})`, (it) => {
    /** Lets time pass in steps, so renewals and watchdogs run as they would. */
    const elapseInSteps = (total: number, step = 50) =>
      Effect.repeatN(backend.elapse(step), Math.max(0, Math.ceil(total / step) - 1))
    const now = Effect.clockWith((clock) => clock.currentTimeMillis)

    it.effect("withLock holds the key while the effect runs and releases it after", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const inside = yield* Lock.withLock(kv.get("a"), "a")
        expect(Option.isSome(inside)).toBe(true)
        expect(yield* kv.get("a")).toEqual(Option.none())
      }))

    it.effect("release on failure and on defect; the error is the caller's", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const failed = yield* Effect.either(Lock.withLock(Effect.fail("boom" as const), "b"))
        expect(failed._tag === "Left" && failed.left).toBe("boom")
        const died = yield* Effect.exit(Lock.withLock(Effect.die("bug"), "b"))
        expect(Exit.isFailure(died) && Cause.isDie(died.cause)).toBe(true)
        expect(yield* kv.get("b")).toEqual(Option.none())
      }))

    it.effect("interruption releases at once, not at TTL", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const fiber = yield* Effect.fork(Lock.withLock(Effect.never, "i", { ttl: "30 seconds" }))
        yield* backend.settle
        expect(Option.isSome(yield* kv.get("i"))).toBe(true)
        yield* Fiber.interrupt(fiber)
        expect(yield* kv.get("i")).toEqual(Option.none())
      }))

    it.effect("tryWithLock never waits: none when held elsewhere", () =>
      Effect.gen(function*() {
        const nested = yield* Lock.withLock("t")(Lock.tryWithLock("t")(Effect.succeed(1)))
        expect(nested).toEqual(Option.none())
        expect(yield* Lock.tryWithLock(Effect.succeed(2), "t")).toEqual(Option.some(2))
      }))

    it.effect("fences strictly increase with every acquisition", () =>
      Effect.gen(function*() {
        const fences: Array<number> = []
        for (let i = 0; i < 5; i++) {
          fences.push(yield* Effect.scoped(Effect.map(Lock.acquire("f"), (handle) => handle.fence)))
        }
        for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!)
      }))

    it.effect("the token is random and is the key's value while held", () =>
      Effect.scoped(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const handle = yield* Lock.acquire("tok")
        expect(handle.token).toMatch(/^[0-9a-f-]{36}$/)
        expect(yield* kv.get("tok")).toEqual(Option.some(handle.token))
        const other = yield* Effect.scoped(Effect.map(Lock.acquire("tok2"), (h) => h.token))
        expect(other).not.toBe(handle.token)
      })))

    it.effect("expiry without extension lets another acquire; the first holder sees LockLost", () =>
      Effect.gen(function*() {
        const first = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const handle = yield* Lock.acquire("x", { ttl: "300 millis", autoExtend: false })
          const lost = yield* handle.lost
          return { fence: handle.fence, lost }
        })))
        yield* backend.settle
        yield* elapseInSteps(350)
        const second = yield* Effect.scoped(Effect.map(Lock.acquire("x", { wait: 0 }), (h) => h.fence))
        const { fence, lost } = yield* Fiber.join(first)
        expect(lost._tag).toBe("LockLost")
        expect(lost.key).toBe("x")
        expect(second).toBeGreaterThan(fence)
      }))

    it.effect("auto-extension keeps a lock well past its TTL", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const holder = yield* Effect.fork(Lock.withLock(backend.elapse(0).pipe(Effect.zipRight(Effect.never)), "ae", {
          ttl: "300 millis"
        }))
        yield* backend.settle
        yield* elapseInSteps(1500)
        expect(yield* Lock.tryWithLock(Effect.void, "ae")).toEqual(Option.none())
        expect(Option.isSome(yield* kv.get("ae"))).toBe(true)
        expect(holder.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(holder)
      }))

    it.effect("wait running out gives LockNotAcquired with the caller's key", () =>
      Effect.gen(function*() {
        const holder = yield* Effect.fork(Lock.withLock(Effect.never, "w", { ttl: "5 seconds" }))
        yield* backend.settle
        const waiter = yield* Effect.fork(Effect.either(Lock.withLock(Effect.void, "w", { wait: "400 millis" })))
        yield* elapseInSteps(500)
        const result = yield* Fiber.join(waiter)
        expect(result._tag === "Left" && result.left._tag === "LockNotAcquired" && result.left.key).toBe("w")
        yield* Fiber.interrupt(holder)
      }))

    it.effect("a release wakes a waiter at once, without polling", () =>
      Effect.gen(function*() {
        const holder = yield* Effect.fork(
          Lock.withLock(backend.elapse(0).pipe(Effect.zipRight(Effect.sleep("200 millis"))), "r")
        )
        yield* backend.settle
        const start = yield* now
        const waiter = yield* Effect.fork(
          Lock.withLock(now, "r", { retry: Schedule.spaced("1 hour"), wait: "2 hours" })
        )
        yield* backend.settle
        yield* elapseInSteps(200)
        yield* Fiber.join(holder)
        const acquiredAt = yield* Fiber.join(waiter)
        // The holder released at ~200 ms; the waiter's schedule alone would have waited an hour.
        expect(acquiredAt - start).toBeLessThan(1000)
      }))

    it.effect("a crashed holder's lock is taken when its TTL ends, not before", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        // A holder that vanished: its key stays until the TTL ends.
        yield* kv.set("crash", "dead-holder", { PX: 400 })
        const start = yield* now
        const waiter = yield* Effect.fork(Lock.withLock(now, "crash", { retry: Schedule.spaced("1 hour") }))
        yield* backend.settle
        yield* elapseInSteps(500)
        const acquiredAt = yield* Fiber.join(waiter)
        expect(acquiredAt - start).toBeGreaterThanOrEqual(350)
        expect(acquiredAt - start).toBeLessThan(1500)
      }))

    it.effect("the retry schedule is honoured: its end gives LockNotAcquired", () =>
      Effect.gen(function*() {
        const holder = yield* Effect.fork(Lock.withLock(Effect.never, "s", { ttl: "1 minute" }))
        yield* backend.settle
        const tries = { count: 0 }
        const schedule = Schedule.recurs(2).pipe(Schedule.tapInput(() => Effect.sync(() => tries.count++)))
        const waiter = yield* Effect.fork(Effect.either(Lock.withLock(Effect.void, "s", { retry: schedule })))
        yield* elapseInSteps(100)
        const result = yield* Fiber.join(waiter)
        expect(result._tag === "Left" && result.left._tag).toBe("LockNotAcquired")
        expect(tries.count).toBe(3)
        yield* Fiber.interrupt(holder)
      }))

    it.effect("a lost lock interrupts the protected effect and fails with LockLost", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        let interrupted = false
        const fiber = yield* Effect.fork(Effect.either(
          Effect.never.pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                interrupted = true
              })
            ),
            Lock.withLock("lost", { ttl: "600 millis" })
          )
        ))
        yield* backend.settle
        yield* kv.del("lost")
        // Detected by the next renewal, within about ttl/3.
        yield* elapseInSteps(300)
        const result = yield* Fiber.join(fiber)
        expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
        expect(interrupted).toBe(true)
      }))

    it.effect("after LockLost the caller goes on; the loss interrupts the section's forks, not the caller's", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const loseWhileHeld = (key: string) =>
          Effect.gen(function*() {
            yield* backend.settle
            yield* kv.del(key)
            yield* elapseInSteps(300)
          })
        // A fiber the section forks is supervised by the section: the loss
        // interrupts it with the section, and the caller goes on.
        let forkInterrupted = false
        const caller = yield* Effect.fork(Effect.gen(function*() {
          const result = yield* Effect.either(
            Lock.withLock("goes-on", { ttl: "600 millis" })(
              Effect.zipRight(
                Effect.fork(Effect.never.pipe(Effect.onInterrupt(() =>
                  Effect.sync(() => {
                    forkInterrupted = true
                  })
                ))),
                Effect.never
              )
            )
          )
          // Not interrupted: it goes on, suspends and takes the lock again.
          yield* Effect.yieldNow()
          const again = yield* Lock.withLock(Effect.succeed("again"), "goes-on")
          return [result, again] as const
        }))
        yield* loseWhileHeld("goes-on")
        const exit = yield* Fiber.await(caller)
        expect(Exit.isSuccess(exit)).toBe(true)
        if (Exit.isSuccess(exit)) {
          const [result, again] = exit.value
          expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
          expect(again).toBe("again")
        }
        expect(forkInterrupted).toBe(true)

        // A caller with a fiber forked before the section: that fiber is not the section's.
        const withSibling = yield* Effect.fork(Effect.gen(function*() {
          const sibling = yield* Effect.fork(Effect.never)
          const result = yield* Effect.either(Lock.withLock(Effect.never, "sibling", { ttl: "600 millis" }))
          yield* Effect.yieldNow()
          const stillRunning = (yield* Fiber.poll(sibling))._tag === "None"
          yield* Fiber.interrupt(sibling)
          return [result, stillRunning] as const
        }))
        yield* loseWhileHeld("sibling")
        const [result, stillRunning] = yield* Fiber.join(withSibling)
        expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
        expect(stillRunning).toBe(true)
      }))

    it.effect("a fiber forked in the section ends with it; a daemon fiber outlives it", () =>
      Effect.gen(function*() {
        // With and without a fiber the caller forked before the section.
        for (const sibling of [false, true]) {
          const label = `sibling: ${sibling}`
          const forkStarted = yield* Deferred.make<void>()
          const daemonStarted = yield* Deferred.make<void>()
          const go = yield* Deferred.make<void>()
          let forkInterrupted = false
          let daemonInterrupted = false
          // Each started (its finalizer in place) before the section ends.
          const work = (started: Deferred.Deferred<void>, onInterrupt: () => void) =>
            Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(go)).pipe(
              Effect.as("finished"),
              Effect.onInterrupt(() => Effect.sync(onInterrupt))
            )
          const section = Effect.gen(function*() {
            const forked = yield* Effect.fork(work(forkStarted, () => {
              forkInterrupted = true
            }))
            const daemon = yield* Effect.forkDaemon(work(daemonStarted, () => {
              daemonInterrupted = true
            }))
            yield* Deferred.await(forkStarted)
            yield* Deferred.await(daemonStarted)
            return [forked, daemon] as const
          })
          // The caller stays alive after the section until `checked`.
          const checked = yield* Deferred.make<void>()
          const sectionDone = yield* Deferred.make<readonly [Fiber.RuntimeFiber<string>, Fiber.RuntimeFiber<string>]>()
          const caller = yield* Effect.fork(Effect.gen(function*() {
            if (sibling) yield* Effect.fork(Effect.never)
            yield* Deferred.succeed(sectionDone, yield* Lock.withLock(section, `forks-${sibling}`))
            yield* Deferred.await(checked)
          }))
          const [forked, daemon] = yield* Deferred.await(sectionDone)
          // The section's own fork was interrupted when the section ended, while its caller goes on…
          expect(yield* Fiber.await(forked), label).toSatisfy(Exit.isInterrupted)
          expect(forkInterrupted, label).toBe(true)
          yield* Deferred.succeed(checked, undefined)
          yield* Fiber.join(caller)
          // …a daemon fork goes on and does its work.
          yield* Deferred.succeed(go, undefined)
          expect(yield* Fiber.join(daemon), label).toBe("finished")
          expect(daemonInterrupted, label).toBe(false)
        }
      }))

    it.effect("FiberRefs set in the section stay set after it, whatever its exit", () =>
      Effect.gen(function*() {
        const ref = FiberRef.unsafeMake("unset")
        for (const sibling of [false, true]) {
          const caller = Effect.gen(function*() {
            yield* FiberRef.set(ref, "unset")
            if (sibling) yield* Effect.fork(Effect.never)
            const seen: Array<string> = []
            yield* Lock.withLock(FiberRef.set(ref, "synchronous"), "refs")
            seen.push(yield* FiberRef.get(ref))
            yield* Lock.withLock(Effect.zipRight(Effect.yieldNow(), FiberRef.set(ref, "suspended")), "refs")
            seen.push(yield* FiberRef.get(ref))
            yield* Effect.either(
              Lock.withLock(Effect.zipRight(FiberRef.set(ref, "failed"), Effect.fail("boom")), "refs")
            )
            seen.push(yield* FiberRef.get(ref))
            yield* Lock.tryWithLock(FiberRef.set(ref, "tried"), "refs")
            seen.push(yield* FiberRef.get(ref))
            return seen
          })
          const seen = yield* Effect.fork(caller).pipe(Effect.flatMap(Fiber.join))
          expect(seen, `sibling: ${sibling}`).toEqual(["synchronous", "suspended", "failed", "tried"])
        }
      }))

    it.effect("interrupting the caller interrupts the section, whose finalizers run before the release", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const heldInFinalizer: Array<boolean> = []
        const fiber = yield* Effect.fork(Lock.withLock(
          Effect.never.pipe(Effect.onInterrupt(() =>
            // Suspends first: the release must wait for the whole finalizer.
            Effect.zipRight(
              backend.settle,
              Effect.flatMap(Effect.orDie(kv.get("fin")), (v) =>
                Effect.sync(() => heldInFinalizer.push(Option.isSome(v))))
            )
          )),
          "fin"
        ))
        yield* backend.settle
        yield* Fiber.interrupt(fiber)
        expect(heldInFinalizer).toEqual([true])
        expect(yield* kv.get("fin")).toEqual(Option.none())
      }))

    it.effect("nested sections lost together: each takes back only its own interruption", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const outer = yield* Effect.fork(Effect.gen(function*() {
          const result = yield* Effect.either(
            Lock.withLock("nest-outer", { ttl: "600 millis" })(
              Effect.zipRight(
                Effect.either(Lock.withLock(Effect.never, "nest-inner", { ttl: "600 millis" })),
                // The outer lock is lost too: this must be interrupted as well.
                Effect.never
              )
            )
          )
          yield* Effect.yieldNow()
          return result
        }))
        yield* backend.settle
        yield* kv.del("nest-outer")
        yield* kv.del("nest-inner")
        yield* elapseInSteps(300)
        const exit = yield* Fiber.await(outer)
        expect(Exit.isSuccess(exit) && exit.value._tag === "Left" && exit.value.left._tag).toBe("LockLost")
      }))

    it.effect("nested sections: the inner lock lost fails the inner section only; the outer goes on", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const goOn = yield* Deferred.make<void>()
        const outer = yield* Effect.fork(
          Lock.withLock("only-outer", { ttl: "600 millis" })(Effect.gen(function*() {
            const inner = yield* Effect.either(Lock.withLock(Effect.never, "only-inner", { ttl: "600 millis" }))
            yield* Deferred.await(goOn)
            return inner
          }))
        )
        yield* backend.settle
        yield* kv.del("only-inner")
        yield* elapseInSteps(300)
        // The outer section still runs, under its lock.
        expect(outer.unsafePoll()).toBeNull()
        expect(Option.isSome(yield* kv.get("only-outer"))).toBe(true)
        yield* Deferred.succeed(goOn, undefined)
        const inner = yield* Fiber.join(outer)
        expect(inner._tag === "Left" && inner.left._tag === "LockLost" && inner.left.key).toBe("only-inner")
        expect(yield* kv.get("only-outer")).toEqual(Option.none())
      }))

    it.effect("release never deletes a foreign token", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const taken = yield* Deferred.make<void>()
        const first = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const handle = yield* Lock.acquire("own", { ttl: "300 millis", autoExtend: false })
          yield* handle.lost
          yield* Deferred.await(taken)
          return yield* handle.release
        })))
        yield* backend.settle
        yield* elapseInSteps(350)
        expect(yield* kv.set("own", "someone-else", { NX: true, PX: 60_000 })).toBe(true)
        yield* Deferred.succeed(taken, undefined)
        expect(yield* Fiber.join(first)).toBe(false)
        expect(yield* kv.get("own")).toEqual(Option.some("someone-else"))
      }))

    it.effect("extend resets the TTL; extend after loss fails with LockLost", () =>
      Effect.scoped(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const remaining = Effect.map(kv.pttl("ext"), Option.match({ onNone: () => -1, onSome: Duration.toMillis }))
        // Exact under TestClock; on Redis a few round trips pass between the extend and the PTTL.
        const expectRemaining = (actual: number, ttl: number) => {
          if (backend.name === "memory") {
            expect(actual).toBe(ttl)
          } else {
            expect(actual).toBeLessThanOrEqual(ttl)
            expect(actual).toBeGreaterThan(ttl - 500)
          }
        }
        const handle = yield* Lock.acquire("ext", { ttl: "2 seconds", autoExtend: false })
        yield* backend.elapse(1000)
        expect(yield* remaining).toBeLessThanOrEqual(1000)
        yield* handle.extend("20 seconds")
        expectRemaining(yield* remaining, 20_000)
        // Without a ttl: back to the lock's own, shorter than what is left, so it sets the TTL rather than adds to it.
        yield* handle.extend()
        expectRemaining(yield* remaining, 2000)
        yield* kv.del("ext")
        const result = yield* Effect.either(handle.extend())
        expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
        const lost = yield* handle.lost
        expect(lost._tag).toBe("LockLost")
      })))

    it.effect("invalid input fails with InvalidArgument before the store is touched", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const cases: Array<[string, Lock.Options]> = [
          ["", {}],
          ["k", { ttl: -1 }],
          ["k", { ttl: Number.NaN }],
          ["k", { ttl: 0 }],
          ["k", { ttl: Number.POSITIVE_INFINITY }],
          ["k", { ttl: "forever" as never }],
          ["k", { wait: -1 }],
          ["k", { wait: Number.NaN }],
          ["k", { wait: "-1 seconds" }],
          ["k", { wait: [-1, 0] }],
          ["x".repeat(5000), {}]
        ]
        for (const [key, options] of cases) {
          const result = yield* Effect.either(Lock.withLock(Effect.void, key, options))
          expect(result._tag === "Left" && result.left._tag).toBe("InvalidArgument")
          const tried = yield* Effect.either(Lock.tryWithLock(Effect.void, key, options))
          expect(tried._tag === "Left" && tried.left._tag).toBe("InvalidArgument")
        }
        expect(yield* kv.get("k")).toEqual(Option.none())
        expect(yield* kv.fence("k")).toEqual(Option.none())
      }))

    it.effect("a ttl below Lock.minimumTtl fails with InvalidArgument naming it, before the store is touched", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(Duration.toMillis(Lock.minimumTtl)).toBe(93)
        const expectTooSmall = (result: { _tag: "Left"; left: unknown } | { _tag: "Right" }) => {
          expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "InvalidArgument", argument: "ttl" })
          const message = result._tag === "Left" ? String((result.left as { message?: unknown }).message) : ""
          expect(message).toContain("at least 93 ms")
          expect(message).toContain("ttl/3")
        }
        for (const ttl of [92, "92 millis", Duration.millis(91.5), 31, "1 millis"] as const) {
          expectTooSmall(yield* Effect.either(Lock.withLock(Effect.void, "small", { ttl })))
          expectTooSmall(yield* Effect.either(Lock.tryWithLock(Effect.void, "small", { ttl })))
          expectTooSmall(yield* Effect.either(Effect.scoped(Lock.acquire("small", { ttl }))))
        }
        expect(yield* kv.get("small")).toEqual(Option.none())
        expect(yield* kv.fence("small")).toEqual(Option.none())
        // extend(ttl) below the minimum: rejected, the TTL is left as it was.
        yield* Effect.scoped(Effect.gen(function*() {
          const handle = yield* Lock.acquire("small-extend", { ttl: "10 seconds", autoExtend: false })
          expectTooSmall(yield* Effect.either(handle.extend("50 millis")))
          const remaining = yield* kv.pttl("small-extend")
          expect(Option.isSome(remaining) && Duration.toMillis(remaining.value)).toBeGreaterThan(5_000)
          // Exactly the minimum is accepted.
          yield* handle.extend(Lock.minimumTtl)
          const after = yield* kv.pttl("small-extend")
          expect(Option.isSome(after) && Duration.toMillis(after.value)).toBeLessThanOrEqual(93)
        }))
      }))

    it.effect("a ttl of exactly Lock.minimumTtl holds, renewed over several ttls", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const holder = yield* Effect.fork(
          Lock.withLock(Effect.as(Effect.sleep("600 millis"), "done"), "min", { ttl: Lock.minimumTtl })
        )
        yield* backend.settle
        yield* elapseInSteps(300, 10)
        // Three ttls in: still held, by renewals alone.
        expect(Option.isSome(yield* kv.get("min"))).toBe(true)
        expect(yield* Lock.tryWithLock(Effect.void, "min")).toEqual(Option.none())
        yield* elapseInSteps(400, 10)
        expect(yield* Fiber.join(holder)).toBe("done")
        expect(yield* kv.get("min")).toEqual(Option.none())
      }))
  })
}
