/**
 * Fault: the Redis process is frozen (SIGSTOP) for longer than the ttl while a
 * lock is held, then thawed. A server of its own.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, rawClient } from "./support.js"

const ttl = 1_500

interface Entry {
  readonly who: "A" | "B"
  readonly event: "enter" | "exit"
  readonly at: number
  readonly fence: number
}

describe("fault: Redis frozen longer than the ttl while a lock is held", () => {
  it.scopedLive(
    "the section is interrupted with LockLost before the server's TTL runs out; after the thaw another client acquires, never overlapping",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const raw = yield* rawClient(server.url)
        const a = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "frozen" }))
        const b = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "frozen" }))
        const log: Array<Entry> = []
        const section = (who: "A" | "B", fence: number, body: Effect.Effect<void>) =>
          Effect.sync(() => log.push({ who, event: "enter", at: Date.now(), fence })).pipe(
            Effect.zipRight(body),
            Effect.ensuring(Effect.sync(() => log.push({ who, event: "exit", at: Date.now(), fence })))
          )

        const acquired = yield* Deferred.make<void>()
        const holder = yield* Effect.flatMap(a.fence("job"), (fence) =>
          section(
            "A",
            Option.getOrThrow(fence),
            Deferred.succeed(acquired, undefined).pipe(Effect.zipRight(Effect.never))
          )).pipe(
            Lock.withLock("job", { ttl }),
            Effect.provide(Layer.succeed(LockKv.LockKv, a)),
            Effect.either,
            Effect.fork
          )
        yield* Deferred.await(acquired)

        // Freeze right after a renewal was confirmed by the server (its PTTL jumps back up),
        // so no renewal can slip in between reading the PTTL and the freeze.
        let previous = Number.POSITIVE_INFINITY
        let expiresNoEarlierThan = 0
        for (let i = 0; i < 200; i++) {
          const sent = Date.now()
          const pttl = yield* Effect.promise(() => raw.pttl("frozen:job"))
          expect(pttl).toBeGreaterThan(0)
          if (pttl > previous + 100) {
            expiresNoEarlierThan = sent + pttl
            break
          }
          previous = pttl
          yield* Effect.sleep("10 millis")
        }
        expect(expiresNoEarlierThan).toBeGreaterThan(0)
        const pausedAt = Date.now()
        server.pause()
        const thawed = Effect.sync(() => server.resume())
        const held = yield* Fiber.join(holder).pipe(
          Effect.timeout(Duration.millis(ttl + 1_000)),
          Effect.option,
          Effect.fork
        )
        // Frozen for ttl + 500 ms: the key is past its TTL when the server thaws.
        yield* Effect.sleep(Duration.millis(ttl + 500)).pipe(Effect.ensuring(thawed))
        const resumedAt = Date.now()

        const aExit = log.find((e) => e.who === "A" && e.event === "exit")
        expect(aExit, JSON.stringify(log)).toBeDefined()
        // Interrupted before the TTL on the server could run out, and less than a ttl after the freeze.
        expect(aExit!.at).toBeLessThan(expiresNoEarlierThan)
        expect(aExit!.at - pausedAt).toBeLessThan(ttl)
        expect(aExit!.at).toBeLessThan(resumedAt)

        // The section fails with LockLost (its failed release, sent to the frozen server, ends after the thaw).
        const result = yield* Fiber.join(held)
        expect(Option.isSome(result)).toBe(true)
        const exit = Option.getOrThrow(result)
        expect(exit._tag === "Left" && exit.left._tag).toBe("LockLost")

        // Another client acquires after the thaw.
        yield* Effect.scoped(Effect.gen(function*() {
          const handle = yield* Lock.acquire("job", { ttl, wait: "10 seconds" })
          yield* section("B", handle.fence, Effect.sleep("50 millis"))
        })).pipe(Effect.provide(Layer.succeed(LockKv.LockKv, b)))

        const aEnter = log.find((e) => e.who === "A" && e.event === "enter")!
        const bEnter = log.find((e) => e.who === "B" && e.event === "enter")!
        const bExit = log.find((e) => e.who === "B" && e.event === "exit")!
        // The timestamped log: A's section [enter, exit] and B's never overlap.
        expect(aExit!.at).toBeLessThanOrEqual(bEnter.at)
        expect(bEnter.at).toBeLessThanOrEqual(bExit.at)
        expect(bEnter.fence).toBeGreaterThan(aEnter.fence)
      }),
    30_000
  )
})
