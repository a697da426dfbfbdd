/**
 * The Redis store on a real Redis Cluster (3 masters + 3 replicas started by
 * the suite): store calls on keys spread over every master, hand-off between
 * stores, mutual exclusion across OS processes, `replicas` (WAIT), and a slot
 * migrated (MOVED/ASK) while a lock is held and waited on.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Either, Exit, Fiber, Layer, Option, Redacted, Schedule } from "effect"
import { Cluster } from "ioredis"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Lock, LockKv, Semaphore } from "../../../src/index.js"
import { uniqueNamespace } from "../../support/backends.js"
import { expectExactCounter, runCounterWorkers } from "../../support/crossProcess.js"
import { redisCli, type RedisClusterHandle, startRedisCluster } from "../../support/redisHa.js"

let cluster: RedisClusterHandle
let raw: Cluster

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 })
  raw = new Cluster(cluster.startupNodes.map((node) => ({ ...node })))
  raw.on("error", () => {})
}, 90_000)

afterAll(async () => {
  raw?.disconnect()
  await cluster?.stop()
}, 30_000)

/** The commands of the README's minimal ACL (a single server's). */
const aclCommands = readFileSync(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8")
  .match(/ACL SETUSER locker on >PASSWORD resetkeys [^\n]*-@all ([^\n]*)/)![1]!.split(" ")

const layer = (namespace: string) =>
  LockKv.layerRedis({ cluster: { nodes: cluster.startupNodes }, namespace, connectTimeout: "10 seconds" })

const store = (namespace: string) =>
  Effect.map(Layer.build(layer(namespace)), (context) => Context.get(context, LockKv.LockKv))

/**
 * The sharded release channels of `key` on its master (`PUBSUB SHARDCHANNELS`),
 * and a spy subscribed to the one a waiter's store listens on: what it hears.
 */
const shardChannelsOf = (namespace: string, key: string) =>
  Effect.gen(function*() {
    const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:${key}`))
    const master = yield* Effect.promise(() => cluster.masterOf(slot))
    return () =>
      Effect.map(
        Effect.promise(() => redisCli(master.port, ["PUBSUB", "SHARDCHANNELS", `{${namespace}:${key}}:released:*`])),
        (reply) => reply.trim().split("\n").filter((line) => line !== "")
      )
  })

const spyOn = (channel: string) =>
  Effect.gen(function*() {
    const spy = new Cluster(cluster.startupNodes.map((node) => ({ ...node })), { shardedSubscribers: true })
    spy.on("error", () => {})
    yield* Effect.addFinalizer(() => Effect.sync(() => spy.disconnect()))
    const heard: Array<string> = []
    spy.on("smessage", (_channel: string, message: string) => heard.push(message))
    yield* Effect.promise(() => spy.ssubscribe(channel))
    return { heard, disconnect: () => spy.disconnect() }
  })

describe("Redis Cluster store", () => {
  it.scopedLive("store calls and locks on keys spread over every master", () =>
    Effect.gen(function*() {
      const namespace = uniqueNamespace("cl")
      const kv = yield* store(namespace)
      const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
      // The keys really land on the three masters.
      const masters = new Set<number>()
      for (const key of keys) {
        const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:${key}`))
        masters.add((yield* Effect.promise(() => cluster.masterOf(slot))).port)
      }
      expect(masters.size).toBe(3)

      for (const key of keys) {
        expect(yield* kv.set(key, "v", { PX: 5_000 })).toBe(true)
        expect(yield* kv.get(key)).toEqual(Option.some("v"))
        expect(Option.isSome(yield* kv.pttl(key))).toBe(true)
        expect(yield* kv.compareAndExpire(key, "v", "10 seconds")).toBe(true)
        expect(yield* kv.compareAndDelete(key, "other")).toBe(false)
        expect(yield* kv.compareAndDelete(key, "v")).toBe(true)
        expect(yield* kv.del(key)).toBe(false)
      }

      // Lock cycles on every key, concurrently; fences count from 1 per key.
      const fences = yield* Effect.forEach(
        keys,
        (key) =>
          Effect.forEach([1, 2, 3], () =>
            Effect.map(Lock.acquire(key, { ttl: "5 seconds" }), (h) => h.fence).pipe(
              Effect.scoped
            )),
        { concurrency: "unbounded" }
      ).pipe(Effect.provideService(LockKv.LockKv, kv))
      for (const perKey of fences) expect(perKey).toEqual([1, 2, 3])
      for (const key of keys) expect(yield* kv.fence(key)).toEqual(Option.some(3))

      // Scripts flushed on every node: each node answers NOSCRIPT once, gets the script as EVAL, and the call succeeds.
      for (const node of cluster.nodes) yield* Effect.promise(() => redisCli(node.port, ["SCRIPT", "FLUSH"]))
      const again = yield* Effect.forEach(
        keys,
        (key) => Effect.scoped(Effect.map(Lock.acquire(key, { ttl: "5 seconds" }), (h) => h.fence)),
        { concurrency: "unbounded" }
      ).pipe(Effect.provideService(LockKv.LockKv, kv))
      expect(again).toEqual(keys.map(() => 4))
    }), 60_000)

  it.scopedLive(
    "a waiter in another store is handed the lock at the release (sharded pub/sub in the key's slot)",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-hand")
        const a = yield* store(namespace)
        const b = yield* store(namespace)
        const holder = yield* Lock.acquire("job", { ttl: "10 seconds" }).pipe(Effect.provideService(LockKv.LockKv, a))
        const waiter = yield* Effect.fork(
          Lock.withLock(Effect.sync(() => Date.now()), "job", { ttl: "10 seconds", wait: "10 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, b)
          )
        )
        yield* Effect.sleep("300 millis")
        // The waiter's store listens on a sharded channel of the key's slot, on the key's master.
        const shardChannels = yield* shardChannelsOf(namespace, "job")
        const channels = yield* shardChannels()
        expect(channels).toHaveLength(1)
        // A spy on that channel hears the release's SPUBLISH (the store itself is told in process too).
        const { disconnect, heard } = yield* spyOn(channels[0]!)
        const releasedAt = Date.now()
        expect(yield* holder.release).toBe(true)
        const tookAt = yield* Fiber.join(waiter)
        // Told by the release's message: well before the waiter's next try (~670 ms) or any backoff.
        expect(tookAt - releasedAt).toBeLessThan(300)
        expect(yield* a.fence("job")).toEqual(Option.some(2))
        yield* Effect.sleep("100 millis")
        expect(heard).toHaveLength(1)
        expect(heard[0]).toMatch(/^[^|]+\|2\|job$/)
        disconnect()
        // Unsubscribed a while after its last waiter left.
        yield* Effect.sleep("2500 millis")
        expect(yield* shardChannels()).toEqual([])
      }),
    30_000
  )

  it.scopedLive(
    "a semaphore waiter in another store is granted its permits at the release, by SPUBLISH in the key's slot",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-sem")
        const a = yield* store(namespace)
        const b = yield* store(namespace)
        const options: Semaphore.Options = {
          limit: 2,
          ttl: "10 seconds",
          wait: "10 seconds",
          retry: Schedule.spaced("1 hour")
        }
        const holder = yield* Semaphore.acquire("pool", 2, options).pipe(Effect.provideService(LockKv.LockKv, a))
        const waiter = yield* Effect.fork(
          Semaphore.withPermits(Effect.sync(() => Date.now()), "pool", 1, options).pipe(
            Effect.provideService(LockKv.LockKv, b)
          )
        )
        yield* Effect.sleep("300 millis")
        const channels = yield* Effect.flatMap(shardChannelsOf(namespace, "pool"), (list) => list())
        expect(channels).toHaveLength(1)
        const { heard } = yield* spyOn(channels[0]!)
        const releasedAt = Date.now()
        expect(yield* holder.release).toBe(true)
        const tookAt = yield* Fiber.join(waiter)
        // Told by the grant's message: well before the waiter's next try (~670 ms); its retry is an hour.
        expect(tookAt - releasedAt).toBeLessThan(300)
        yield* Effect.sleep("100 millis")
        expect(heard).toHaveLength(1)
        expect(heard[0]).toMatch(/^[^|]+\|2\|pool$/)
      }),
    30_000
  )

  it.scopedLive(
    "the minimal ACL of the README, with its cluster additions, is enough: locks, hand-off, replicas, semaphores",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-acl")
        // The README's list for this namespace, plus what it says a cluster needs.
        const rules = [
          "on",
          ">pw-acl",
          "resetkeys",
          `~${namespace}:*`,
          `~{${namespace}:*`,
          "resetchannels",
          `&${namespace}:*`,
          `&{${namespace}:*`,
          "-@all",
          ...aclCommands,
          "+ssubscribe",
          "+sunsubscribe",
          "+spublish",
          "+cluster|slots",
          "+cluster|info",
          "+asking",
          // ioredis' shard subscriber may connect to a replica of the shard, which needs READONLY.
          "+readonly",
          "+wait"
        ]
        for (const node of cluster.nodes) {
          yield* Effect.promise(() => redisCli(node.port, ["ACL", "LOG", "RESET"]))
          yield* Effect.promise(() => redisCli(node.port, ["ACL", "SETUSER", "locker", ...rules]))
        }
        const restricted = Effect.map(
          Layer.build(
            LockKv.layerRedis({
              cluster: { nodes: cluster.startupNodes },
              namespace,
              username: "locker",
              password: Redacted.make("pw-acl"),
              connectTimeout: "10 seconds"
            })
          ),
          (context) => Context.get(context, LockKv.LockKv)
        )
        const a = yield* restricted
        const b = yield* restricted
        // Contention with a hand-off (sharded pub/sub), WAIT, a semaphore, on keys over the masters.
        const holder = yield* Lock.acquire("job", { ttl: "10 seconds", replicas: 1 }).pipe(
          Effect.provideService(LockKv.LockKv, a)
        )
        const waiter = yield* Effect.fork(
          Lock.withLock(Effect.succeed("handed"), "job", { ttl: "10 seconds", wait: "10 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, b)
          )
        )
        yield* Effect.sleep("300 millis")
        expect(yield* holder.release).toBe(true)
        expect(yield* Fiber.join(waiter)).toBe("handed")
        for (let i = 0; i < 12; i++) {
          yield* Lock.withLock(Effect.void, `key-${i}`, { ttl: "5 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, a)
          )
        }
        const permits = yield* Semaphore.withPermits(Effect.succeed(2), "pool", 2, { limit: 3 }).pipe(
          Effect.provideService(LockKv.LockKv, b)
        )
        expect(permits).toBe(2)
        // Nothing was denied, on any node.
        for (const node of cluster.nodes) {
          expect((yield* Effect.promise(() => redisCli(node.port, ["ACL", "LOG"]))).trim(), `node ${node.port}`).toBe(
            ""
          )
        }
      }),
    60_000
  )

  it.scopedLive(
    "without SSUBSCRIBE (an ACL denies it) the notices fall back to PUBLISH over the cluster bus",
    () =>
      Effect.gen(function*() {
        for (const node of cluster.nodes) {
          yield* Effect.promise(() =>
            redisCli(node.port, ["ACL", "SETUSER", "plainonly", "on", ">pw-plain", "~*", "&*", "+@all", "-ssubscribe"])
          )
        }
        const namespace = uniqueNamespace("cl-plain")
        const plainStore = Effect.map(
          Layer.build(
            LockKv.layerRedis({
              cluster: { nodes: cluster.startupNodes },
              namespace,
              username: "plainonly",
              password: Redacted.make("pw-plain")
            })
          ),
          (context) => Context.get(context, LockKv.LockKv)
        )
        const a = yield* plainStore
        const b = yield* plainStore
        const spy = new Cluster(cluster.startupNodes.map((node) => ({ ...node })))
        spy.on("error", () => {})
        yield* Effect.addFinalizer(() => Effect.sync(() => spy.disconnect()))
        const heard: Array<string> = []
        spy.on("pmessage", (_pattern: string, _channel: string, message: string) => heard.push(message))
        yield* Effect.promise(() => spy.psubscribe(`${namespace}:__released__:*`))

        const holder = yield* Lock.acquire("job", { ttl: "10 seconds" }).pipe(Effect.provideService(LockKv.LockKv, a))
        const waiter = yield* Effect.fork(
          Lock.withLock(Effect.void, "job", { ttl: "10 seconds", wait: "10 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, b)
          )
        )
        yield* Effect.sleep("300 millis")
        const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:job`))
        const master = yield* Effect.promise(() => cluster.masterOf(slot))
        expect(
          (yield* Effect.promise(() => redisCli(master.port, ["PUBSUB", "SHARDCHANNELS", `{${namespace}:job}:*`])))
            .trim()
        ).toBe("")
        expect(yield* holder.release).toBe(true)
        yield* Fiber.join(waiter)
        yield* Effect.sleep("100 millis")
        expect(heard).toHaveLength(1)
        expect(heard[0]).toMatch(/^[^|]+\|2\|job$/)
      }),
    30_000
  )

  it("mutual exclusion across processes: the counter is exact and fences increase in section order", async () => {
    const namespace = uniqueNamespace("cl-xproc")
    const target = `cluster:${cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(",")}`
    const run = { processes: 3, fibers: 3, iterations: 10 }
    const results = await runCounterWorkers(target, namespace, run)
    await expectExactCounter(results, raw, namespace, run)
  }, 120_000)

  it.scopedLive(
    "replicas: 1 is acknowledged by the key's replica; replicas: 2 is not, and is undone",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-wait")
        const kv = yield* store(namespace)
        const direct = yield* kv.acquire("k", "token-1", Duration.seconds(5), undefined, {
          replicas: 1,
          timeout: Duration.millis(1000)
        })
        expect(direct).toEqual({ _tag: "Acquired", fence: 1, replicas: 1 })
        expect(yield* kv.release("k", "token-1")).toBe(true)

        const handle = yield* Lock.acquire("w", { ttl: "3 seconds", replicas: 1, replicasTimeout: "1 second" }).pipe(
          Effect.provideService(LockKv.LockKv, kv)
        )
        expect(handle.fence).toBe(1)
        // Renewals wait for the replica too; the lock is kept past its ttl.
        yield* Effect.sleep("3500 millis")
        yield* handle.extend()
        expect(yield* kv.get("w")).toEqual(Option.some(handle.token))

        // Each master has one replica: two acknowledgements never come.
        const started = Date.now()
        const refused = yield* Effect.either(
          Lock.withLock(Effect.void, "two", { replicas: 2, replicasTimeout: "200 millis" }).pipe(
            Effect.provideService(LockKv.LockKv, kv)
          )
        )
        expect(Either.isLeft(refused) && refused.left).toMatchObject({
          _tag: "ReplicationNotConfirmed",
          key: "two",
          acked: 1,
          asked: 2
        })
        expect(Date.now() - started).toBeGreaterThanOrEqual(190)
        // Undone: the key is free, its fence was spent.
        expect(yield* kv.get("two")).toEqual(Option.none())
        expect(yield* kv.fence("two")).toEqual(Option.some(1))

        // Out of range: refused before the store is touched.
        const bad = yield* Effect.either(
          Lock.withLock(Effect.void, "bad", { replicas: 1, replicasTimeout: "5 seconds" }).pipe(
            Effect.provideService(LockKv.LockKv, kv)
          )
        )
        expect(Either.isLeft(bad) && bad.left._tag).toBe("InvalidArgument")
        expect(yield* kv.fence("bad")).toEqual(Option.none())
      }),
    30_000
  )

  for (const replicas of [0, 1]) {
    it.scopedLive(
      `a slot migrated (MOVED/ASK) while its lock is held and waited on, replicas ${replicas}: renewals follow it, the waiter gets it`,
      () =>
        Effect.gen(function*() {
          const namespace = uniqueNamespace(`cl-mig${replicas}`)
          // With replicas, each write and its WAIT go to the master's connection directly: MOVED/ASK followed by the store.
          const options: Lock.Options = replicas === 0 ? {} : { replicas, replicasTimeout: "300 millis" }
          const a = yield* store(namespace)
          const b = yield* store(namespace)
          const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:moving`))
          const from = yield* Effect.promise(() => cluster.masterOf(slot))
          const masters = new Set<number>()
          for (const node of cluster.nodes) {
            const info = yield* Effect.promise(() => cluster.replicasOf(node.port))
            if (info.length > 0) masters.add(node.port)
          }
          const to = [...masters].find((port) => port !== from.port)!

          // ttl 600 ms (1 s with WAIT): renewed every ttl/3, across the migration.
          const holder = yield* Lock.acquire("moving", { ttl: replicas === 0 ? "600 millis" : "1 second", ...options })
            .pipe(
              Effect.provideService(LockKv.LockKv, a)
            )
          const waiter = yield* Effect.fork(
            Lock.withLock(Effect.sync(() => Date.now()), "moving", { ttl: "5 seconds", wait: "15 seconds", ...options })
              .pipe(
                Effect.provideService(LockKv.LockKv, b),
                Effect.zip(Effect.sync(() => Date.now()))
              )
          )
          yield* Effect.sleep("300 millis")
          yield* Effect.promise(() => cluster.migrateSlot(slot, to))
          expect((yield* Effect.promise(() => cluster.masterOf(slot))).port).toBe(to)
          // Held through the migration and well past its ttl.
          yield* Effect.sleep("1500 millis")
          const lost = yield* Effect.either(Effect.timeout(holder.lost, "10 millis"))
          expect(Either.isLeft(lost)).toBe(true)
          expect(yield* a.get("moving")).toEqual(Option.some(holder.token))
          expect(waiter.unsafePoll()).toBeNull()

          expect(yield* holder.release).toBe(true)
          const exit = yield* Fiber.await(waiter)
          expect(Exit.isSuccess(exit)).toBe(true)
          expect(yield* a.fence("moving")).toEqual(Option.some(2))
        }),
      60_000
    )
  }

  it.effect("replicas on the memory store: InvalidArgument", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        Lock.withLock(Effect.void, "k", { replicas: 1 }).pipe(Effect.provide(LockKv.layerMemory))
      )
      expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "InvalidArgument", argument: "replicas" })
    }))
})
