/**
 * A child process for the cross-process semaphore tests.
 *
 * argv: <redisUrl> <namespace> <key> <mode> ...
 * - `rw <fibers> <iterations>`: fibers alternate reads and writes of a plain
 *   Redis counter under `ReadWriteLock`: a writer does a deliberately
 *   non-atomic read-modify-write and records its fence; a reader reads twice
 *   with a pause between, and records a violation when the value moved.
 * - `sem <fibers> <iterations> <limit>`: fibers take one permit each and count
 *   themselves in and out of a Redis counter (INCR/DECR); one above `limit`
 *   is recorded as a violation.
 * - `both <fibers> <iterations> <limit>`: `rw` on `<key>:rw`, then `sem` on
 *   `<key>:pool` (one process start for both).
 * - `hold <permits> <limit> <ttlMs> [holdMs]`: takes the permits, prints
 *   "held", and waits to be killed (a crashed holder), or, with `holdMs`,
 *   releases them after that long and exits.
 */
import { Duration, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { LockKv, ReadWriteLock, Semaphore } from "../../src/index.js"

const [url, namespace, key, mode, ...rest] = process.argv.slice(2)
if (mode === undefined) throw new Error("usage: semaphoreWorker <redisUrl> <namespace> <key> <mode> ...")

const raw = new Redis(url!, { lazyConnect: false })
const data = (name: string) => `${namespace}-data:${name}`
const redis = <A>(f: () => Promise<A>) => Effect.promise(f)
// A ttl well above the pauses of a loaded machine: these tests check exclusion, not renewal under starvation.
const options = { ttl: "5 seconds", wait: "60 seconds" } as const

const rw = (key: string, fibers: number, iterations: number) => {
  const write = Effect.scoped(Effect.gen(function*() {
    const handle = yield* ReadWriteLock.acquireWrite(key, options)
    const value = Number((yield* redis(() => raw.get(data("counter")))) ?? "0")
    yield* Effect.sleep("3 millis")
    yield* redis(() => raw.set(data("counter"), String(value + 1)))
    yield* redis(() => raw.rpush(data("fences"), String(handle.fence)))
  }))
  const read = ReadWriteLock.withRead(key, options)(Effect.gen(function*() {
    const before = yield* redis(() => raw.get(data("counter")))
    yield* Effect.sleep("2 millis")
    const after = yield* redis(() => raw.get(data("counter")))
    if (before !== after) yield* redis(() => raw.rpush(data("violations"), `read ${before} then ${after}`))
    yield* redis(() => raw.incr(data("reads")))
  }))
  const fiber = (f: number) =>
    Effect.forEach(Array.from({ length: iterations }), (_, i) => ((i + f) % 3 === 0 ? write : read), { discard: true })
  return Effect.all(Array.from({ length: fibers }, (_, f) => fiber(f)), { concurrency: "unbounded", discard: true })
}

const sem = (key: string, fibers: number, iterations: number, limit: number) => {
  const section = Effect.gen(function*() {
    const inside = yield* redis(() => raw.incr(data("inside")))
    if (inside > limit) yield* redis(() => raw.rpush(data("violations"), `${inside} inside`))
    yield* redis(() => raw.incr(data("sections")))
    yield* Effect.sleep("3 millis")
    yield* redis(() => raw.decr(data("inside")))
  })
  const fiber = Effect.forEach(
    Array.from({ length: iterations }),
    () => Semaphore.withPermits(section, key, 1, { ...options, limit }),
    { discard: true }
  )
  return Effect.all(Array.from({ length: fibers }, () => fiber), { concurrency: "unbounded", discard: true })
}

const hold = (permits: number, limit: number, ttlMs: number, holdMs: number | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const handle = yield* Semaphore.acquire(key!, permits, { limit, ttl: Duration.millis(ttlMs) })
    yield* Effect.sync(() => process.stdout.write(`held ${handle.fence}\n`))
    if (holdMs === undefined) return yield* Effect.never
    yield* Effect.sleep(Duration.millis(holdMs))
  }))

const args = rest.map(Number)
const program = mode === "rw"
  ? rw(key!, args[0]!, args[1]!)
  : mode === "sem"
  ? sem(key!, args[0]!, args[1]!, args[2]!)
  : mode === "both"
  ? Effect.zipRight(rw(`${key}:rw`, args[0]!, args[1]!), sem(`${key}:pool`, args[0]!, args[1]!, args[2]!))
  : hold(args[0]!, args[1]!, args[2]!, args[3])

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layerRedis({ url: url!, namespace })))))
  .then(() => raw.quit())
  .then(() => process.exit(0), (error) => {
    console.error(String(error))
    process.exit(1)
  })
