/**
 * Fault: a process using the lock dies by SIGKILL (no finalizer runs): a holder,
 * then a waiter queued in Redis. The process is a `tsx` child (lockChild.ts); the
 * other side is this test process. A server of its own per test.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { fileURLToPath } from "node:url"
import { queuePlace } from "../../../src/internal/lock/contend.js"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { awaitLine, buildStore, childScoped, eventually, rawClient } from "./support.js"

const lockChild = fileURLToPath(new URL("./lockChild.ts", import.meta.url))
const isEvent = (event: string) => (line: string) => line.includes(`"event":"${event}"`)

describe.concurrent("fault: a process dies with SIGKILL", () => {
  it.scopedLive(
    "a holder killed: another process acquires when the TTL ends, not before",
    () =>
      Effect.gen(function*() {
        const ttl = 1_500
        const server = yield* redisServerScoped()
        const raw = yield* rawClient(server.url)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "crash" }))
        const child = yield* childScoped(lockChild, ["hold", server.url, "crash", "job", String(ttl)])
        const acquired = JSON.parse(yield* awaitLine(child, isEvent("acquired"), 20_000)) as { before: number }

        // A waiter, queued in Redis while the holder is alive.
        const waiter = yield* Lock.withLock(Effect.sync(() => Date.now()), "job", { ttl, wait: "15 seconds" }).pipe(
          Effect.provide(Layer.succeed(LockKv.LockKv, kv)),
          Effect.fork
        )
        const killedAt = yield* Effect.promise(() => child.kill())
        const sent = Date.now()
        const pttl = yield* Effect.promise(() => raw.pttl("crash:job"))
        expect(pttl).toBeGreaterThan(0)
        const acquiredAt = yield* Fiber.join(waiter).pipe(Effect.timeout("15 seconds"))

        // Never before the key's TTL on the server ran out (no guessing that the holder died)…
        expect(acquiredAt).toBeGreaterThanOrEqual(sent + pttl)
        // …which is at least a full ttl after the dead holder's acquisition (renewals only push it later),
        expect(acquiredAt).toBeGreaterThanOrEqual(acquired.before + ttl)
        // so ≥ ttl − (time from its acquisition to the kill) after the kill;
        expect(acquiredAt - killedAt).toBeGreaterThanOrEqual(ttl - (killedAt - acquired.before))
        // and promptly once it has run out.
        expect(acquiredAt - (sent + pttl)).toBeLessThan(1_000)
      }),
    40_000
  )

  it.scopedLive(
    "a waiter killed while queued: the queue is blocked at most its place (2 s) after the kill",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const raw = yield* rawClient(server.url)
        const holderStore = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "crash" }))
        const waiterStore = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "crash" }))
        const queueLength = Effect.promise(() => raw.llen("{crash:q}:queue"))

        const held = yield* Deferred.make<void>()
        const done = yield* Deferred.make<void>()
        const holder = yield* Deferred.succeed(held, undefined).pipe(
          Effect.zipRight(Deferred.await(done)),
          Lock.withLock("q", { ttl: "20 seconds" }),
          Effect.provide(Layer.succeed(LockKv.LockKv, holderStore)),
          Effect.fork
        )
        yield* Deferred.await(held)

        // First in the queue: the child process.
        const child = yield* childScoped(lockChild, ["wait", server.url, "crash", "q", "1500"])
        yield* awaitLine(child, isEvent("ready"), 20_000)
        expect(yield* eventually(Effect.map(queueLength, (n) => n === 1), 10_000)).toBe(true)
        // Second: a waiter in this process, with a store of its own.
        const waiter = yield* Lock.withLock(Effect.sync(() => Date.now()), "q", {
          ttl: "5 seconds",
          wait: "20 seconds"
        }).pipe(
          Effect.provide(Layer.succeed(LockKv.LockKv, waiterStore)),
          Effect.fork
        )
        expect(yield* eventually(Effect.map(queueLength, (n) => n === 2), 5_000)).toBe(true)

        const killedAt = yield* Effect.promise(() => child.kill())
        // The holder releases right after: the lock is reserved for the dead head of the queue…
        yield* Deferred.succeed(done, undefined)
        yield* Fiber.join(holder)
        const acquiredAt = yield* Fiber.join(waiter).pipe(Effect.timeout("15 seconds"))
        // …until its place runs out, at most `queuePlace` after its last try.
        expect(acquiredAt - killedAt).toBeLessThan(Duration.toMillis(queuePlace) + 700)
        expect(yield* queueLength).toBe(0)
      }),
    40_000
  )
})
