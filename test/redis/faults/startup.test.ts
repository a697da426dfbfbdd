/**
 * Fault: Redis is unavailable when the layer is built. The bound for a refused
 * connection (LockKvError within 10 s) and the wrong-password/TLS cases are in
 * test/config.test.ts ("LockKv.layer connecting to Redis"); this file adds what
 * the caller reads and a server that accepts connections but never answers.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { freePort, redisServerScoped } from "../../support/redisServer.js"

const withConfig = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" }))

/** Runs a withLock section on `LockKv.layer` under `entries`: its exit and how long it took. */
const sectionOn = (entries: Record<string, string>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const exit = yield* Lock.withLock(Effect.succeed("ran"), "job").pipe(
      Effect.provide(LockKv.layer),
      withConfig(entries),
      Effect.exit
    )
    return { exit, elapsed: Date.now() - started }
  })

const typedFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, the section ran")
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("fault: Redis unavailable when the layer starts", () => {
  it.live("nothing listening: a typed LockKvError saying where and why, the section never runs (no fallback to memory)", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      const { elapsed, exit } = yield* sectionOn({ REDIS_URL: `redis://127.0.0.1:${port}` })
      const error = typedFailure(exit)
      expect(error._tag).toBe("LockKvError")
      if (error._tag === "LockKvError") {
        expect(error.operation).toBe("connect")
        expect(error.message).toBe(
          `cannot connect to Redis at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`
        )
      }
      expect(elapsed).toBeLessThan(10_000)
    }))

  it.scopedLive("a server that accepts the connection but never answers (frozen): fails after REDIS_CONNECT_TIMEOUT", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      server.pause()
      const { elapsed, exit } = yield* sectionOn({ REDIS_URL: server.url, REDIS_CONNECT_TIMEOUT: "1s" }).pipe(
        Effect.ensuring(Effect.sync(() => server.resume()))
      )
      const error = typedFailure(exit)
      expect(error._tag).toBe("LockKvError")
      if (error._tag === "LockKvError") {
        expect(error.operation).toBe("connect")
        expect(error.message).toBe(`Redis at 127.0.0.1:${server.port} did not answer within 1s`)
      }
      expect(elapsed).toBeGreaterThanOrEqual(1_000)
      expect(elapsed).toBeLessThan(3_000)
      // Thawed, the same configuration works.
      const { exit: works } = yield* sectionOn({ REDIS_URL: server.url, REDIS_CONNECT_TIMEOUT: "1s" })
      expect(works).toEqual(Exit.succeed("ran"))
    }))
})
