/**
 * A Redis ACL user restricted to the library's namespace and to the commands it
 * needs (docs/failure-modes.md, "Minimal ACL", shows the same rules). The set
 * was found empirically: each command below is needed (without it a call fails,
 * or Redis logs a denial in ACL LOG that the library would otherwise swallow,
 * e.g. inside a release), except INFO and CLIENT SETNAME, which only keep the
 * connection tidy (ioredis' ready check, the connection's name).
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { Redis } from "ioredis"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"
import { redisServerScoped } from "../../support/redisServer.js"
import { buildStore, rawClient } from "../faults/support.js"

/** Commands the library sends itself, or runs inside its Lua scripts (which ACLs check too). */
export const requiredCommands = [
  "ping",
  "subscribe",
  "get",
  "set",
  "del",
  "pttl",
  "eval",
  "evalsha",
  "exists",
  "incr",
  "pexpire",
  "time",
  "lindex",
  "lpop",
  "rpush",
  "lrem",
  "zadd",
  "zrem",
  "zscore",
  "hset",
  "hget",
  "hdel",
  "publish",
  // The semaphore scripts: holders by expiry, their permits.
  "zrangebyscore",
  "zremrangebyscore",
  "zrange",
  "hvals",
  "hexists"
] as const
/** Not needed, but without them ioredis skips its ready check (with a console warning) and the connection has no name. */
export const recommendedCommands = ["info", "client|setname"] as const

/** The ACL rules of the library's user for `namespace` (add `+select` when using a database other than 0). */
export const minimalAcl = (namespace: string, password: string, commands: ReadonlyArray<string> = [
  ...requiredCommands,
  ...recommendedCommands
]): ReadonlyArray<string> => [
  "on",
  `>${password}`,
  "resetkeys",
  `~${namespace}:*`,
  `~{${namespace}:*`,
  "resetchannels",
  `&${namespace}:*`,
  "-@all",
  ...commands.map((c) => `+${c}`)
]

const ns = "app"
const password = "acl-Pa55word"

const aclLog = (admin: Redis) =>
  Effect.promise(async () => {
    const entries = (await admin.call("ACL", "LOG")) as ReadonlyArray<ReadonlyArray<unknown>>
    await admin.call("ACL", "LOG", "RESET")
    return entries.map((entry) => {
      const fields = new Map<string, unknown>()
      for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1])
      return `${String(fields.get("reason"))}: ${String(fields.get("object"))} (${String(fields.get("context"))})`
    })
  })

/** Every store primitive and every path of the scripts, with no waiting: a few milliseconds. */
const everyPrimitive = (kv: LockKv.LockKv.Service) =>
  Effect.gen(function*() {
    const ttl = Duration.seconds(10)
    const place = Duration.seconds(2)
    yield* kv.set("data", "v", { PX: 10_000 })
    yield* kv.get("data")
    yield* kv.pttl("data")
    yield* kv.compareAndExpire("data", "v", "20 seconds")
    yield* kv.compareAndDelete("data", "v")
    yield* kv.set("data", "w")
    yield* kv.del("data")
    for (const key of ["job", "{tagged}job"]) {
      expect((yield* kv.acquire(key, "holder", ttl))._tag).toBe("Acquired")
      for (const waiter of ["w1", "w2", "w3"]) expect((yield* kv.acquire(key, waiter, ttl, place))._tag).toBe("Held")
      expect(yield* kv.release(key, "w3")).toBe(false) // a waiter leaves the queue
      expect(yield* kv.release(key, "w1")).toBe(false) // the head leaves it
      expect(yield* kv.release(key, "holder")).toBe(true) // the new head is told
      expect((yield* kv.acquire(key, "w2", ttl, place))._tag).toBe("Acquired") // and takes it
      expect(Option.isSome(yield* kv.fence(key))).toBe(true)
      expect(yield* kv.release(key, "w2")).toBe(true)
    }
    for (const key of ["pool", "{tagged}pool"]) {
      expect((yield* kv.acquirePermits(key, "h1", 2, 3, ttl))._tag).toBe("Acquired")
      expect((yield* kv.acquirePermits(key, "brief", 1, 3, Duration.millis(1)))._tag).toBe("Acquired")
      expect((yield* kv.acquirePermits(key, "w1", 3, 3, ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquirePermits(key, "w2", 1, 3, ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquirePermits(key, "w3", 1, 3, ttl, place))._tag).toBe("Held")
      expect(yield* Effect.either(kv.acquirePermits(key, "w4", 1, 4, ttl, place))).toMatchObject({ _tag: "Left" })
      expect(yield* kv.releasePermits(key, "w3")).toBe(false) // a waiter leaves the queue
      yield* Effect.sleep("5 millis") // "brief" expires: the next script drops it
      expect(yield* kv.extendPermits(key, "h1", ttl)).toBe(true)
      expect(yield* kv.permitsInUse(key)).toBe(2)
      expect(yield* kv.releasePermits(key, "h1")).toBe(true) // the head is granted its permits and told
      expect((yield* kv.acquirePermits(key, "w1", 3, 3, ttl, place))._tag).toBe("Acquired") // and finds them
      expect(yield* kv.releasePermits(key, "w1")).toBe(true)
      expect(yield* kv.releasePermits(key, "w2")).toBe(true)
    }
  })

describe("security: a Redis user restricted to the namespace and the minimal commands", () => {
  it.scopedLive(
    "LockKv.layer and Lock work with it (contention, release wake-up, waiters leaving), and nothing is denied",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped({ args: ["--user", "locker", ...minimalAcl(ns, password)] })
        const admin = yield* rawClient(server.url)
        const config = ConfigProvider.fromMap(
          new Map([
            ["REDIS_URL", `redis://locker:${password}@127.0.0.1:${server.port}`],
            ["LOCK_NAMESPACE", ns]
          ]),
          { pathDelim: "_" }
        )
        // Two stores, as two processes would have.
        const a = Layer.succeed(LockKv.LockKv, yield* buildStore(LockKv.layer).pipe(Effect.withConfigProvider(config)))
        const b = Layer.succeed(LockKv.LockKv, yield* buildStore(LockKv.layer).pipe(Effect.withConfigProvider(config)))
        const kv = yield* Effect.provide(LockKv.LockKv, a)
        expect(kv.backend).toBe("redis")
        yield* everyPrimitive(kv)

        // Contention: a holder renewing (ttl 300 ms, held 500 ms), a waiter that gives up, a waiter woken by the release.
        let releasedAt = 0
        const holder = yield* Lock.withLock(Effect.sleep("500 millis"), "job", { ttl: "300 millis" }).pipe(
          Effect.ensuring(Effect.sync(() => {
            releasedAt = Date.now()
          })),
          Effect.provide(a),
          Effect.fork
        )
        yield* Effect.sleep("50 millis")
        const quitter = yield* Effect.either(
          Lock.withLock(Effect.void, "job", { wait: "100 millis" }).pipe(Effect.provide(b))
        )
        expect(Either.isLeft(quitter) && quitter.left._tag).toBe("LockNotAcquired")
        const waiter = yield* Lock.withLock(Effect.sync(() => Date.now()), "job", {
          wait: "5 seconds",
          retry: Schedule.spaced("1 hour")
        }).pipe(Effect.provide(b), Effect.fork)
        yield* Fiber.join(holder)
        const acquiredAt = yield* Fiber.join(waiter)
        expect(acquiredAt - releasedAt).toBeLessThan(300)
        expect(yield* Lock.tryWithLock(Effect.succeed("free"), "job").pipe(Effect.provide(a))).toEqual(
          Option.some("free")
        )

        // Not one command or key was refused, not even inside a release the engine would have forgiven.
        expect(yield* aclLog(admin)).toEqual([])
      }),
    30_000
  )

  it.scopedLive("keys and channels outside the namespace are refused", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped({ args: ["--user", "locker", ...minimalAcl(ns, password)] })
      const url = `redis://locker:${password}@127.0.0.1:${server.port}`
      const locker = yield* rawClient(url)
      for (const key of ["other:job", "job", `${ns}-x:job`, `{other:job}:fence`, "{app}:job"]) {
        const set = yield* Effect.either(Effect.tryPromise(() => locker.set(key, "x")))
        expect(Either.isLeft(set) && String(set.left.error), key).toMatch(/NOPERM/)
      }
      expect(yield* Effect.promise(() => locker.set(`${ns}:job`, "x"))).toBe("OK")
      expect(yield* Effect.promise(() => locker.set(`{${ns}:job}:fence`, "1"))).toBe("OK")
      // A script cannot reach other keys either.
      const viaScript = yield* Effect.either(
        Effect.tryPromise(() => locker.eval("return redis.call('SET', KEYS[1], 'x')", 1, "other:job"))
      )
      expect(Either.isLeft(viaScript)).toBe(true)
      // A store in another namespace cannot even start: its release channel is refused.
      const elsewhere = yield* Effect.either(Effect.scoped(LockKv.makeRedis({ url, namespace: "other" })))
      expect(Either.isLeft(elsewhere) && elsewhere.left.message).toMatch(
        /cannot subscribe to the release channel: NOPERM/
      )
    }), 30_000)

  it.scopedLive("each required command is needed; INFO and CLIENT SETNAME are not", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const admin = yield* rawClient(server.url)
      const url = `redis://locker:${password}@127.0.0.1:${server.port}`
      const tryWithout = (missing: string) =>
        Effect.gen(function*() {
          const all = [...requiredCommands, ...recommendedCommands].filter((c) => c !== missing)
          yield* Effect.promise(() => admin.call("ACL", "SETUSER", "locker", "reset", ...minimalAcl(ns, password, all)))
          // A clean slate: no script cached (so EVAL is needed again), nothing left by the previous try.
          yield* Effect.promise(() => admin.call("SCRIPT", "FLUSH"))
          yield* Effect.promise(() => admin.call("FLUSHALL"))
          yield* aclLog(admin)
          const exit = yield* Effect.exit(
            Effect.scoped(Effect.flatMap(LockKv.makeRedis({ url, namespace: ns }), everyPrimitive))
          )
          return { ok: Exit.isSuccess(exit), denied: yield* aclLog(admin) }
        })
      // ioredis warns on the console when INFO is refused: keep the warnings.
      const warnings: Array<string> = []
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          // eslint-disable-next-line no-console -- captures ioredis' own warnings, restored below
          const warn = console.warn
          // eslint-disable-next-line no-console
          console.warn = (...args: Array<unknown>) => warnings.push(args.map(String).join(" "))
          return warn
        }),
        (warn) =>
          Effect.sync(() => {
            // eslint-disable-next-line no-console
            console.warn = warn
          })
      )
      expect(yield* tryWithout("none")).toEqual({ ok: true, denied: [] })
      for (const command of requiredCommands) {
        const { denied, ok } = yield* tryWithout(command)
        expect(!ok || denied.length > 0, `without ${command}: ok=${ok}, denied=${JSON.stringify(denied)}`).toBe(true)
      }
      for (const command of recommendedCommands) {
        const { denied, ok } = yield* tryWithout(command)
        expect(ok, command).toBe(true)
        expect(denied.length, command).toBeGreaterThan(0)
      }
      expect(warnings.some((w) => w.includes("Skipping the ready check"))).toBe(true)
    }), 30_000)
})
