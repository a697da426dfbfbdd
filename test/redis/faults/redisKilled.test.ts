/**
 * Fault: the Redis process is SIGKILLed while a lock is held, then restarted on
 * the same port (empty: no persistence). A server of its own.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, eventually, rawClient, untilSucceeds } from "./support.js"

const ttl = 1_000

describe("fault: Redis killed while a lock is held", () => {
  it.scopedLive(
    "the section ends with LockLost within ttl + 5 s, a waiter fails fast; after a restart the same layer acquires again",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "killed" }))
        // Another "process": a store with its own connections, waiting in the Redis queue.
        const other = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "killed" }))

        const layer = Layer.succeed(LockKv.LockKv, kv)
        // A few earlier holders, so the fence is well above 1.
        for (let i = 0; i < 3; i++) yield* Lock.withLock(Effect.void, "job", { ttl }).pipe(Effect.provide(layer))

        const acquired = yield* Deferred.make<void>()
        let interruptedAt: number | undefined
        const holder = yield* Deferred.succeed(acquired, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              interruptedAt = Date.now()
            })
          ),
          Lock.withLock("job", { ttl }),
          Effect.provide(layer),
          Effect.either,
          Effect.fork
        )
        yield* Deferred.await(acquired)
        const fenceBefore = Option.getOrThrow(yield* kv.fence("job"))
        expect(fenceBefore).toBe(4)
        const waiter = yield* Lock.withLock(Effect.void, "job", { ttl, wait: "30 seconds" }).pipe(
          Effect.provide(Layer.succeed(LockKv.LockKv, other)),
          Effect.either,
          Effect.fork
        )
        // The waiter is queued in Redis.
        const raw = yield* rawClient(server.url)
        expect(
          yield* eventually(Effect.map(Effect.promise(() => raw.llen("{killed:job}:queue")), (n) => n === 1), 5_000)
        )
          .toBe(true)

        const killedAt = Date.now()
        server.kill("SIGKILL")

        const held = yield* Fiber.join(holder).pipe(Effect.timeout("15 seconds"))
        const heldEndedAt = Date.now()
        expect(held._tag).toBe("Left")
        if (held._tag === "Left") expect(["LockLost", "LockKvError"]).toContain(held.left._tag)
        // Interrupted at the validity deadline (no renewal can be confirmed), before the TTL runs out…
        expect(interruptedAt).toBeDefined()
        expect(interruptedAt! - killedAt).toBeLessThan(ttl)
        // …and the section (including its failed release) ends within ttl + 5 s.
        expect(heldEndedAt - killedAt).toBeLessThan(ttl + 5_000)

        // The waiter's next try fails with LockKvError (a LockKvError while waiting fails at
        // once, no retry); undoing that try by token is a second store call that fails too:
        // two call timeouts of 4 s at most.
        const waited = yield* Fiber.join(waiter).pipe(Effect.timeout("15 seconds"))
        const waiterEndedAt = Date.now()
        expect(waited._tag === "Left" && waited.left._tag).toBe("LockKvError")
        expect(waiterEndedAt - killedAt).toBeLessThan(10_000)

        // Same port, empty server; neither layer is rebuilt. Until each store has
        // reconnected by itself, calls fail with LockKvError within 5 s (never hang).
        yield* Effect.promise(() => server.restart())
        for (const store of [kv, other]) {
          const reconnected = yield* untilSucceeds(store.get("probe"), 15_000)
          expect(reconnected.ok, JSON.stringify(reconnected.failures)).toBe(true)
          for (const failure of reconnected.failures) {
            expect(failure.tag).toBe("LockKvError")
            expect(failure.elapsed).toBeLessThan(5_000)
          }
        }
        // Then acquisitions succeed at the first try, on both.
        expect(yield* Lock.withLock(Effect.succeed("ok"), "job", { ttl }).pipe(Effect.provide(layer))).toBe("ok")
        expect(
          yield* Lock.withLock(Effect.succeed("ok"), "job", { ttl }).pipe(
            Effect.provide(Layer.succeed(LockKv.LockKv, other))
          )
        ).toBe("ok")

        // Without persistence the restarted server forgot the fencing counter:
        // fences start again from 1 (documented in docs/failure-modes.md).
        expect(Option.getOrThrow(yield* kv.fence("job"))).toBe(2)
      }),
    60_000
  )
})
