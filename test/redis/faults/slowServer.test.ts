/**
 * Fault: a slow server. `DEBUG SLEEP` blocks Redis for longer than the 3 s
 * command timeout. A server of its own per test; the two tests run at the same time.
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
import { buildStore, rawClient, timed, untilSucceeds } from "./support.js"

const debuggable = { args: ["--enable-debug-command", "local"] }

describe.concurrent("fault: Redis blocked by DEBUG SLEEP", () => {
  it.scopedLive(
    "longer than the command timeout: every call fails with LockKvError within 5 s (or succeeds after), none hangs",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped(debuggable)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "slow" }))
        const layer = Layer.succeed(LockKv.LockKv, kv)
        const sleeper = yield* rawClient(server.url)
        yield* kv.set("probe", "1")

        const sleeping = sleeper.call("DEBUG", "SLEEP", "4.5")
        const sleptAt = Date.now()
        yield* Effect.sleep("50 millis")
        const storeCalls: Array<Effect.Effect<unknown, LockKv.LockKvError | LockKv.InvalidArgument>> = [
          kv.get("probe"),
          kv.set("probe", "2"),
          kv.pttl("probe"),
          kv.acquire("job", "token", Duration.seconds(5)),
          kv.release("job", "token")
        ]
        // Sent while the connection is up: the 3 s command timeout ends them.
        const wave1 = yield* Effect.all(storeCalls.map((call) => timed(call)), { concurrency: "unbounded" })
        for (const { elapsed, result } of wave1) {
          expect(result._tag === "Left" && result.left._tag).toBe("LockKvError")
          expect(elapsed).toBeLessThan(5_000)
        }
        // Lock calls fail with LockKvError too: no retry on a store error, even with time left to wait.
        const lockCalls = yield* Effect.all([
          timed(Lock.withLock(Effect.void, "job", { wait: 0 }).pipe(Effect.provide(layer))),
          timed(Lock.withLock(Effect.void, "job2", { wait: "20 seconds" }).pipe(Effect.provide(layer))),
          // Sent once the connection was dropped for not answering: it waits for the reconnect.
          Effect.suspend(() => Effect.sleep(Duration.millis(Math.max(0, sleptAt + 3_300 - Date.now())))).pipe(
            Effect.zipRight(timed(kv.get("probe")))
          )
        ], { concurrency: "unbounded" })
        for (const { elapsed, result } of lockCalls) {
          // The try fails after 3 s; undoing it by token is one more call (≤ 4 s), which may
          // already succeed after the reconnect.
          if (result._tag === "Left") expect(result.left._tag).toBe("LockKvError")
          expect(elapsed).toBeLessThan(8_000)
        }
        // Whether these two fail (the try timed out) or succeed (sent after the reconnect, once
        // Redis woke up) depends on when the silent connection was dropped; both are allowed
        // ("fail within 5 s or succeed after reconnecting"), a hang is not.
        expect(lockCalls[2]!.elapsed).toBeLessThan(5_000)

        yield* Effect.promise(() => sleeping)
        expect(Date.now() - sleptAt).toBeGreaterThanOrEqual(4_400)
        const after = yield* untilSucceeds(kv.get("probe"), 10_000)
        expect(after.ok, JSON.stringify(after.failures)).toBe(true)
        expect(yield* Lock.withLock(Effect.succeed("ok"), "job", { wait: "5 seconds" }).pipe(Effect.provide(layer)))
          .toBe("ok")
      }),
    30_000
  )

  it.scopedLive(
    "slow but within the lock's validity: renewals get through late, the section completes without LockLost",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped(debuggable)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "slow" }))
        const sleeper = yield* rawClient(server.url)
        const section = yield* Effect.sleep("4500 millis").pipe(
          Effect.as("done"),
          Lock.withLock("job", { ttl: "6 seconds" }),
          Effect.provide(Layer.succeed(LockKv.LockKv, kv)),
          Effect.either,
          Effect.fork
        )
        yield* Effect.sleep("100 millis")
        // Blocks the first renewal (due 2 s after the acquisition) for 1.6 s.
        yield* Effect.promise(() => sleeper.call("DEBUG", "SLEEP", "3.5"))
        expect(yield* Fiber.join(section).pipe(Effect.timeout("15 seconds"))).toEqual(Either.right("done"))
      }),
    30_000
  )
})
