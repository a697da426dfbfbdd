/** Redis-only behaviour of semaphores: what the keys look like, and losing them. */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { LockKv, ReadWriteLock, Semaphore } from "../../src/index.js"
import { namespaced } from "../../src/internal/keys.js"
import * as scripts from "../../src/internal/redis/scripts.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"
import { rawClient } from "./faults/support.js"

describe("Semaphore on Redis", () => {
  it.scopedLive(
    "deleting the semaphore's keys: the holder's section is interrupted with LockLost",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("sem-del")
        const raw = yield* rawClient(redisUrl())
        const keys = scripts.permitKeys(namespaced(namespace, "job"))
        const inside = yield* Deferred.make<void>()
        let interrupted = false
        const holder = yield* Effect.fork(
          Effect.either(
            Deferred.succeed(inside, undefined).pipe(
              Effect.zipRight(Effect.never),
              Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))),
              Semaphore.withPermits("job", 2, { limit: 3, ttl: "600 millis" })
            )
          ).pipe(Effect.provide(LockKv.layerRedis({ url: redisUrl(), namespace })))
        )
        yield* Deferred.await(inside)
        expect(yield* Effect.promise(() => raw.zcard(keys[0]))).toBe(1)
        yield* Effect.promise(() => raw.del(...keys))
        // The next renewal (within ttl/3) finds no permits for its token.
        const result = yield* Fiber.join(holder).pipe(Effect.timeout("3 seconds"))
        expect(result._tag === "Left" && result.left._tag).toBe("LockLost")
        expect(interrupted).toBe(true)
      }),
    20_000
  )

  it.scopedLive(
    "the keys live in the key's hash slot and expire with the last holder; only the fence stays",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("sem-keys")
        const raw = yield* rawClient(redisUrl())
        const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace })
        const keys = scripts.permitKeys(namespaced(namespace, "pool"))
        for (const key of keys) expect(key.startsWith(`{${namespace}:pool}:sem.`)).toBe(true)
        // The keys of a key with a hash tag of its own stay in that tag's slot.
        for (const key of scripts.permitKeys(namespaced(namespace, "{t}x"))) {
          expect(key.startsWith(`${namespace}:{t}x\u0000sem.`)).toBe(true)
        }
        const ttls = yield* Effect.scoped(Effect.gen(function*() {
          yield* Semaphore.acquire("pool", 1, { limit: 2, ttl: "5 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, kv)
          )
          return yield* Effect.promise(() => Promise.all(keys.slice(0, 3).map((key) => raw.pttl(key))))
        }))
        // holders, permits, limit: each with a TTL of at most the holder's.
        for (const ttl of ttls) {
          expect(ttl).toBeGreaterThan(0)
          expect(ttl).toBeLessThanOrEqual(5000)
        }
        // Released: nothing left but the fence counter.
        const left = yield* Effect.promise(() => Promise.all(keys.map((key) => raw.exists(key))))
        expect(left).toEqual([0, 0, 0, 1, 0, 0, 0])
        expect(yield* Effect.promise(() => raw.get(keys[3]))).toBe("1")
      }),
    20_000
  )

  it.scopedLive(
    "a release grants at most 1000 waiters at once; the next head's try grants the rest",
    () =>
      Effect.gen(function*() {
        const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: uniqueNamespace("sem-many") })
        const limit = ReadWriteLock.maxReaders
        const minute = Duration.minutes(1)
        // A writer holds; 1200 readers queue behind it.
        expect((yield* kv.acquirePermits("rw", "writer", limit, limit, minute))._tag).toBe("Acquired")
        const readers = Array.from({ length: 1200 }, (_, i) => `reader-${i}`)
        for (const reader of readers) {
          expect((yield* kv.acquirePermits("rw", reader, 1, limit, minute, minute))._tag).toBe("Held")
        }
        expect(yield* kv.releasePermits("rw", "writer")).toBe(true)
        expect(yield* kv.permitsInUse("rw")).toBe(1000)
        // The 1001st reader, now at the head, finds its turn at its next try, and grants the rest.
        expect((yield* kv.acquirePermits("rw", readers[1000]!, 1, limit, minute, minute))._tag).toBe("Acquired")
        expect(yield* kv.permitsInUse("rw")).toBe(1200)
        // A granted reader that was not looking finds its permits at its next try.
        expect((yield* kv.acquirePermits("rw", readers[1199]!, 1, limit, minute, minute))._tag).toBe("Acquired")
      }),
    30_000
  )
})
