/**
 * Owner tokens: random 128-bit UUIDv4s that never repeat, and that never reach a
 * log record at Info level or above, nor an error, whatever happens to the lock.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { observe, printedExit } from "../../support/observe.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, rawClient } from "../faults/support.js"

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const anyUuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g

describe("security: owner tokens", () => {
  it.scopedLive(
    "10 000 acquisitions: every token is a UUIDv4 (122 random bits), none repeats",
    () =>
      Effect.gen(function*() {
        const layer = Layer.succeed(LockKv.LockKv, yield* LockKv.makeMemory())
        const tokens = new Set<string>()
        yield* Effect.forEach(
          Array.from({ length: 10_000 }, (_, i) => `k${i % 50}`),
          (key) =>
            Effect.scoped(Effect.map(Lock.acquire(key, { wait: 0 }), (handle) => {
              expect(handle.token).toMatch(uuidV4)
              tokens.add(handle.token)
            })),
          { discard: true }
        ).pipe(Effect.provide(layer))
        expect(tokens.size).toBe(10_000)
        // Not a counter or a clock in disguise: the hex digits are evenly spread.
        const counts = new Map<string, number>()
        for (const token of tokens) {
          const hex = token.replace(/-/g, "")
          // All but the version (4) and variant nibbles.
          for (const digit of hex.slice(0, 12) + hex.slice(13, 16) + hex.slice(17)) {
            counts.set(digit, (counts.get(digit) ?? 0) + 1)
          }
        }
        const mean = [...counts.values()].reduce((a, b) => a + b, 0) / 16
        expect(counts.size).toBe(16)
        for (const count of counts.values()) expect(Math.abs(count - mean) / mean).toBeLessThan(0.05)
      }),
    60_000
  )

  it.scopedLive(
    "no token in a log record at Info or above, nor in an error: contention, waiters giving up, a lost lock, a failed release",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        // Every token that reaches Redis, seen from outside.
        const monitor = yield* rawClient(server.url)
        const tokens = new Set<string>()
        const watcher = yield* Effect.promise(() => monitor.monitor())
        watcher.on("monitor", (_time: string, args: ReadonlyArray<string>) => {
          for (const arg of args) for (const match of String(arg).matchAll(anyUuid)) tokens.add(match[0])
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => watcher.disconnect()))

        const observed = yield* observe(Effect.gen(function*() {
          const a = Layer.succeed(
            LockKv.LockKv,
            yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "tok" }))
          )
          const b = Layer.succeed(
            LockKv.LockKv,
            yield* buildStore(LockKv.layerRedis({ url: server.url, namespace: "tok" }))
          )
          const results: Array<Exit.Exit<unknown, unknown>> = []
          // Contention across two stores and within one, with waiters that give up.
          const holder = yield* Lock.withLock(Effect.sleep("400 millis"), "job", { ttl: "300 millis" }).pipe(
            Effect.provide(a),
            Effect.exit,
            Effect.fork
          )
          yield* Effect.sleep("50 millis")
          const waiters = yield* Effect.all([
            Lock.withLock(Effect.void, "job", { wait: "100 millis" }).pipe(Effect.provide(b), Effect.exit),
            Lock.withLock(Effect.void, "job", { wait: "100 millis" }).pipe(Effect.provide(a), Effect.exit),
            Lock.withLock(Effect.void, "job", { wait: "5 seconds" }).pipe(Effect.provide(b), Effect.exit),
            Lock.tryWithLock(Effect.void, "job").pipe(Effect.provide(b), Effect.exit)
          ], { concurrency: "unbounded" })
          results.push(yield* Fiber.join(holder))
          for (const waiter of waiters) results.push(waiter)
          // A lost lock: the key deleted behind the holder's back.
          const kv = yield* Effect.provide(LockKv.LockKv, a)
          const lost = yield* Lock.withLock(Effect.never, "lost", { ttl: "300 millis" }).pipe(
            Effect.provide(a),
            Effect.exit,
            Effect.fork
          )
          yield* Effect.sleep("50 millis")
          yield* kv.del("lost")
          results.push(yield* Fiber.join(lost))
          // A failed release: the server frozen at the end of a section.
          const frozen = yield* Lock.withLock(
            Effect.sync(() => server.pause()),
            "frozen",
            { ttl: "5 seconds" }
          ).pipe(Effect.provide(a), Effect.ensuring(Effect.sync(() => server.resume())), Effect.exit)
          results.push(frozen)
          return results
        }))
        expect(Exit.isSuccess(observed.exit)).toBe(true)
        const results = Exit.isSuccess(observed.exit) ? observed.exit.value : []
        expect(results.map((exit) => Exit.isSuccess(exit) ? "ok" : "failed")).toContain("failed")
        // Enough tokens were in play: holders, waiters, retries.
        expect(tokens.size).toBeGreaterThanOrEqual(4)

        const loud = observed.logs.filter((record) => LogLevel.greaterThanEqual(record.level, LogLevel.Info))
        const errors = results.map(printedExit).join("\n") + printedExit(observed.exit)
        for (const token of tokens) {
          for (const record of loud) expect(record.text).not.toContain(token)
          expect(errors).not.toContain(token)
        }
      }),
    30_000
  )
})
