/**
 * Fault: the wall clock steps back (NTP step, VM resumed) while renewals cannot
 * be confirmed (Redis frozen). The validity deadline must not move with it: the
 * engine measures it on Effect's monotonic clock (currentTimeNanos), so the
 * protected effect is still interrupted before the server's TTL runs out. (When
 * the deadline was measured with currentTimeMillis, a 3 s step back made the
 * interruption come 2.96 s after the server's TTL had run out.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, rawClient } from "./support.js"

/** The default Clock, except that its wall clock (currentTimeMillis) is shifted by `offset.ms`. */
const steppableClock = (offset: { ms: number }): Clock.Clock => {
  const base = Clock.make()
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => Date.now() + offset.ms,
    currentTimeMillis: Effect.sync(() => Date.now() + offset.ms),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeNanos: base.currentTimeNanos,
    sleep: (duration) => base.sleep(duration)
  }
}

describe("fault: the wall clock steps back while the store is unreachable", () => {
  it.scopedLive(
    "the protected effect is still interrupted before the server's TTL runs out",
    () =>
      Effect.gen(function*() {
        const ttl = 1_500
        const server = yield* redisServerScoped()
        const raw = yield* rawClient(server.url)
        const kv = yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "clock" }))
        const offset = { ms: 0 }
        const acquired = yield* Deferred.make<void>()
        let interruptedAt = 0
        const section = yield* Deferred.succeed(acquired, undefined).pipe(
          Effect.zipRight(Effect.never),
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              interruptedAt = Date.now()
            })
          ),
          Lock.withLock("job", { ttl }),
          Effect.provide(Layer.succeed(LockKv.LockKv, kv)),
          Effect.withClock(steppableClock(offset)),
          Effect.either,
          Effect.fork
        )
        yield* Deferred.await(acquired)
        const sent = Date.now()
        const expiresNoEarlierThan = sent + (yield* Effect.promise(() => raw.pttl("clock:job")))
        server.pause() // no renewal can be confirmed from now on
        offset.ms = -3_000 // NTP steps the wall clock back 3 s
        yield* Fiber.join(section).pipe(
          Effect.timeout("10 seconds"),
          Effect.ensuring(Effect.sync(() => server.resume()))
        )
        expect(interruptedAt).toBeGreaterThan(0)
        expect(interruptedAt, `interrupted ${interruptedAt - expiresNoEarlierThan} ms after the server TTL ran out`)
          .toBeLessThan(expiresNoEarlierThan)
      }),
    30_000
  )
})
