/**
 * The Redis contenders. Each `make` opens the client's own connection(s) and
 * does every one-time setup (script load, layer build) outside the timed loop;
 * `runLoop` runs the shared loop of `../lib/loop.ts` with the library's lock.
 *
 * Every library runs with its own default TTL except redlock, which has none
 * (30 s is used, effect-lock's default). Each acquisition uses a fresh random
 * owner token, as every library does.
 */
import { DistributedSemaphore, RedisBacking } from "effect-distributed-lock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import { Mutex } from "redis-semaphore"
import Redlock from "redlock"
import type { LockKv as LockKvTypes } from "../../src/index.js"
import * as scripts from "../../src/internal/redis/scripts.js"
import type { Baseline } from "../lib/baseline.js"
import { current, type EffectLockModule } from "../lib/effectLock.js"
import { type EffectLock, effectLoop, type LoopSpec, type PromiseLock, promiseLoop } from "../lib/loop.js"
import { sleep } from "../lib/time.js"

export interface RedisClient {
  readonly runLoop: (spec: LoopSpec) => Promise<void>
  readonly close: () => Promise<void>
}

export interface RedisContender {
  /** Stable id, used by `--only`-style filters, JSON and the worker protocol. */
  readonly id: string
  readonly label: string
  /** "default" settings or the library's fastest retry setting. */
  readonly setting: "default" | "fast" | "-"
  readonly uncontended: boolean
  readonly contended: boolean
  readonly make: (url: string, key: string) => Promise<RedisClient>
}

const ttlMillis = 30_000

const connect = async (url: string, name: string): Promise<Redis> => {
  const client = new Redis(url, { lazyConnect: true, connectionName: name })
  await client.connect()
  return client
}

const quit = (client: Redis): Promise<void> => client.quit().then(() => undefined, () => client.disconnect())

const promiseClient = (lock: PromiseLock, close: () => Promise<void>): RedisClient => ({
  runLoop: (spec) => promiseLoop(lock, spec),
  close
})

/** The same compare-and-delete every library uses for release. */
const compareAndDelete = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

/** The floor: SET NX PX, then EVALSHA compare-and-delete. Contended: retry every 1 ms. */
const floor: RedisContender = {
  id: "floor",
  label: "floor: SET NX PX + EVALSHA del",
  setting: "-",
  uncontended: true,
  contended: true,
  make: async (url, key) => {
    const redis = await connect(url, "bench-floor")
    const sha = String(await redis.script("LOAD", compareAndDelete))
    const lock: PromiseLock = async (section) => {
      const token = randomUUID()
      while ((await redis.set(key, token, "PX", ttlMillis, "NX")) !== "OK") await sleep(1)
      try {
        await section()
      } finally {
        await redis.evalsha(sha, 1, key, token)
      }
    }
    return promiseClient(lock, () => quit(redis))
  }
}

/** One round trip: the network + server floor under any lock. */
const ping: RedisContender = {
  id: "ping",
  label: "PING (1 round trip)",
  setting: "-",
  uncontended: true,
  contended: false,
  make: async (url) => {
    const redis = await connect(url, "bench-ping")
    const lock: PromiseLock = async (section) => {
      await redis.ping()
      await section()
    }
    return promiseClient(lock, () => quit(redis))
  }
}

/**
 * Reference, not a library: effect-lock's own acquire and release scripts
 * (fence, fair queue, hand-off) sent by bare ioredis from a Promise loop. Beside
 * the floor it shows what the scripts cost in Redis; beside effect-lock, what
 * the Effect runtime and the lock engine add.
 */
const scriptsOnly: RedisContender = {
  id: "ref:scripts",
  label: "ref: effect-lock's scripts, bare ioredis",
  setting: "-",
  uncontended: true,
  contended: false,
  make: async (url, key) => {
    const redis = await connect(url, "bench-ref-scripts")
    const keys = scripts.lockKeys(`bench-ref:${key}`)
    const acquireSha = String(await redis.script("LOAD", scripts.lockAcquire.lua))
    const releaseSha = String(await redis.script("LOAD", scripts.lockRelease.lua))
    const lock: PromiseLock = async (section) => {
      const token = randomUUID()
      // place 0: one try, as an uncontended withLock's first try (which is all it needs).
      const [acquired] = (await redis.evalsha(acquireSha, 5, ...keys, token, ttlMillis, 0, "bench-ref")) as [number]
      if (acquired !== 1) throw new Error("ref:scripts: the key was held")
      try {
        await section()
      } finally {
        await redis.evalsha(releaseSha, 5, ...keys, token, key)
      }
    }
    return promiseClient(lock, () => quit(redis))
  }
}

/**
 * Reference, not a library: the floor's two commands, each awaited as an
 * `Effect.async` (on ioredis' Promise) in an Effect loop: what awaiting plain
 * ioredis commands in Effect costs. Not a bound: effect-lock's store sends its
 * commands more cheaply and has measured faster than this row.
 */
const floorInEffect: RedisContender = {
  id: "ref:effect-floor",
  label: "ref: floor inside Effect (Effect.async)",
  setting: "-",
  uncontended: true,
  contended: false,
  make: async (url, key) => {
    const redis = await connect(url, "bench-ref-effect-floor")
    const sha = String(await redis.script("LOAD", compareAndDelete))
    const command = <A>(send: () => Promise<A>) =>
      Effect.async<A, Error>((resume) => {
        send().then((reply) => resume(Effect.succeed(reply)), (error) => resume(Effect.fail(error as Error)))
      })
    const lock: EffectLock<never> = (section) =>
      Effect.suspend(() => {
        const token = randomUUID()
        return command(() => redis.set(`${key}:ref`, token, "PX", ttlMillis, "NX")).pipe(
          Effect.filterOrFail((reply) => reply === "OK", () => new Error("ref:effect-floor: the key was held")),
          Effect.zipRight(
            Effect.ensuring(section, Effect.ignore(command(() => redis.evalsha(sha, 1, `${key}:ref`, token))))
          )
        )
      })
    return {
      runLoop: (spec) => Effect.runPromise(effectLoop(lock, spec)),
      close: () => quit(redis)
    }
  }
}

/**
 * Reference, not a library: the least a fair lock can do, in bare ioredis
 * with Promises. Acquire is one script: `SET NX PX`, or join a FIFO list.
 * Release is one script: pop the next waiter, make it the owner and `PUBLISH`
 * to that waiter's client only (a token starts with its client's id, and each
 * client subscribes to its own channel in `make`); a waiter of this process is
 * told at once from the reply. No fence, no TTL for queue places, no
 * dead-waiter skipping, no fallback: it is only sound in this bench. Under
 * contention every acquisition is a hand-off from the releaser to the oldest
 * waiter, so its acquisitions/s are about the most any lock that never lets
 * the releaser barge can reach on this machine.
 */
const fairAcquire = `if redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2], "NX") then return 1 end
redis.call("RPUSH", KEYS[2], ARGV[1]) return 0`
const fairRelease = `if redis.call("GET", KEYS[1]) ~= ARGV[1] then return false end
local nextOwner = redis.call("LPOP", KEYS[2])
if not nextOwner then redis.call("DEL", KEYS[1]) return false end
redis.call("SET", KEYS[1], nextOwner, "PX", ARGV[2])
redis.call("PUBLISH", ARGV[3] .. string.match(nextOwner, "^[^.]+"), nextOwner) return nextOwner`
/** Grants told in process, by token (the fair floor's waiters of this process). */
const fairWaiters = new Map<string, () => void>()

const fairFloor: RedisContender = {
  id: "ref:fair-floor",
  label: "ref: fair hand-off floor, bare ioredis",
  setting: "-",
  uncontended: false,
  contended: true,
  make: async (url, key) => {
    const redis = await connect(url, "bench-ref-fair")
    const subscriber = await connect(url, "bench-ref-fair-sub")
    const keys = [`bench-fair:{${key}}`, `bench-fair:{${key}}:queue`] as const
    const channels = `bench-fair:{${key}}:granted:`
    const client = randomUUID()
    const acquireSha = String(await redis.script("LOAD", fairAcquire))
    const releaseSha = String(await redis.script("LOAD", fairRelease))
    subscriber.on("message", (_channel: string, token: string) => fairWaiters.get(token)?.())
    await subscriber.subscribe(channels + client)
    const lock: PromiseLock = async (section) => {
      const token = `${client}.${randomUUID()}`
      // Listed before the try: a grant can arrive before the try's reply.
      const turn = new Promise<void>((resolve) =>
        fairWaiters.set(token, () => {
          fairWaiters.delete(token)
          resolve()
        })
      )
      const acquired = await redis.evalsha(acquireSha, 2, ...keys, token, ttlMillis)
      if (acquired === 1) fairWaiters.delete(token)
      else await turn
      try {
        await section()
      } finally {
        const next = await redis.evalsha(releaseSha, 2, ...keys, token, ttlMillis, channels)
        if (typeof next === "string") fairWaiters.get(next)?.()
      }
    }
    return promiseClient(lock, async () => {
      await quit(subscriber)
      await quit(redis)
    })
  }
}

/** redlock 5 (single client), `using` (acquire, auto-extend, release), as the README shows. */
const redlock = (setting: "default" | "fast"): RedisContender => ({
  id: `redlock@${setting}`,
  label: setting === "default" ? "redlock 5β using (defaults)" : "redlock 5β using (retry 1ms, no jitter)",
  setting,
  uncontended: setting === "default",
  contended: true,
  make: async (url, key) => {
    const redis = await connect(url, `bench-redlock-${setting}`)
    const instance = new Redlock(
      [redis],
      setting === "default" ? {} : { retryDelay: 1, retryJitter: 0, retryCount: -1 }
    )
    // Redlock emits every failed vote (ResourceLockedError) as "error": without a listener that throws.
    instance.on("error", () => {})
    const lock: PromiseLock = (section) => instance.using([key], ttlMillis, () => section())
    return promiseClient(lock, () => quit(redis))
  }
})

/** redis-semaphore `Mutex`: a new Mutex per acquisition, as each holder has its own identifier. */
const redisSemaphore = (setting: "default" | "fast"): RedisContender => ({
  id: `redis-semaphore@${setting}`,
  label: setting === "default" ? "redis-semaphore Mutex (defaults)" : "redis-semaphore Mutex (retry 1ms)",
  setting,
  uncontended: setting === "default",
  contended: true,
  make: async (url, key) => {
    const redis = await connect(url, `bench-redis-semaphore-${setting}`)
    const options = setting === "default" ? {} : { retryInterval: 1 }
    const lock: PromiseLock = async (section) => {
      const mutex = new Mutex(redis, key, options)
      await mutex.acquire()
      try {
        await section()
      } finally {
        await mutex.release()
      }
    }
    return promiseClient(lock, () => quit(redis))
  }
})

/**
 * effect-distributed-lock: `DistributedSemaphore.make(key, { limit: 1 })` once,
 * `withPermits(1)` per cycle. By default its Redis backing waits by polling
 * (every 100 ms) raced with a pub/sub subscription, which opens a duplicate
 * connection for every waiting acquisition (even an uncontended one starts it).
 * Its fastest setting polls every 1 ms without pub/sub: with pub/sub left on, a
 * 1 ms poll measured about 4× slower under contention (connection churn).
 */
const effectDistributedLock = (setting: "default" | "fast"): RedisContender => ({
  id: `effect-distributed-lock@${setting}`,
  label: setting === "default"
    ? "effect-distributed-lock (defaults)"
    : "effect-distributed-lock (poll 1ms, no pub/sub)",
  setting,
  uncontended: setting === "default",
  contended: true,
  make: async (url, key) => {
    const redis = await connect(url, `bench-edl-${setting}`)
    const backing = RedisBacking.layer(
      redis,
      setting === "default"
        ? { keyPrefix: "bench-edl:" }
        : { keyPrefix: "bench-edl:", pushBasedAcquireEnabled: false }
    )
    const semaphore = await Effect.runPromise(
      DistributedSemaphore.make(
        key,
        setting === "default" ? { limit: 1 } : { limit: 1, acquireRetryPolicy: Schedule.spaced("1 millis") }
      ).pipe(Effect.provide(backing))
    )
    const lock: EffectLock<never> = (section) => semaphore.withPermits(1)(section)
    return {
      runLoop: (spec) => Effect.runPromise(effectLoop(lock, spec)),
      close: () => quit(redis)
    }
  }
})

/** Ids of the baseline's effect-lock contenders (`--baseline`): `effect-lock@baseline:withLock`. */
export const baselineIdPrefix = "effect-lock@baseline:"

/**
 * effect-lock on `LockKv.layerRedis`, built once per client (its own
 * connections): the working tree's build, or with `baseline` that ref's.
 */
const effectLock = (form: "withLock" | "acquire", baseline?: Baseline): RedisContender => {
  const { Lock, LockKv }: EffectLockModule = baseline?.module ?? current
  const name = baseline === undefined ? "effect-lock" : `effect-lock @${baseline.ref}`
  return {
    id: baseline === undefined ? `effect-lock:${form}` : `${baselineIdPrefix}${form}`,
    label: form === "withLock" ? `${name} Lock.withLock` : `${name} scoped Lock.acquire`,
    setting: "default",
    uncontended: true,
    contended: form === "withLock",
    make: async (url, key) => {
      const runtime = ManagedRuntime.make(
        LockKv.layerRedis({ url, namespace: "bench" }).pipe(Layer.orDie)
      )
      await runtime.runPromise(LockKv.LockKv)
      const lock: EffectLock<LockKvTypes.LockKv> = form === "withLock"
        ? (section) => Lock.withLock(section, key)
        : (section) => Effect.scoped(Effect.zipRight(Lock.acquire(key), section))
      return {
        runLoop: (spec) => runtime.runPromise(effectLoop(lock, spec)),
        close: () => runtime.dispose()
      }
    }
  }
}

/** Every Redis contender, in table order. */
export const redisContenders: ReadonlyArray<RedisContender> = [
  floor,
  ping,
  scriptsOnly,
  floorInEffect,
  fairFloor,
  redlock("default"),
  redlock("fast"),
  redisSemaphore("default"),
  redisSemaphore("fast"),
  effectDistributedLock("default"),
  effectDistributedLock("fast"),
  effectLock("withLock"),
  effectLock("acquire")
]

/** The baseline's twin of a working-tree effect-lock contender, if it has one. */
const baselineTwin = (id: string, baseline: Baseline): RedisContender | undefined =>
  id === "effect-lock:withLock" ?
    effectLock("withLock", baseline)
    : id === "effect-lock:acquire" ?
    effectLock("acquire", baseline)
    : undefined

/**
 * The contenders a run keeps: those whose id starts with one of `prefixes` (all
 * without any). With a baseline, each effect-lock contender kept is followed by
 * its baseline twin, so that the two run next to each other in every round.
 */
export const selectContenders = (
  prefixes: ReadonlyArray<string>,
  baseline?: Baseline
): ReadonlyArray<RedisContender> => {
  const unknown = prefixes.filter((p) => !redisContenders.some((c) => c.id.startsWith(p)))
  if (unknown.length > 0) {
    throw new Error(
      `--contenders: no contender id starts with ${unknown.map((p) => JSON.stringify(p)).join(", ")} ` +
        `(ids: ${redisContenders.map((c) => c.id).join(", ")})`
    )
  }
  const kept = prefixes.length === 0
    ? redisContenders
    : redisContenders.filter((c) => prefixes.some((p) => c.id.startsWith(p)))
  if (baseline === undefined) return kept
  return kept.flatMap((c) => {
    const twin = baselineTwin(c.id, baseline)
    return twin === undefined ? [c] : [c, twin]
  })
}

export const findContender = (id: string, baseline?: Baseline): RedisContender => {
  const found = redisContenders.find((c) => c.id === id) ??
    (baseline !== undefined && id.startsWith(baselineIdPrefix)
      ? baselineTwin(`effect-lock:${id.slice(baselineIdPrefix.length)}`, baseline)
      : undefined)
  if (found === undefined) {
    throw new Error(
      `unknown contender ${id}` + (id.startsWith(baselineIdPrefix) ? " (a baseline contender without a baseline)" : "")
    )
  }
  return found
}
