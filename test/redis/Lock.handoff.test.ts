/**
 * The lock engine on a direct hand-off (Redis): a waiter queued in the store
 * takes a granted lock from the release message alone, without another try,
 * and then extends it from the rest of its queue place to its own ttl.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Option } from "effect"
import { Lock, LockKv } from "../../src/index.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"

/**
 * A Redis store whose `acquire` calls are counted per token. Each `client()` is
 * a service of its own, as another process's would be: fibers of one service
 * queue in process and would never meet in Redis.
 */
const countingStore = Effect.gen(function*() {
  const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: uniqueNamespace("engine-handoff") })
  const tries = new Map<string, number>()
  const client = () =>
    Layer.succeed(
      LockKv.LockKv,
      {
        ...kv,
        acquire: (key, token, ttl, queue) => {
          tries.set(token, (tries.get(token) ?? 0) + 1)
          return kv.acquire(key, token, ttl, queue)
        }
      } satisfies LockKv.LockKv.Service
    )
  return { kv, tries, client }
})

/** Waits (bounded) until `check` holds. */
const eventually = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && !check(); i++) yield* Effect.sleep("10 millis")
    expect(check()).toBe(true)
  })

describe("Lock on a direct hand-off (redis)", () => {
  it.scopedLive("a queued waiter takes the granted lock with its first try only; fences follow", () =>
    Effect.gen(function*() {
      const { client, tries } = yield* countingStore
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        Lock.acquire("k").pipe(
          Effect.tap(() => Deferred.await(release)),
          Effect.map((handle) => handle.fence),
          Effect.scoped,
          Effect.provide(client())
        )
      )
      yield* eventually(() => tries.size === 1)
      const waiter = yield* Effect.fork(
        Lock.acquire("k").pipe(Effect.map((handle) => handle.fence), Effect.scoped, Effect.provide(client()))
      )
      yield* eventually(() => tries.size === 2)
      yield* Deferred.succeed(release, undefined)
      const holderFence = yield* Fiber.join(holder)
      const waiterFence = yield* Fiber.join(waiter)
      expect(waiterFence).toBe(holderFence + 1)
      // Without the hand-off the waiter would have tried a second time after the release.
      expect([...tries.values()]).toEqual([1, 1])
    }))

  it.scopedLive(
    "a granted lock held past its queue place is extended to the ttl, not lost",
    () =>
      Effect.gen(function*() {
        const { client, kv } = yield* countingStore
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          Lock.withLock(Deferred.await(release), "long").pipe(Effect.provide(client()))
        )
        yield* Effect.sleep("50 millis")
        const waiter = yield* Effect.fork(
          Lock.withLock(
            Effect.gen(function*() {
              // Longer than the 2 s queue place the grant lasts for.
              yield* Effect.sleep("2500 millis")
              return Duration.toMillis(Option.getOrThrow(yield* kv.pttl("long")))
            }),
            "long",
            { ttl: "10 seconds" }
          ).pipe(Effect.provide(client()))
        )
        yield* Effect.sleep("100 millis")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        const pttlAtEnd = yield* Fiber.join(waiter)
        expect(pttlAtEnd).toBeGreaterThan(5_000)
      }),
    { timeout: 20_000 }
  )

  it.scopedLive("without auto-extension a granted lock gets the caller's ttl at once", () =>
    Effect.gen(function*() {
      const { client, kv } = yield* countingStore
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Lock.withLock(Deferred.await(release), "fixed").pipe(Effect.provide(client())))
      yield* Effect.sleep("50 millis")
      const waiter = yield* Effect.fork(
        Lock.withLock(
          Effect.map(kv.pttl("fixed"), (pttl) => Duration.toMillis(Option.getOrThrow(pttl))),
          "fixed",
          { ttl: "20 seconds", autoExtend: false }
        ).pipe(Effect.provide(client()))
      )
      yield* Effect.sleep("100 millis")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* Fiber.join(waiter)).toBeGreaterThan(15_000)
    }))
})
