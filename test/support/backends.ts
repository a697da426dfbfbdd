/**
 * The backends every behavioural suite runs against, so they cannot drift apart.
 * Memory runs under `TestClock` (time moves only when the test says so); Redis
 * runs in real time against the test run's redis-server, short TTLs.
 */
import { it } from "@effect/vitest"
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
}

export const uniqueNamespace = (prefix = "t"): string => `${prefix}-${randomUUID().slice(0, 8)}`

const yieldMany = Effect.repeatN(Effect.yieldNow(), 20)

export const memory: Backend = {
  name: "memory",
  layer: (namespace) => Layer.scoped(LockKv.LockKv, LockKv.makeMemory({ namespace: namespace ?? uniqueNamespace() })),
  // TestServices are provided by it.effect itself; the suites need nothing more.
  test: it.effect as typeof it.live,
  elapse: (millis) => Effect.zipRight(yieldMany, Effect.zipRight(TestClock.adjust(Duration.millis(millis)), yieldMany)),
  settle: yieldMany
}

export const redis: Backend = {
  name: "redis",
  layer: (namespace) => LockKv.layerRedis({ url: redisUrl(), namespace: namespace ?? uniqueNamespace() }),
  test: it.live,
  elapse: (millis) => Effect.sleep(Duration.millis(millis)),
  settle: Effect.sleep("30 millis")
}

export const backends: ReadonlyArray<Backend> = [memory, redis]
