/**
 * A soak worker process: `fibers` fibers take locks on random keys, over and
 * over, until SIGTERM (or a SIGKILL from the driver). Inside each section a
 * Redis-side marker detects overlaps: entering sets `<ns>-marker:<key>` to
 * `<pid>:<token>` and reports the previous value if there was one (someone
 * else is, or was, inside); leaving deletes the marker only if it is still
 * ours. The driver tells a stale marker (its owner was SIGKILLed inside a
 * section) from a real overlap. Counters go to the hash `<ns>-soak:stats`.
 *
 * argv: <redisUrl> <namespace> <keys> <fibers> <ttlMs> [unsafe]
 *
 * With `unsafe` (a self-check of the detector, never a library setting) the
 * sections ignore the loss of their lock and there is no auto-extension, so the
 * long ones overrun their ttl: the driver must then report violations.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import { Redis } from "ioredis"
import { monitorEventLoopDelay } from "node:perf_hooks"
import * as Lock from "../../src/Lock.js"
import * as LockKv from "../../src/LockKv.js"

const [url, namespace, keysArg, fibersArg, ttlArg, unsafeArg] = process.argv.slice(2)
const unsafe = unsafeArg === "unsafe"
if (ttlArg === undefined) throw new Error("usage: worker <redisUrl> <namespace> <keys> <fibers> <ttlMs>")
const keys = Array.from({ length: Number(keysArg) }, (_, i) => `key-${i}`)
const ttl = Duration.millis(Number(ttlArg))
const pid = process.pid

const raw = new Redis(url!, { maxRetriesPerRequest: 3 })
raw.on("error", () => {})
const stats = `${namespace}-soak:stats`
const marker = (key: string) => `${namespace}-marker:${key}`
const lastFence = (key: string) => `${namespace}-fence:${key}`

/** KEYS: marker, last entered fence. ARGV: owner, fence. → [previous owner or nil, last fence]. */
const enterScript = `
local previous = redis.call("GET", KEYS[1])
redis.call("SET", KEYS[1], ARGV[1])
local last = tonumber(redis.call("GET", KEYS[2]) or "0")
if tonumber(ARGV[2]) > last then redis.call("SET", KEYS[2], ARGV[2]) end
return { previous, last }
`
/** KEYS: marker. ARGV: owner. → 1 when the marker was still ours (and is gone now). */
const leaveScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
`

const count = (field: string) => Effect.promise(() => raw.hincrby(stats, field, 1)).pipe(Effect.asVoid)
const report = (list: string, event: Record<string, unknown>) =>
  Effect.promise(() => raw.rpush(`${namespace}-soak:${list}`, JSON.stringify({ ...event, pid })))

/** How long a section lasts: mostly short, sometimes longer than the ttl (only renewals keep it). */
const sectionLength = Effect.map(
  Random.next,
  (r) => r < 0.7 ? r * 30 : r < 0.95 ? 50 + r * 100 : Duration.toMillis(ttl) * (1.2 + (r - 0.95) * 10)
)

const section = (key: string, handle: Lock.Handle) =>
  Effect.gen(function*() {
    const owner = `${pid}:${handle.token}`
    const [previous, last] = (yield* Effect.promise(() =>
      raw.eval(enterScript, 2, marker(key), lastFence(key), owner, String(handle.fence))
    )) as [string | null, number]
    if (previous !== null) {
      yield* report("suspects", { key, owner: previous, at: Date.now(), fence: handle.fence })
    }
    if (handle.fence <= last) {
      yield* report("fenceRegressions", { key, fence: handle.fence, last, at: Date.now() })
    }
    const length = yield* sectionLength
    if (length > Duration.toMillis(ttl)) {
      yield* count("longSections")
    }
    yield* Effect.sleep(Duration.millis(length)).pipe(
      Effect.ensuring(
        Effect.promise(() =>
          raw.eval(leaveScript, 1, marker(key), owner)
        ).pipe(
          Effect.flatMap((ours) => ours === 1 ? Effect.void : report("exitMismatches", { key, owner, at: Date.now() }))
        )
      )
    )
  })

const oneTurn = Effect.gen(function*() {
  const key = keys[yield* Random.nextIntBetween(0, keys.length)]!
  yield* Effect.scoped(Effect.gen(function*() {
    const handle = yield* Lock.acquire(key, { ttl, wait: "3 seconds", autoExtend: !unsafe })
    yield* count("acquired")
    // What withLock does: the section races the loss of the lock.
    yield* unsafe
      ? section(key, handle)
      : Effect.raceFirst(section(key, handle), Effect.flatMap(handle.lost, Effect.fail))
  })).pipe(
    Effect.catchTags({
      LockNotAcquired: () => count("notAcquired"),
      LockLost: () => count("lost"),
      LockKvError: () => count("storeErrors"),
      InvalidArgument: () => count("invalid")
    })
  )
})

const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()

/** The worst event-loop delay seen so far, for the driver's report (a SIGKILLed worker cannot send it at exit). */
const reportLag = Effect.promise(() =>
  raw.hset(`${namespace}-soak:lag`, String(pid), JSON.stringify({ max: lag.max / 1e6, p99: lag.percentile(99) / 1e6 }))
).pipe(Effect.zipRight(Effect.sleep("1 second")), Effect.forever)

const program = Effect.gen(function*() {
  yield* Effect.forkDaemon(reportLag)
  const fibers = yield* Effect.forEach(
    Array.from({ length: Number(fibersArg) }),
    () => Effect.fork(Effect.forever(oneTurn))
  )
  process.stdout.write(`${JSON.stringify({ event: "ready", pid })}\n`)
  yield* Fiber.joinAll(fibers)
}).pipe(Effect.provide(Layer.orDie(LockKv.layerRedis({ url: url!, namespace }))))

const main = Effect.runFork(program)
process.once("SIGTERM", () => {
  Effect.runPromise(Fiber.interrupt(main))
    .finally(() => process.exit(0))
})
