/**
 * Behaviour only the Redis backend has: the Lua scripts against a real server,
 * the raw key layout, the release channel, connection lifetime and recovery.
 * The behaviour both backends share is in LockKv.test.ts.
 */
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { createRequire } from "node:module"
import { companionKey, namespaced, releaseChannel } from "../../src/internal/keys.js"
import * as LockKv from "../../src/LockKv.js"
import { redisServerScoped, startRedisServer } from "../support/redisServer.js"
import { redisUrl } from "../support/redisUrl.js"

const calculateSlot: (key: string) => number = createRequire(import.meta.url)("cluster-key-slot")

/** A namespace of its own per test: test files share the Redis and run concurrently. */
const freshNamespace = () => `t-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`

/** A plain ioredis client to look at the server from outside the store. */
const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

const clientNames = (raw: Redis) =>
  Effect.promise(async () => {
    const list = String(await raw.call("CLIENT", "LIST"))
    return list.split("\n").filter((line) => line.trim() !== "").map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? "")
  })

const countNamed = (names: ReadonlyArray<string>, name: string) => names.filter((n) => n === name).length

/** Polls `check` every 50 ms until it holds, at most `ms`. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, ms = 3_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (yield* check) return true
      yield* Effect.sleep(Duration.millis(50))
    }
    return yield* check
  })

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.either(effect)
    return { result, elapsed: Date.now() - started }
  })

describe("Redis store: scripts and layout", () => {
  it.scopedLive("acquire sets the token with a TTL, increments the fence, reports Held with the remaining TTL", () =>
    Effect.gen(function*() {
      const ns = freshNamespace()
      const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const raw = yield* rawClient(redisUrl())
      expect(kv.backend).toBe("redis")
      expect(kv.namespace).toBe(ns)

      expect(yield* kv.fence("job")).toEqual(Option.none())
      expect(yield* kv.acquire("job", "token-1", Duration.seconds(5))).toEqual({ _tag: "Acquired", fence: 1 })
      const held = yield* kv.acquire("job", "token-2", Duration.seconds(5))
      expect(held._tag).toBe("Held")
      if (held._tag === "Held") {
        const remaining = Option.map(held.remaining, Duration.toMillis)
        expect(Option.isSome(remaining)).toBe(true)
        expect(Option.getOrElse(remaining, () => 0)).toBeGreaterThan(3_000)
        expect(Option.getOrElse(remaining, () => 0)).toBeLessThanOrEqual(5_000)
      }
      expect(yield* kv.fence("job")).toEqual(Option.some(1))

      const key = namespaced(ns, "job")
      expect(yield* Effect.promise(() => raw.get(key))).toBe("token-1")
      const pttl = yield* Effect.promise(() => raw.pttl(key))
      expect(pttl).toBeGreaterThan(3_000)
      expect(pttl).toBeLessThanOrEqual(5_000)

      expect(yield* kv.release("job", "token-2")).toBe(false)
      expect(yield* Effect.promise(() => raw.get(key))).toBe("token-1")
      expect(yield* kv.release("job", "token-1")).toBe(true)
      expect(yield* kv.release("job", "token-1")).toBe(false)
      expect(yield* Effect.promise(() => raw.exists(key))).toBe(0)

      expect(yield* kv.acquire("job", "token-2", Duration.seconds(5))).toEqual({ _tag: "Acquired", fence: 2 })
      expect(yield* kv.fence("job")).toEqual(Option.some(2))
      expect(yield* Effect.promise(() => raw.get(companionKey(key, "fence")))).toBe("2")

      // A key without a TTL (written by `set`) is Held with no remaining time.
      yield* kv.set("forever", "someone")
      const forever = yield* kv.acquire("forever", "token-3", Duration.seconds(5))
      expect(forever).toEqual({ _tag: "Held", remaining: Option.none() })
    }))

  it.scopedLive("the fence survives expiry: the next holder after a TTL runs out gets a larger fence", () =>
    Effect.gen(function*() {
      const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: freshNamespace() })
      expect(yield* kv.acquire("short", "a", Duration.millis(100))).toEqual({ _tag: "Acquired", fence: 1 })
      const ok = yield* eventually(
        Effect.map(kv.acquire("short", "b", Duration.seconds(5)), (r) => r._tag === "Acquired" && r.fence === 2),
        2_000
      )
      expect(ok).toBe(true)
    }))

  it.scopedLive("keys are stored as <namespace>:<key>, with the documented set/del/compare semantics", () =>
    Effect.gen(function*() {
      const ns = freshNamespace()
      const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const raw = yield* rawClient(redisUrl())

      expect(yield* kv.set("a:b", "v1")).toBe(true)
      expect(yield* kv.set("ttl", "v2", { PX: 5_000 })).toBe(true)
      expect(yield* kv.set("ttl2", "v3", { ttl: "5 seconds" })).toBe(true)
      const keys = yield* Effect.promise(() => raw.keys(`${ns}:*`))
      expect([...keys].sort()).toEqual([`${ns}:a:b`, `${ns}:ttl`, `${ns}:ttl2`])
      expect(yield* Effect.promise(() => raw.get(`${ns}:a:b`))).toBe("v1")
      expect(yield* Effect.promise(() => raw.pttl(`${ns}:a:b`))).toBe(-1)
      expect(yield* Effect.promise(() => raw.pttl(`${ns}:ttl2`))).toBeGreaterThan(3_000)

      expect(yield* kv.get("a:b")).toEqual(Option.some("v1"))
      expect(yield* kv.get("missing")).toEqual(Option.none())
      expect(yield* kv.pttl("a:b")).toEqual(Option.none())
      expect(yield* kv.pttl("missing")).toEqual(Option.none())
      const pttl = Option.map(yield* kv.pttl("ttl"), Duration.toMillis)
      expect(Option.getOrElse(pttl, () => 0)).toBeGreaterThan(3_000)

      expect(yield* kv.set("a:b", "other", { NX: true })).toBe(false)
      expect(yield* kv.set("absent", "x", { XX: true })).toBe(false)
      expect(yield* kv.set("a:b", "v4", { XX: true, PX: 5_000 })).toBe(true)
      expect(yield* Effect.promise(() => raw.pttl(`${ns}:a:b`))).toBeGreaterThan(3_000)

      expect(yield* kv.compareAndExpire("a:b", "wrong", "60 seconds")).toBe(false)
      expect(yield* kv.compareAndExpire("a:b", "v4", "60 seconds")).toBe(true)
      expect(yield* Effect.promise(() => raw.pttl(`${ns}:a:b`))).toBeGreaterThan(55_000)
      expect(yield* kv.compareAndDelete("a:b", "wrong")).toBe(false)
      expect(yield* kv.compareAndDelete("a:b", "v4")).toBe(true)
      expect(yield* kv.del("ttl")).toBe(true)
      expect(yield* kv.del("ttl")).toBe(false)
      expect(yield* Effect.promise(() => raw.keys(`${ns}:*`))).toEqual([`${ns}:ttl2`])

      // Invalid input never reaches the server.
      const invalid = yield* Effect.flip(kv.set("", "x"))
      expect(invalid._tag).toBe("InvalidArgument")
      expect((yield* Effect.flip(kv.set("k", "x", { NX: true, XX: true })))._tag).toBe("InvalidArgument")
      expect((yield* Effect.flip(kv.compareAndExpire("k", "x", -1)))._tag).toBe("InvalidArgument")
    }))

  it.scopedLive("scripts go as EVALSHA: as EVAL once per connection, and again after a SCRIPT FLUSH", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const raw = yield* rawClient(server.url)
      const kv = yield* LockKv.makeRedis({ url: server.url, namespace: freshNamespace() })
      const stats = Effect.promise(async () => {
        const info = await raw.info("commandstats")
        const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
        return { eval: calls("eval"), evalsha: calls("evalsha") }
      })
      const cycle = (token: string, fence: number) =>
        Effect.gen(function*() {
          expect(yield* kv.acquire("k", token, Duration.seconds(5))).toEqual({ _tag: "Acquired", fence })
          expect(yield* kv.release("k", token)).toBe(true)
        })
      for (let i = 1; i <= 3; i++) yield* cycle(`t${i}`, i)
      // The first acquire and the first release loaded their scripts.
      expect(yield* stats).toEqual({ eval: 2, evalsha: 4 })

      // The server forgets the scripts: EVALSHA gets NOSCRIPT (the script did not run), sent again as EVAL.
      yield* Effect.promise(() => raw.script("FLUSH"))
      yield* cycle("t4", 4)
      expect((yield* stats).eval).toBe(4)
      yield* cycle("t5", 5)
      expect((yield* stats).eval).toBe(4)
      expect(yield* kv.compareAndDelete("k", "nobody")).toBe(false)
      expect(yield* kv.set("k", "v")).toBe(true)
      expect(yield* kv.compareAndExpire("k", "v", "5 seconds")).toBe(true)
      expect(yield* kv.compareAndDelete("k", "v")).toBe(true)

      // The commands are written from cached, pre-encoded pieces: multi-byte and
      // control characters reach the server as they are.
      const ns = kv.namespace
      for (const [key, token] of [["ünïcode ✓ 🔒", "tøken-✓"], ["a\r\nb $3 *2", "t\r\n$1"], ["{tag}x", "t"]]) {
        expect(yield* kv.acquire(key, token, Duration.seconds(5), Duration.seconds(1))).toEqual({
          _tag: "Acquired",
          fence: 1
        })
        expect(yield* Effect.promise(() => raw.get(namespaced(ns, key))), key).toBe(token)
        expect(yield* kv.release(key, token)).toBe(true)
        expect(yield* Effect.promise(() => raw.exists(namespaced(ns, key))), key).toBe(0)
      }
    }))

  it.scopedLive("the fence key hashes to the lock key's cluster slot, hash tag or not", () =>
    Effect.gen(function*() {
      const ns = freshNamespace()
      const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const raw = yield* rawClient(redisUrl())
      // Known gap, reported: a key holding a `}` without forming a hash tag ("a}b", "{}x")
      // cannot be wrapped as `{<key>}` (the tag would end at its own `}`), so keys.ts'
      // companionKey puts its fence key in another slot. Harmless on a standalone server.
      for (const key of ["job", "a{tag}b", "{user:1}", "x{a}}y", "open{brace", "with:colons:here", "ünïcode ✓"]) {
        const full = namespaced(ns, key)
        const fenceKey = companionKey(full, "fence")
        expect(calculateSlot(fenceKey), key).toBe(calculateSlot(full))
        expect(fenceKey.startsWith("{") || fenceKey.startsWith(`${ns}:`), key).toBe(true)
        // The script really uses that key.
        expect(yield* kv.acquire(key, "t", Duration.seconds(5))).toEqual({ _tag: "Acquired", fence: 1 })
        expect(yield* Effect.promise(() => raw.get(fenceKey)), key).toBe("1")
      }
    }))
})

describe("Redis store: release notifications", () => {
  it.scopedLive("release tells the waiter at the head of the queue, in whichever store it waits", () =>
    Effect.gen(function*() {
      const ns = freshNamespace()
      const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const other = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const raw = yield* rawClient(redisUrl())
      const messages: Array<string> = []
      // Each store listens on a channel of its own under the namespace's release channel.
      raw.on("pmessage", (_pattern: string, channel: string, message: string) => {
        if (channel.startsWith(`${releaseChannel(ns)}:`)) messages.push(message)
      })
      yield* Effect.promise(() => raw.psubscribe(`${releaseChannel(ns)}:*`))

      const sameStore = (yield* kv.watchReleases("w", "waiter-1")).next
      const otherStore = (yield* other.watchReleases("w", "waiter-2")).next
      const unrelated = (yield* kv.watchReleases("unrelated", "waiter-3")).next

      yield* kv.acquire("w", "t", Duration.seconds(5))
      yield* kv.acquire("unrelated", "t", Duration.seconds(5))
      // waiter-2 (in the other store) queues first, then waiter-1.
      expect((yield* other.acquire("w", "waiter-2", Duration.seconds(5), Duration.seconds(2)))._tag).toBe("Held")
      expect((yield* kv.acquire("w", "waiter-1", Duration.seconds(5), Duration.seconds(2)))._tag).toBe("Held")
      expect((yield* kv.acquire("unrelated", "waiter-3", Duration.seconds(5), Duration.seconds(2)))._tag).toBe("Held")
      // A failed release (wrong token) announces nothing.
      expect(yield* kv.release("w", "not-mine")).toBe(false)
      expect(yield* Effect.timeoutOption(sameStore, Duration.millis(200))).toEqual(Option.none())

      expect(yield* kv.release("w", "t")).toBe(true)
      // Only the head of the queue (waiter-2, in the other store) is told: it was granted the lock.
      expect(yield* Effect.timeoutOption(otherStore, Duration.seconds(2))).toEqual(
        Option.some({ _tag: "Granted", fence: 2 })
      )
      expect(yield* Effect.timeoutOption(sameStore, Duration.millis(200))).toEqual(Option.none())
      expect(yield* Effect.timeoutOption(unrelated, Duration.millis(200))).toEqual(Option.none())
      expect(yield* eventually(Effect.sync(() => messages.length === 1), 2_000)).toBe(true)
      // `<token>|<fence>|<key>`
      expect(messages).toEqual(["waiter-2|2|w"])
      // The granted waiter gives the lock up: it passes on to the next waiter.
      expect(yield* other.release("w", "waiter-2")).toBe(true)
      expect(yield* eventually(Effect.sync(() => messages.length === 2), 2_000)).toBe(true)
      expect(messages[1]).toBe("waiter-1|3|w")
      expect(yield* Effect.timeoutOption(sameStore, Duration.seconds(2))).toEqual(
        Option.some({ _tag: "Granted", fence: 3 })
      )
      yield* kv.release("w", "waiter-1")
      // With nobody queued, a release publishes nothing.
      yield* kv.acquire("w", "t2", Duration.seconds(5))
      yield* kv.release("w", "t2")
      yield* Effect.sleep(Duration.millis(200))
      expect(messages).toHaveLength(2)
    }))

  it.scopedLive("one subscriber connection per store, however many watchers", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const raw = yield* rawClient(server.url)
      const kv = yield* LockKv.makeRedis({ url: server.url, namespace: freshNamespace() })
      for (let i = 0; i < 20; i++) yield* kv.watchReleases(`k${i}`, `t${i}`)
      const names = yield* clientNames(raw)
      expect(countNamed(names, "effect-lock")).toBe(1)
      expect(countNamed(names, "effect-lock-sub")).toBe(1)
    }))
})

class ServiceA extends Context.Tag("test/ServiceA")<ServiceA, { readonly kv: LockKv.LockKv.Service }>() {}
class ServiceB extends Context.Tag("test/ServiceB")<ServiceB, { readonly kv: LockKv.LockKv.Service }>() {}
const ServiceALive = Layer.effect(ServiceA, Effect.map(LockKv.LockKv, (kv) => ({ kv })))
const ServiceBLive = Layer.effect(ServiceB, Effect.map(LockKv.LockKv, (kv) => ({ kv })))

describe("Redis store: connection lifetime", () => {
  it.scopedLive("the layer holds two connections while built and closes them with its scope", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const raw = yield* rawClient(server.url)
      const before = (yield* clientNames(raw)).length

      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(LockKv.layerRedis({ url: server.url }), scope)
      const kv = Context.get(context, LockKv.LockKv)
      yield* kv.set("x", "y")
      const during = yield* clientNames(raw)
      expect(during.length).toBe(before + 2)
      expect(countNamed(during, "effect-lock")).toBe(1)
      expect(countNamed(during, "effect-lock-sub")).toBe(1)

      yield* Scope.close(scope, Exit.void)
      const closed = yield* eventually(Effect.map(clientNames(raw), (names) => names.length === before))
      expect(closed).toBe(true)
      // A call after release fails with LockKvError at once instead of reconnecting.
      const after = yield* timed(kv.get("x"))
      expect(Either.isLeft(after.result)).toBe(true)
      expect(after.elapsed).toBeLessThan(1_000)
    }))

  it.scopedLive("LockKv.layer provided once is a singleton: one client for every service", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const raw = yield* rawClient(server.url)
      const config = ConfigProvider.fromMap(new Map([["REDIS_URL", server.url]]), { pathDelim: "_" })

      const check = Effect.gen(function*() {
        const a = yield* ServiceA
        const b = yield* ServiceB
        expect(a.kv).toBe(b.kv)
        expect(a.kv.backend).toBe("redis")
        const names = yield* clientNames(raw)
        return [countNamed(names, "effect-lock"), countNamed(names, "effect-lock-sub")]
      })

      // Provided once for the whole graph…
      const once = Layer.mergeAll(ServiceALive, ServiceBLive).pipe(Layer.provide(LockKv.layer))
      expect(yield* check.pipe(Effect.provide(once), Effect.withConfigProvider(config))).toEqual([1, 1])
      // …or to each service separately: memoized by reference, still one instance.
      const each = Layer.mergeAll(
        Layer.provide(ServiceALive, LockKv.layer),
        Layer.provide(ServiceBLive, LockKv.layer)
      )
      expect(yield* check.pipe(Effect.provide(each), Effect.withConfigProvider(config))).toEqual([1, 1])

      // Control: two calls of `layerRedis` are two layers, hence two clients.
      const two = Layer.mergeAll(
        Layer.provide(ServiceALive, LockKv.layerRedis({ url: server.url })),
        Layer.provide(ServiceBLive, LockKv.layerRedis({ url: server.url }))
      )
      const twoClients = yield* Effect.gen(function*() {
        const a = yield* ServiceA
        const b = yield* ServiceB
        expect(a.kv).not.toBe(b.kv)
        const names = yield* clientNames(raw)
        return countNamed(names, "effect-lock")
      }).pipe(Effect.provide(two))
      expect(twoClients).toBe(2)

      // Everything was released when each `provide` ended.
      const none = yield* eventually(
        Effect.map(
          clientNames(raw),
          (names) => countNamed(names, "effect-lock") + countNamed(names, "effect-lock-sub") === 0
        )
      )
      expect(none).toBe(true)
    }))
})

describe("Redis store: losing the server", () => {
  const consoleError = vi.spyOn(console, "error")
  afterEach(() => {
    const unhandled = consoleError.mock.calls.filter((args) => String(args[0]).includes("Unhandled error event"))
    consoleError.mockClear()
    expect(unhandled).toEqual([])
  })

  /** Calls `get` until it succeeds (bounded), checking that every failure came within 5 s. */
  const untilReconnected = (kv: LockKv.LockKv.Service, ms: number) =>
    Effect.gen(function*() {
      const deadline = Date.now() + ms
      const failures: Array<number> = []
      while (Date.now() < deadline) {
        const { elapsed, result } = yield* timed(kv.get("probe"))
        if (Either.isRight(result)) return { reconnected: true, failures }
        expect(result.left._tag).toBe("LockKvError")
        expect(elapsed).toBeLessThan(5_000)
        failures.push(elapsed)
        yield* Effect.sleep(Duration.millis(100))
      }
      return { reconnected: false, failures }
    })

  it.scopedLive("a restarted server: calls fail fast while it is down, then the store reconnects by itself", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const ns = freshNamespace()
      const kv = yield* LockKv.makeRedis({ url: server.url, namespace: ns })
      yield* kv.set("probe", "1")

      server.kill("SIGKILL")
      // Down: every call fails with LockKvError within 5 s, none hangs.
      for (let i = 0; i < 3; i++) {
        const { elapsed, result } = yield* timed(kv.set("probe", "2"))
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left._tag).toBe("LockKvError")
        expect(elapsed).toBeLessThan(5_000)
      }

      yield* Effect.promise(() => server.restart())
      const { reconnected } = yield* untilReconnected(kv, 10_000)
      expect(reconnected).toBe(true)
      expect(yield* kv.set("probe", "3")).toBe(true)

      // The subscriber re-subscribed too: a release wakes a watcher again (bounded retries).
      let woken = false
      for (let i = 0; i < 30 && !woken; i++) {
        const waiter = yield* kv.watchReleases("after-restart", `w${i}`)
        yield* kv.acquire("after-restart", `t${i}`, Duration.seconds(5))
        yield* kv.acquire("after-restart", `w${i}`, Duration.seconds(5), Duration.seconds(2))
        yield* kv.release("after-restart", `t${i}`)
        woken = Option.isSome(yield* Effect.timeoutOption(waiter.next, Duration.millis(200)))
        waiter.close()
        yield* kv.release("after-restart", `w${i}`)
      }
      expect(woken).toBe(true)
    }))

  it.scopedLive("a reconnect that cannot select the database never runs a command in another one", () =>
    Effect.gen(function*() {
      const ns = freshNamespace()
      const first = yield* Effect.promise(() => startRedisServer({ args: ["--databases", "8"] }))
      const port = first.port
      const kv = yield* LockKv.makeRedis({ url: `${first.url}/5`, namespace: ns })
      yield* kv.set("probe", "1")
      yield* Effect.promise(() => first.stop())

      // The same port, now a server with only databases 0 and 1.
      const fewer = yield* redisServerScoped({ port, args: ["--databases", "2"] })
      const messages: Array<string> = []
      const deadline = Date.now() + 2_500
      while (Date.now() < deadline) {
        const calls: ReadonlyArray<Effect.Effect<unknown, LockKv.LockKvError | LockKv.InvalidArgument>> = [
          kv.set("probe", "2"),
          kv.acquire("job", "token", Duration.seconds(5))
        ]
        for (const call of calls) {
          const { elapsed, result } = yield* timed(call)
          expect(Either.isLeft(result), "a call succeeded on a server without database 5").toBe(true)
          if (Either.isLeft(result)) {
            expect(result.left._tag).toBe("LockKvError")
            messages.push(result.left.message)
          }
          expect(elapsed).toBeLessThan(5_000)
        }
        yield* Effect.sleep(Duration.millis(100))
      }
      // It did reconnect, and said why it would not use the connection.
      expect(messages.some((message) => /\bdatabase 5\b/.test(message)), messages.join("\n")).toBe(true)
      const raw = yield* rawClient(fewer.url)
      expect(yield* Effect.promise(() => raw.dbsize())).toBe(0)
      yield* Effect.promise(() => raw.select(1))
      expect(yield* Effect.promise(() => raw.dbsize())).toBe(0)
      yield* Effect.promise(() => fewer.stop())

      // A server with database 5 again: the store recovers by itself, in database 5.
      const again = yield* redisServerScoped({ port, args: ["--databases", "8"] })
      const { reconnected } = yield* untilReconnected(kv, 15_000)
      expect(reconnected).toBe(true)
      expect(yield* kv.set("probe", "3")).toBe(true)
      const check = yield* rawClient(again.url)
      expect(yield* Effect.promise(() => check.dbsize())).toBe(0)
      yield* Effect.promise(() => check.select(5))
      expect(yield* Effect.promise(() => check.get(`${ns}:probe`))).toBe("3")
    }))

  it.scopedLive("a frozen server: calls fail within 5 s, and succeed again once it thaws", () =>
    Effect.gen(function*() {
      const server = yield* redisServerScoped()
      const kv = yield* LockKv.makeRedis({ url: server.url, namespace: freshNamespace() })
      yield* kv.set("probe", "1")

      server.pause()
      yield* Effect.gen(function*() {
        const { elapsed, result } = yield* timed(kv.acquire("frozen", "t", Duration.seconds(5)))
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left._tag).toBe("LockKvError")
        expect(elapsed).toBeLessThan(5_000)
        const second = yield* timed(kv.get("probe"))
        expect(Either.isLeft(second.result)).toBe(true)
        expect(second.elapsed).toBeLessThan(5_000)
      }).pipe(Effect.ensuring(Effect.sync(() => server.resume())))
      const { reconnected } = yield* untilReconnected(kv, 15_000)
      expect(reconnected).toBe(true)
    }))
})
