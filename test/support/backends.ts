/**
 * The backends every behavioural suite runs against, so they cannot drift apart.
 * Memory runs under `TestClock` (time moves only when the test says so); Redis
 * runs in real time against the test run's redis-server, short TTLs.
 */
import { it, layer, type Vitest } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import { randomUUID } from "node:crypto"
import { LockKv } from "../../src/index.js"
import { redisUrl } from "./redisUrl.js"

export interface Backend {
  readonly name: "memory" | "redis"
  /** A fresh store under a namespace of its own. */
  readonly layer: (namespace?: string) => Layer.Layer<LockKv.LockKv, LockKv.LockKvError>
  /** `it.effect` (TestClock) for memory, `it.live` for Redis. */
  readonly test: typeof it.live
  /** Lets `millis` of store time pass: TestClock.adjust for memory, a real sleep for Redis. */
  readonly elapse: (millis: number) => Effect.Effect<void>
  /** Lets forked fibers reach their next suspension point (and Redis round trips complete). */
  readonly settle: Effect.Effect<void>
  /**
   * A describe block whose tests share one store (`it.layer`), so each test uses
   * keys of its own. `it.effect` runs under one TestClock for the whole block
   * (memory: the store's background fibers and every test see the same time) or
   * in real time (Redis: one connection and subscriber for the block).
   */
  readonly block: (name: string, body: (it: Vitest.MethodsNonLive<LockKv.LockKv>) => void) => void
}

export const uniqueNamespace = (prefix = "t"): string => `${prefix}-${randomUUID().slice(0, 8)}`

const yieldMany = Effect.repeatN(Effect.yieldNow(), 20)

export const memory: Backend = {
  name: "memory",
  layer: (namespace) => Layer.scoped(LockKv.LockKv, LockKv.makeMemory({ namespace: namespace ?? uniqueNamespace() })),
  // TestServices are provided by it.effect itself; the suites need nothing more.
  test: it.effect as typeof it.live,
  elapse: (millis) => Effect.zipRight(yieldMany, Effect.zipRight(TestClock.adjust(Duration.millis(millis)), yieldMany)),
  settle: yieldMany,
  block: (name, body) => layer(memory.layer())(name, body)
}

export const redis: Backend = {
  name: "redis",
  layer: (namespace) => LockKv.layerRedis({ url: redisUrl(), namespace: namespace ?? uniqueNamespace() }),
  test: it.live,
  elapse: (millis) => Effect.sleep(Duration.millis(millis)),
  settle: Effect.sleep("30 millis"),
  // Without TestServices, `it.effect` is live; the method sets are the same.
  block: (name, body) =>
    layer(redis.layer(), { excludeTestServices: true, timeout: "30 seconds" })(
      name,
      body as unknown as (it: Vitest.MethodsNonLive<LockKv.LockKv, true>) => void
    )
}

export const backends: ReadonlyArray<Backend> = [memory, redis]
