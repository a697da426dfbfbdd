/**
 * The Redis store through Redis Sentinel (a primary, a replica and three
 * sentinels started by the suite): lock cycles and WAIT on the primary the
 * sentinels name, then the primary killed and its replica promoted while
 * locks are held and sections write to a fenced resource.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Fiber, Layer, Option } from "effect"
import { Redis } from "ioredis"
import { Lock, LockKv } from "../../../src/index.js"
import { uniqueNamespace } from "../../support/backends.js"
import { expectExactCounter, runCounterWorkers } from "../../support/crossProcess.js"
import { fencedResource, takeTurnsFenced } from "../../support/fencedResource.js"
import { redisCli, type SentinelGroupHandle, startSentinelGroup } from "../../support/redisHa.js"

let group: SentinelGroupHandle

beforeAll(async () => {
  group = await startSentinelGroup({ downAfterMs: 1000 })
}, 90_000)

afterAll(async () => {
  await group?.stop()
}, 30_000)

const store = (namespace: string) =>
  Effect.map(
    Layer.build(
      LockKv.layerRedis({ sentinel: { sentinels: group.sentinels, name: group.name }, namespace })
    ),
    (context) => Context.get(context, LockKv.LockKv)
  )

describe("Redis Sentinel store", () => {
  it.scopedLive("lock cycles and WAIT on the primary the sentinels name", () =>
    Effect.gen(function*() {
      const kv = yield* store(uniqueNamespace("sn"))
      const fences = yield* Effect.forEach(
        [1, 2, 3],
        () => Lock.withLock(Effect.succeed("ran"), "k", { ttl: "2 seconds", replicas: 1 }),
        { concurrency: 3 }
      ).pipe(Effect.provideService(LockKv.LockKv, kv))
      expect(fences).toEqual(["ran", "ran", "ran"])
      expect(yield* kv.fence("k")).toEqual(Option.some(3))
      const refused = yield* Effect.either(
        Lock.withLock(Effect.void, "k", { replicas: 2, replicasTimeout: "100 millis" }).pipe(
          Effect.provideService(LockKv.LockKv, kv)
        )
      )
      expect(Either.isLeft(refused) && refused.left._tag).toBe("ReplicationNotConfirmed")
      expect(yield* kv.get("k")).toEqual(Option.none())
    }), 30_000)

  it("mutual exclusion across processes through Sentinel: the counter is exact, fences increase", async () => {
    const namespace = uniqueNamespace("sn-xproc")
    const target = `sentinel:${group.name}:${group.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`
    const run = { processes: 3, fibers: 3, iterations: 8 }
    const results = await runCounterWorkers(target, namespace, run)
    const raw = new Redis(group.primary.port, "127.0.0.1")
    try {
      await expectExactCounter(results, raw, namespace, run)
    } finally {
      raw.disconnect()
    }
  }, 120_000)

  it.scopedLive(
    "the primary killed, its replica promoted: a lock acknowledged by the replica survives; fences only increase",
    () =>
      Effect.gen(function*() {
        const namespace = uniqueNamespace("sn-fail")
        const kv = yield* store(namespace)
        const before = yield* Effect.promise(() => group.primaryPort())
        expect(before).toBe(group.primary.port)

        // Held across the failover, acknowledged by the replica (WAIT 1); ttl 60 s: renewals need
        // a replica again, which takes the failover, a restart and a resync (longer on a loaded machine).
        const held = yield* Lock.acquire("survivor", { ttl: "60 seconds", replicas: 1 }).pipe(
          Effect.provideService(LockKv.LockKv, kv)
        )

        // Meanwhile fibers take turns on another key and write to a fenced resource.
        const resource = fencedResource()
        const outcomes: Array<string> = []
        const fenced = takeTurnsFenced("turns", resource, outcomes).pipe(Effect.provideService(LockKv.LockKv, kv))
        const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.fork(fenced))
        yield* Effect.sleep("1 second")

        group.primary.kill("SIGKILL")
        // Sentinels notice after 1 s, elect, and promote the replica.
        const deadline = Date.now() + 30_000
        while ((yield* Effect.promise(() => group.primaryPort())) === before && Date.now() < deadline) {
          yield* Effect.sleep("200 millis")
        }
        expect(yield* Effect.promise(() => group.primaryPort())).toBe(group.replica.port)
        const promotedInfo = yield* Effect.promise(() => redisCli(group.replica.port, ["INFO", "replication"]))
        expect(promotedInfo).toContain("role:master")

        // No replica is left: WAIT 1 cannot be satisfied, acquisitions are refused
        // (ReplicationNotConfirmed) until the old primary comes back, as the new
        // primary's replica (the sentinels reconfigure it).
        yield* Effect.promise(() => group.primary.restart())
        const linked = Date.now() + 30_000
        while (
          !(yield* Effect.promise(() => redisCli(group.replica.port, ["INFO", "replication"]))).includes(
            "connected_slaves:1"
          ) && Date.now() < linked
        ) {
          yield* Effect.sleep("200 millis")
        }

        // Sections go on on the new primary.
        const okBefore = outcomes.filter((o) => o === "ok").length
        const until = Date.now() + 20_000
        while (outcomes.filter((o) => o === "ok").length < okBefore + 5 && Date.now() < until) {
          yield* Effect.sleep("100 millis")
        }
        expect(outcomes.filter((o) => o === "ok").length, outcomes.join(" ")).toBeGreaterThanOrEqual(okBefore + 5)
        for (const fiber of fibers) yield* Fiber.interrupt(fiber)

        // The fenced resource never saw a fence go back: no stale holder wrote after a newer one.
        expect(resource.rejected).toEqual([])
        expect(resource.accepted.length).toBeGreaterThan(5)
        // Failures were the expected kinds only.
        for (const outcome of outcomes) {
          expect(["ok", "LockKvError", "LockLost", "LockNotAcquired", "ReplicationNotConfirmed"]).toContain(outcome)
        }

        // The lock acknowledged before the failover is on the new primary, still ours, still renewed.
        const direct = new Redis(group.replica.port, "127.0.0.1")
        try {
          expect(yield* Effect.promise(() => direct.get(`${namespace}:survivor`))).toBe(held.token)
        } finally {
          direct.disconnect()
        }
        const lost = yield* Effect.either(Effect.timeout(held.lost, "10 millis"))
        expect(Either.isLeft(lost)).toBe(true)
        yield* held.extend()
        expect(yield* held.release).toBe(true)
      }),
    90_000
  )
})
