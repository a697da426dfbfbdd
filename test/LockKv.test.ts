/** One behavioural suite for the store, run against both backends. */
import { expect } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { LockKv } from "../src/index.js"
import { backends, uniqueNamespace } from "./support/backends.js"

for (const backend of backends) {
  backend.block(`LockKv (${backend.name})`, (it) => {
    it.effect("get / set / del", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(kv.backend).toBe(backend.name)
        expect(yield* kv.get("a")).toEqual(Option.none())
        expect(yield* kv.set("a", "1")).toBe(true)
        expect(yield* kv.get("a")).toEqual(Option.some("1"))
        expect(yield* kv.set("a", "2")).toBe(true)
        expect(yield* kv.get("a")).toEqual(Option.some("2"))
        expect(yield* kv.del("a")).toBe(true)
        expect(yield* kv.del("a")).toBe(false)
        expect(yield* kv.get("a")).toEqual(Option.none())
      }))

    it.effect("NX writes only when absent, XX only when present", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(yield* kv.set("k", "x", { XX: true })).toBe(false)
        expect(yield* kv.get("k")).toEqual(Option.none())
        expect(yield* kv.set("k", "first", { NX: true })).toBe(true)
        expect(yield* kv.set("k", "second", { NX: true })).toBe(false)
        expect(yield* kv.get("k")).toEqual(Option.some("first"))
        expect(yield* kv.set("k", "third", { XX: true })).toBe(true)
        expect(yield* kv.get("k")).toEqual(Option.some("third"))
      }))

    it.effect("PX and ttl expire the key; a plain set clears the TTL", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(yield* kv.set("px", "v", { NX: true, PX: 200 })).toBe(true)
        expect(yield* kv.set("ttl", "v", { ttl: "200 millis" })).toBe(true)
        expect(yield* kv.set("keep", "v", { PX: 200 })).toBe(true)
        expect(yield* kv.set("keep", "w")).toBe(true)
        const remaining = yield* kv.pttl("px")
        expect(Option.isSome(remaining)).toBe(true)
        const millis = Duration.toMillis(Option.getOrThrow(remaining))
        expect(millis).toBeGreaterThan(100)
        expect(millis).toBeLessThanOrEqual(200)
        expect(yield* kv.pttl("keep")).toEqual(Option.none())
        yield* backend.elapse(300)
        expect(yield* kv.get("px")).toEqual(Option.none())
        expect(yield* kv.get("ttl")).toEqual(Option.none())
        expect(yield* kv.get("keep")).toEqual(Option.some("w"))
        // An expired key is absent for NX.
        expect(yield* kv.set("px", "again", { NX: true })).toBe(true)
      }))

    it.effect("pttl: none when absent or without TTL", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(yield* kv.pttl("none")).toEqual(Option.none())
        yield* kv.set("plain", "v")
        expect(yield* kv.pttl("plain")).toEqual(Option.none())
      }))

    it.effect("compareAndDelete deletes only the expected value", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        yield* kv.set("c", "mine")
        expect(yield* kv.compareAndDelete("c", "theirs")).toBe(false)
        expect(yield* kv.get("c")).toEqual(Option.some("mine"))
        expect(yield* kv.compareAndDelete("c", "mine")).toBe(true)
        expect(yield* kv.get("c")).toEqual(Option.none())
        expect(yield* kv.compareAndDelete("c", "mine")).toBe(false)
      }))

    it.effect("compareAndExpire resets the TTL only for the expected value", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        yield* kv.set("e", "mine", { PX: 200 })
        expect(yield* kv.compareAndExpire("e", "theirs", "10 seconds")).toBe(false)
        expect(yield* kv.compareAndExpire("absent", "mine", "10 seconds")).toBe(false)
        expect(yield* kv.compareAndExpire("e", "mine", "10 seconds")).toBe(true)
        const remaining = Duration.toMillis(Option.getOrThrow(yield* kv.pttl("e")))
        expect(remaining).toBeGreaterThan(9000)
        yield* backend.elapse(300)
        expect(yield* kv.get("e")).toEqual(Option.some("mine"))
      }))

    it.effect("acquire sets the token with a TTL and hands out increasing fences", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        expect(yield* kv.fence("f")).toEqual(Option.none())
        const first = yield* kv.acquire("f", "t1", Duration.millis(5000))
        expect(first._tag).toBe("Acquired")
        const held = yield* kv.acquire("f", "t2", Duration.millis(5000))
        expect(held._tag).toBe("Held")
        if (held._tag === "Held") {
          expect(Duration.toMillis(Option.getOrThrow(held.remaining))).toBeGreaterThan(4000)
        }
        expect(yield* kv.get("f")).toEqual(Option.some("t1"))
        expect(yield* kv.release("f", "t2")).toBe(false)
        expect(yield* kv.release("f", "t1")).toBe(true)
        const second = yield* kv.acquire("f", "t3", Duration.millis(5000))
        expect(second._tag === "Acquired" && first._tag === "Acquired" && second.fence > first.fence).toBe(true)
        expect(yield* kv.fence("f")).toEqual(Option.some(second._tag === "Acquired" ? second.fence : -1))
      }))

    it.effect("a key's fence outlives its lock: expiry, the sweeper, del and set do not reset it", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const fenceOf = (result: LockKv.AcquireResult) => result._tag === "Acquired" ? result.fence : -1
        const first = fenceOf(yield* kv.acquire("g", "t1", Duration.millis(50)))
        expect(first).toBeGreaterThan(0)
        // Past the TTL and past the memory store's sweep (every second).
        yield* backend.elapse(1_100)
        expect(yield* kv.get("g")).toEqual(Option.none())
        expect(yield* kv.fence("g")).toEqual(Option.some(first))
        const second = fenceOf(yield* kv.acquire("g", "t2", Duration.millis(5000)))
        expect(second).toBeGreaterThan(first)
        expect(yield* kv.del("g")).toBe(true)
        expect(yield* kv.set("g", "plain")).toBe(true)
        expect(yield* kv.del("g")).toBe(true)
        const third = fenceOf(yield* kv.acquire("g", "t3", Duration.millis(5000)))
        expect(third).toBeGreaterThan(second)
        expect(yield* kv.fence("g")).toEqual(Option.some(third))
      }))

    it.effect("release wakes the waiter of that key only", () =>
      Effect.scoped(Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const watchA = (yield* kv.watchReleases("wa", "watcher-a")).next
        const watchB = (yield* kv.watchReleases("wb", "watcher-b")).next
        yield* kv.acquire("wa", "t", Duration.millis(5000))
        yield* kv.acquire("wb", "t", Duration.millis(5000))
        // Both watchers wait (queued) for their key.
        expect((yield* kv.acquire("wa", "watcher-a", Duration.millis(5000), Duration.seconds(2)))._tag).toBe("Held")
        expect((yield* kv.acquire("wb", "watcher-b", Duration.millis(5000), Duration.seconds(2)))._tag).toBe("Held")
        yield* kv.release("wa", "t")
        yield* Effect.timeoutFail(watchA, { duration: "2 seconds", onTimeout: () => "no wake-up" })
        const other = yield* Effect.fork(watchB)
        yield* backend.elapse(100)
        expect(other.unsafePoll()).toBeNull()
      })))

    it.effect("namespaces do not see each other's keys", () =>
      Effect.gen(function*() {
        const ns = uniqueNamespace()
        yield* Effect.flatMap(LockKv.LockKv, (kv) => kv.set("shared", "a")).pipe(
          Effect.provide(backend.layer(`${ns}-a`))
        )
        const other = yield* Effect.flatMap(LockKv.LockKv, (kv) => kv.get("shared")).pipe(
          Effect.provide(backend.layer(`${ns}-b`))
        )
        expect(other).toEqual(Option.none())
      }))

    it.effect("invalid input fails with InvalidArgument before the store is touched", () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const failures: Array<Effect.Effect<unknown, LockKv.LockKvError | LockKv.InvalidArgument>> = [
          kv.get(""),
          kv.set("", "v"),
          kv.set("untouched", "v", { NX: true, XX: true }),
          kv.set("untouched", "v", { PX: 10, ttl: "1 second" }),
          kv.set("untouched", "v", { PX: -5 }),
          kv.set("untouched", "v", { PX: Number.NaN }),
          kv.set("untouched", "v", { ttl: -1 }),
          kv.del(""),
          kv.compareAndExpire("untouched", "v", 0),
          kv.pttl("")
        ]
        for (const failure of failures) {
          const result = yield* Effect.either(failure)
          expect(result._tag === "Left" && result.left._tag).toBe("InvalidArgument")
        }
        expect(yield* kv.get("untouched")).toEqual(Option.none())
      }))
  })
}
