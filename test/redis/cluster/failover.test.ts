/**
 * A Redis Cluster master killed while locks on its slot are held and taken
 * in turns: its replica is promoted, sections go on (or end with `LockLost`),
 * the fences a fenced resource sees never go back, and a lock acknowledged by
 * the replica (`replicas: 1`) before the failover survives it.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Fiber, Layer, Option } from "effect"
import { Redis } from "ioredis"
import { Lock, LockKv } from "../../../src/index.js"
import { uniqueNamespace } from "../../support/backends.js"
import { fencedResource, takeTurnsFenced } from "../../support/fencedResource.js"
import { redisCli, type RedisClusterHandle, startRedisCluster } from "../../support/redisHa.js"

let cluster: RedisClusterHandle

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 })
}, 90_000)

afterAll(async () => {
  await cluster?.stop()
}, 30_000)

describe("Redis Cluster failover", () => {
  it.scopedLive(
    "a master killed, its replica promoted: sections go on, fences never go back, acked locks survive",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-fail")
        const kv = Context.get(
          yield* Layer.build(LockKv.layerRedis({ cluster: { nodes: cluster.startupNodes }, namespace })),
          LockKv.LockKv
        )
        // One hash tag: both keys live in one slot, on the master about to die.
        const survivorKey = "{grp}survivor", turnsKey = "{grp}turns"
        const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:${survivorKey}`))
        const master = yield* Effect.promise(() => cluster.masterOf(slot))
        const [replica] = yield* Effect.promise(() => cluster.replicasOf(master.port))
        expect(replica).toBeDefined()

        const held = yield* Lock.acquire(survivorKey, { ttl: "60 seconds", replicas: 1 }).pipe(
          Effect.provideService(LockKv.LockKv, kv)
        )

        const resource = fencedResource()
        const outcomes: Array<string> = []
        const taker = takeTurnsFenced(turnsKey, resource, outcomes).pipe(Effect.provideService(LockKv.LockKv, kv))
        const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(taker))
        yield* Effect.sleep("1 second")
        const okBeforeKill = outcomes.filter((o) => o === "ok").length
        expect(okBeforeKill).toBeGreaterThan(3)

        master.server.kill("SIGKILL")
        // The replica takes over after the node timeout (1 s) and an election.
        const promoted = Date.now() + 30_000
        while (
          !(yield* Effect.promise(() => redisCli(replica!.port, ["INFO", "replication"]))).includes("role:master") &&
          Date.now() < promoted
        ) {
          yield* Effect.sleep("200 millis")
        }
        expect(yield* Effect.promise(() => redisCli(replica!.port, ["INFO", "replication"]))).toContain("role:master")
        // The old master comes back, as the new master's replica: WAIT 1 can be met again.
        yield* Effect.promise(() => master.server.restart())
        yield* Effect.promise(() => cluster.waitHealthy(30_000))

        const okAfter = outcomes.filter((o) => o === "ok").length
        const until = Date.now() + 20_000
        while (outcomes.filter((o) => o === "ok").length < okAfter + 5 && Date.now() < until) {
          yield* Effect.sleep("100 millis")
        }
        for (const fiber of fibers) yield* Fiber.interrupt(fiber)
        expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThanOrEqual(okAfter + 5)
        for (const outcome of outcomes) {
          expect(["ok", "LockKvError", "LockLost", "LockNotAcquired", "ReplicationNotConfirmed"]).toContain(outcome)
        }
        // The failover was felt (the dead master's calls failed), and survived.
        const counts: Record<string, number> = {}
        for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1
        expect(outcomes.some((o) => o !== "ok"), JSON.stringify(counts)).toBe(true)
        // Never two holders unnoticed: no fence the resource saw went back.
        expect(resource.rejected).toEqual([])

        // The lock acknowledged before the failover is on the promoted replica, still ours.
        const direct = new Redis(replica!.port, "127.0.0.1")
        try {
          expect(yield* Effect.promise(() => direct.get(`${namespace}:${survivorKey}`))).toBe(held.token)
        } finally {
          direct.disconnect()
        }
        const lost = yield* Effect.either(Effect.timeout(held.lost, "10 millis"))
        expect(Either.isLeft(lost)).toBe(true)
        yield* held.extend()
        expect(yield* held.release).toBe(true)
      }),
    120_000
  )

  it.scopedLive(
    "a master silent for 3 s (SIGSTOP): its calls fail within ~3.5 s, never hang; then work again",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("cl-stall")
        const kv = Context.get(
          yield* Layer.build(LockKv.layerRedis({ cluster: { nodes: cluster.startupNodes }, namespace })),
          LockKv.LockKv
        )
        // No failover meanwhile: only the stall watchdog can end the call.
        for (const node of cluster.nodes) {
          yield* Effect.promise(() => redisCli(node.port, ["CONFIG", "SET", "cluster-node-timeout", "30000"]))
        }
        const slot = yield* Effect.promise(() => cluster.slotOf(`${namespace}:frozen`))
        const master = yield* Effect.promise(() => cluster.masterOf(slot))
        expect(yield* kv.set("frozen", "v")).toBe(true)
        master.server.pause()
        try {
          const started = Date.now()
          const result = yield* Effect.either(kv.get("frozen"))
          const elapsed = Date.now() - started
          expect(Either.isLeft(result) && result.left).toMatchObject({ _tag: "LockKvError" })
          expect(Either.isLeft(result) && result.left.message).toContain("did not answer within 3s")
          expect(elapsed).toBeGreaterThanOrEqual(2_900)
          expect(elapsed).toBeLessThan(4_500)
        } finally {
          master.server.resume()
        }
        // The node is back: ioredis connects to it again on the next call that needs it.
        const deadline = Date.now() + 15_000
        let value = yield* Effect.either(kv.get("frozen"))
        while (Either.isLeft(value) && Date.now() < deadline) {
          yield* Effect.sleep("200 millis")
          value = yield* Effect.either(kv.get("frozen"))
        }
        expect(value).toEqual(Either.right(Option.some("v")))
        for (const node of cluster.nodes) {
          yield* Effect.promise(() => redisCli(node.port, ["CONFIG", "SET", "cluster-node-timeout", "1000"]))
        }
      }),
    60_000
  )
})
