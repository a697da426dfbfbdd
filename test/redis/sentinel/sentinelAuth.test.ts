/**
 * Sentinels with a password of their own (REDIS_SENTINEL_PASSWORD): the store
 * finds the primary through them with the password, fails the build with a
 * LockKvError without it or with a wrong one, and never shows the password.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { inspect } from "node:util"
import { Lock, LockKv } from "../../../src/index.js"
import { uniqueNamespace } from "../../support/backends.js"
import { type SentinelGroupHandle, startSentinelGroup } from "../../support/redisHa.js"

const password = `sentinel-secret-${Math.random().toString(36).slice(2, 10)}`
let group: SentinelGroupHandle

beforeAll(async () => {
  group = await startSentinelGroup({ sentinelPassword: password })
}, 90_000)

afterAll(async () => {
  await group?.stop()
}, 30_000)

const env = (sentinelPassword: string | undefined) =>
  ConfigProvider.fromMap(
    new Map([
      ["REDIS_SENTINELS", group.sentinels.map((s) => `${s.host}:${s.port}`).join(",")],
      ["REDIS_SENTINEL_NAME", group.name],
      ["REDIS_CONNECT_TIMEOUT", "2s"],
      ["LOCK_NAMESPACE", uniqueNamespace("sauth")],
      ...(sentinelPassword === undefined ? [] : [["REDIS_SENTINEL_PASSWORD", sentinelPassword] as const])
    ])
  )

const lockCycle = Lock.withLock(Effect.succeed("locked"), "job", { ttl: "5 seconds" })

describe("Redis Sentinel with a sentinel password", () => {
  it.live(
    "REDIS_SENTINEL_PASSWORD reaches the primary through the sentinels; the lock works",
    () =>
      Effect.gen(function*() {
        const result = yield* lockCycle.pipe(
          Effect.provide(Layer.fresh(LockKv.layer)),
          Effect.withConfigProvider(env(password))
        )
        expect(result).toBe("locked")
      }),
    30_000
  )

  for (
    const [what, given] of [["without the password", undefined], ["with a wrong one", "wrong-sentinel-secret"]] as const
  ) {
    it.live(
      `${what}: the build fails with LockKvError within the connect timeout, the password never shown`,
      () =>
        Effect.gen(function*() {
          const started = Date.now()
          const exit = yield* Effect.exit(
            lockCycle.pipe(Effect.provide(Layer.fresh(LockKv.layer)), Effect.withConfigProvider(env(given)))
          )
          expect(Date.now() - started).toBeLessThan(10_000)
          expect(Exit.isFailure(exit)).toBe(true)
          if (Exit.isFailure(exit)) {
            const shown = inspect(exit.cause, { depth: 10 })
            expect(shown).toContain("LockKvError")
            expect(shown).not.toContain(password)
            if (given !== undefined) expect(shown).not.toContain(given)
          }
        }),
      30_000
    )
  }
})
