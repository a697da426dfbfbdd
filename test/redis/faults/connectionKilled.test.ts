/**
 * Fault: Redis closes our command connection (`CLIENT KILL`), found by its name
 * `effect-lock` in CLIENT LIST. A server of its own per test.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, clientId, rawClient, timed, untilSucceeds } from "./support.js"

const debuggable = { args: ["--enable-debug-command", "local"] }

describe("fault: our connection is killed (CLIENT KILL)", () => {
  it.scopedLive(
    "calls in flight fail with LockKvError; later calls succeed after the automatic reconnect",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped(debuggable)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "ck" }))
        const sleeper = yield* rawClient(server.url)
        const id = yield* clientId(sleeper, "effect-lock")

        // One pipeline: the server sleeps 1 s, then kills our connection. Calls sent
        // meanwhile wait unread in the socket and are in flight when it closes.
        const pipeline = sleeper.pipeline().call("DEBUG", "SLEEP", "1").call("CLIENT", "KILL", "ID", id).exec()
        yield* Effect.sleep("100 millis")
        const inFlight = yield* Effect.all([
          timed(kv.get("a")),
          timed(kv.set("b", "1")),
          timed(kv.acquire("c", "token", Duration.seconds(5))),
          timed(kv.compareAndExpire("d", "x", "5 seconds"))
        ], { concurrency: "unbounded" })
        for (const { elapsed, result } of inFlight) {
          expect(result._tag === "Left" && result.left._tag).toBe("LockKvError")
          if (result._tag === "Left") expect(result.left.message).toMatch(/may or may not have run/)
          expect(elapsed).toBeLessThan(5_000)
        }
        expect(yield* Effect.promise(() => pipeline)).toEqual([[null, "OK"], [null, 1]])

        const after = yield* untilSucceeds(kv.set("b", "2"), 5_000)
        expect(after.ok, JSON.stringify(after.failures)).toBe(true)
        expect(yield* kv.get("b")).toMatchObject({ _tag: "Some", value: "2" })
        // A new connection with the same name replaced the killed one.
        expect(yield* clientId(sleeper, "effect-lock")).not.toBe(id)
      }),
    30_000
  )

  it.scopedLive(
    "an acquisition whose reply was lost is undone by token: no orphan lock is left",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped(debuggable)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "ck" }))
        const sleeper = yield* rawClient(server.url)
        const killer = yield* rawClient(server.url)
        const id = yield* clientId(killer, "effect-lock")

        // While the server sleeps, our acquire arrives first and the kill second: after
        // the sleep the server runs the acquire, then drops the connection before the
        // reply is written.
        const sleeping = sleeper.call("DEBUG", "SLEEP", "0.5")
        yield* Effect.sleep("50 millis")
        const section = yield* Lock.withLock(Effect.succeed("ran"), "orphan", { ttl: "30 seconds" }).pipe(
          Effect.provide(Layer.succeed(LockKv.LockKv, kv)),
          Effect.either,
          Effect.fork
        )
        yield* Effect.sleep("50 millis")
        const killed = killer.call("CLIENT", "KILL", "ID", id)
        yield* Effect.promise(() => Promise.all([sleeping, killed]))

        const result = yield* Fiber.join(section).pipe(Effect.timeout("10 seconds"))
        expect(Either.isLeft(result) && result.left._tag).toBe("LockKvError")
        // The acquire script did run (the fence counter moved)…
        expect(yield* Effect.promise(() => killer.get("{ck:orphan}:fence"))).toBe("1")
        // …and the engine deleted the lock by its token instead of leaving it for 30 s.
        expect(yield* Effect.promise(() => killer.exists("ck:orphan"))).toBe(0)
        expect(
          yield* Lock.withLock(Effect.succeed("ok"), "orphan", { wait: 0 }).pipe(
            Effect.provide(Layer.succeed(LockKv.LockKv, kv))
          )
        ).toBe("ok")
      }),
    30_000
  )

  it.scopedLive(
    "connection killed again and again while a lock is held: renewals recover, the section completes",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "ck" }))
        const killer = yield* rawClient(server.url)
        const ttl = 1_500
        const section = yield* Effect.sleep("2500 millis").pipe(
          Effect.as("done"),
          Lock.withLock("churn", { ttl }),
          Effect.provide(Layer.succeed(LockKv.LockKv, kv)),
          Effect.either,
          Effect.fork
        )
        yield* Effect.sleep("100 millis")
        let kills = 0
        for (let i = 0; i < 7; i++) {
          const killedOne = yield* Effect.promise(() =>
            killer.call("CLIENT", "KILL", "USER", "default", "SKIPME", "yes")
          )
          kills += Number(killedOne)
          yield* Effect.sleep("300 millis")
        }
        expect(kills).toBeGreaterThanOrEqual(5)
        const result = yield* Fiber.join(section).pipe(Effect.timeout(Duration.seconds(10)))
        expect(result).toEqual(Either.right("done"))
      }),
    30_000
  )
})
