/** The Redis store's waiter queue: FIFO hand-off, no barging, dead waiters skipped. */
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import { LockKv } from "../../src/index.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"

const ttl = Duration.seconds(10)
const place = Duration.seconds(2)
const store = LockKv.layerRedis({ url: redisUrl(), namespace: uniqueNamespace("fair") })

// One store for the block, in real time (no TestClock): each test uses a key of its own.
layer(store, { excludeTestServices: true })("fair queue (redis store)", (it) => {
  it.scoped("a release goes to the longest waiter; the releaser and newcomers cannot barge", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      expect((yield* kv.acquire("q", "holder", ttl, place))._tag).toBe("Acquired")
      expect((yield* kv.acquire("q", "w1", ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquire("q", "w2", ttl, place))._tag).toBe("Held")
      const wake1 = (yield* kv.watchReleases("q", "w1")).next
      const wake2 = (yield* kv.watchReleases("q", "w2")).next
      expect(yield* kv.release("q", "holder")).toBe(true)
      // Only the head is told: the release granted it the lock.
      expect(yield* Effect.timeoutOption(wake1, "2 seconds")).toEqual(Option.some({ _tag: "Granted", fence: 2 }))
      expect(yield* Effect.timeoutOption(wake2, "200 millis")).toEqual(Option.none())
      // The lock now holds w1: the old holder, w2 and a one-shot newcomer are refused.
      expect((yield* kv.acquire("q", "holder", ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquire("q", "w2", ttl, place))._tag).toBe("Held")
      const newcomer = yield* kv.acquire("q", "newcomer", ttl)
      expect(newcomer._tag).toBe("Held")
      if (newcomer._tag === "Held") {
        // A granted lock lives only as long as the head's place, so a poller wakes by then.
        expect(Duration.toMillis(Option.getOrThrow(newcomer.remaining))).toBeLessThanOrEqual(2000)
      }
      // w1's try (as after a lost message) confirms the grant: same fence.
      expect(yield* kv.acquire("q", "w1", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
      expect(yield* kv.release("q", "w1")).toBe(true)
      expect(yield* Effect.timeoutOption(wake2, "2 seconds")).toEqual(Option.some({ _tag: "Granted", fence: 3 }))
      expect(yield* kv.acquire("q", "w2", ttl, place)).toEqual({ _tag: "Acquired", fence: 3 })
    }))

  it.scoped("a waiter that leaves is removed and the next one is granted the lock", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      yield* kv.acquire("l", "holder", ttl, place)
      yield* kv.acquire("l", "w1", ttl, place)
      yield* kv.acquire("l", "w2", ttl, place)
      const wake2 = (yield* kv.watchReleases("l", "w2")).next
      // w1 gives up while the lock is held: nobody is told yet.
      expect(yield* kv.release("l", "w1")).toBe(false)
      expect(yield* Effect.timeoutOption(wake2, "200 millis")).toEqual(Option.none())
      yield* kv.release("l", "holder")
      expect(yield* Effect.timeoutOption(wake2, "2 seconds")).toEqual(Option.some({ _tag: "Granted", fence: 2 }))
      expect(yield* kv.acquire("l", "w2", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
    }))

  it.scoped("a crashed waiter at the head is skipped once its place (and its grant) expires", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.LockKv
      const shortPlace = Duration.millis(300)
      yield* kv.acquire("d", "holder", ttl, shortPlace)
      yield* kv.acquire("d", "dead", ttl, shortPlace)
      yield* kv.acquire("d", "alive", ttl, shortPlace)
      yield* kv.release("d", "holder")
      // "dead" is granted the lock but never comes back; "alive" keeps its place by trying and gets
      // the lock once "dead"'s place, hence its grant, ran out.
      const start = Date.now()
      const alive = yield* Effect.fork(Effect.gen(function*() {
        for (let i = 0; i < 40; i++) {
          const result = yield* kv.acquire("d", "alive", ttl, shortPlace)
          if (result._tag === "Acquired") return Date.now() - start
          yield* Effect.sleep("50 millis")
        }
        return -1
      }))
      const waited = yield* Fiber.join(alive)
      expect(waited).toBeGreaterThanOrEqual(0)
      expect(waited).toBeLessThan(1000)
    }))
})
