/**
 * Properties of arbitrary keys on Redis (unicode, up to the length limit, `:`
 * `*` `{}` `|` spaces, newlines…): they stay inside the namespace, every script
 * accepts them, and distinct keys are distinct locks. A server of its own, so
 * that every key and channel on it can be inspected.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { Redis } from "ioredis"
import * as Lock from "../../src/Lock.js"
import * as LockKv from "../../src/LockKv.js"
import { rawClient } from "../redis/faults/support.js"
import { redisServerScoped } from "../support/redisServer.js"
import { key, lookalikePair, truncate } from "./arbitraries.js"

const ns = "nsA"
const ttl = Duration.seconds(60)
const place = Duration.seconds(2)

/** Every key on the server, as raw bytes decoded leniently. */
const allKeys = (raw: Redis) =>
  Effect.promise(async () => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = await raw.scanBuffer(cursor, "COUNT", 1000)
      cursor = String(next)
      for (const k of batch) keys.push(k.toString("utf8"))
    } while (cursor !== "0")
    return keys
  })

const outsideNamespace = (keys: ReadonlyArray<string>) =>
  keys.filter((k) => !(k.startsWith(`${ns}:`) || k.startsWith(`{${ns}:`) || k === "nsB:guard"))

/** Every store operation on each key, interleaved across the keys so that no two share a Redis key. */
const exercise = (kv: LockKv.LockKv.Service, keys: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fences: Array<number> = []
    for (const k of keys) {
      const acquired = yield* kv.acquire(k, "t1", ttl)
      expect(acquired._tag, JSON.stringify(k)).toBe("Acquired")
      if (acquired._tag === "Acquired") fences.push(acquired.fence)
    }
    for (const k of keys) {
      const held = yield* kv.acquire(k, "t2", ttl, place)
      expect(held._tag, JSON.stringify(k)).toBe("Held")
      expect(yield* kv.get(k)).toEqual(Option.some("t1"))
    }
    for (const [i, k] of keys.entries()) {
      expect(yield* kv.fence(k)).toEqual(Option.some(fences[i]!))
      // The release tells the waiter at the head of the queue, which then takes the lock.
      expect(yield* kv.release(k, "t1"), JSON.stringify(k)).toBe(true)
      expect((yield* kv.acquire(k, "t2", ttl, place))._tag, JSON.stringify(k)).toBe("Acquired")
      expect(yield* kv.fence(k)).toEqual(Option.some(fences[i]! + 1))
      expect(yield* kv.release(k, "t1"), JSON.stringify(k)).toBe(false)
      expect(yield* kv.release(k, "t2"), JSON.stringify(k)).toBe(true)
    }
    // Semaphores of the same names: their own keys, beside the locks'.
    for (const k of keys) {
      expect((yield* kv.acquirePermits(k, "s1", 2, 3, ttl))._tag, JSON.stringify(k)).toBe("Acquired")
      expect((yield* kv.acquirePermits(k, "s2", 3, 3, ttl, place))._tag, JSON.stringify(k)).toBe("Held")
    }
    for (const k of keys) {
      expect(yield* kv.permitsInUse(k), JSON.stringify(k)).toBe(2)
      // The release grants the waiter's permits (and tells it on its channel).
      expect(yield* kv.releasePermits(k, "s1"), JSON.stringify(k)).toBe(true)
      expect(yield* kv.acquirePermits(k, "s2", 3, 3, ttl, place), JSON.stringify(k)).toEqual({
        _tag: "Acquired",
        fence: 2
      })
      expect(yield* kv.extendPermits(k, "s2", ttl)).toBe(true)
      expect(yield* kv.releasePermits(k, "s2"), JSON.stringify(k)).toBe(true)
      expect(yield* kv.permitsInUse(k)).toBe(0)
    }
    for (const k of keys) {
      expect(yield* kv.set(k, "v", { PX: 60_000 })).toBe(true)
      expect(yield* kv.set(k, "x", { NX: true })).toBe(false)
      expect(yield* kv.get(k)).toEqual(Option.some("v"))
      expect(Option.isSome(yield* kv.pttl(k))).toBe(true)
      expect(yield* kv.compareAndExpire(k, "v", ttl)).toBe(true)
      expect(yield* kv.compareAndDelete(k, "v")).toBe(true)
      expect(yield* kv.set(k, "w", { XX: true })).toBe(false)
      expect(yield* kv.set(k, "w")).toBe(true)
      expect(yield* kv.del(k)).toBe(true)
      expect(yield* kv.get(k)).toEqual(Option.none())
    }
  })

describe("property: arbitrary keys on Redis", () => {
  it.scopedLive(
    "never escape the namespace, never break a script, and distinct keys are distinct locks",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const raw = yield* rawClient(server.url)
        const watcher = yield* rawClient(server.url)
        const channels = new Set<string>()
        watcher.on("pmessage", (_pattern: string, channel: string) => channels.add(channel))
        yield* Effect.promise(() => watcher.psubscribe("*"))

        const kv = yield* LockKv.makeRedis({ url: server.url, namespace: ns })
        const other = yield* LockKv.makeRedis({ url: server.url, namespace: "nsB" })
        yield* other.set("guard", "untouched")

        let run = 0
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(FastCheck.uniqueArray(key, { minLength: 1, maxLength: 4 }), async (keys) => {
              // A prefix per run: no state left by an earlier run (fences, queues) matters.
              const prefix = `r${run++}.`
              const prefixed = keys.map((k) => truncate(prefix + k))
              if (new Set(prefixed).size !== prefixed.length) return
              await Effect.runPromise(exercise(kv, prefixed))
              const stray = outsideNamespace(await Effect.runPromise(allKeys(raw)))
              expect(stray).toEqual([])
            }),
            { numRuns: 60 }
          )
        )
        expect(yield* other.get("guard")).toEqual(Option.some("untouched"))
        expect(outsideNamespace(yield* allKeys(raw))).toEqual([])
        // Releases are announced only on the channels of the namespace's stores.
        expect(channels.size).toBeGreaterThan(0)
        for (const channel of channels) expect(channel).toMatch(new RegExp(`^${ns}:__released__:[0-9a-f]{16}$`))
      }),
    60_000
  )

  it.scopedLive(
    "a key and its look-alike (the key + \":fence\", \":queue\"…) are two independent locks",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const kv = yield* LockKv.makeRedis({ url: server.url, namespace: ns })
        let run = 0
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(lookalikePair, FastCheck.boolean(), async ([a, b], reversed) => {
              const prefix = `r${run++}.`
              const [first, second] = reversed ? [prefix + b, prefix + a] : [prefix + a, prefix + b]
              await Effect.runPromise(Effect.gen(function*() {
                expect((yield* kv.acquire(first, "t1", ttl))._tag).toBe("Acquired")
                // A waiter queues on the first: its queue keys exist now.
                expect((yield* kv.acquire(first, "t2", ttl, place))._tag).toBe("Held")
                expect((yield* kv.acquire(second, "t3", ttl))._tag).toBe("Acquired")
                expect((yield* kv.acquire(second, "t4", ttl, place))._tag).toBe("Held")
                expect(yield* kv.get(first)).toEqual(Option.some("t1"))
                expect(yield* kv.get(second)).toEqual(Option.some("t3"))
                expect(yield* kv.release(first, "t1")).toBe(true)
                expect(yield* kv.release(second, "t3")).toBe(true)
                // The queued waiters now get their locks.
                expect((yield* kv.acquire(first, "t2", ttl, place))._tag).toBe("Acquired")
                expect((yield* kv.acquire(second, "t4", ttl, place))._tag).toBe("Acquired")
                expect(yield* kv.release(first, "t2")).toBe(true)
                expect(yield* kv.release(second, "t4")).toBe(true)
              }))
            }),
            { numRuns: 100 }
          )
        )
      }),
    60_000
  )

  it.scopedLive(
    "Lock works on arbitrary keys: contention, and a release wakes the waiter of another process",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const a = Layer.succeed(LockKv.LockKv, yield* LockKv.makeRedis({ url: server.url, namespace: ns }))
        const b = Layer.succeed(LockKv.LockKv, yield* LockKv.makeRedis({ url: server.url, namespace: ns }))
        let run = 0
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(key, async (k0) => {
              const k = truncate(`r${run++}.${k0}`)
              await Effect.runPromise(Effect.gen(function*() {
                let releasedAt = 0
                const holder = Lock.withLock(Effect.sleep("100 millis"), k, { ttl: "10 seconds" }).pipe(
                  Effect.zipRight(Effect.sync(() => {
                    releasedAt = Date.now()
                  })),
                  Effect.provide(a)
                )
                // Only a release message (or the queue refresh) can wake this waiter before an hour.
                const waiter = Effect.sleep("20 millis").pipe(
                  Effect.zipRight(Lock.withLock(Effect.sync(() => Date.now()), k, {
                    retry: Schedule.spaced("1 hour"),
                    wait: "5 seconds"
                  })),
                  Effect.provide(b)
                )
                const busy = Effect.sleep("50 millis").pipe(
                  Effect.zipRight(Lock.tryWithLock(Effect.void, k)),
                  Effect.provide(b)
                )
                const [, acquiredAt, tried] = yield* Effect.all([holder, waiter, busy], { concurrency: "unbounded" })
                expect(tried).toEqual(Option.none())
                expect(acquiredAt - releasedAt).toBeLessThan(300)
              }))
            }),
            { numRuns: 12 }
          )
        )
      }),
    60_000
  )
})
