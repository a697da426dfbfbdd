/**
 * A child process for the cross-process tests: several fibers each run
 * `iterations` critical sections on one key. Inside a section it does a
 * deliberately non-atomic read-modify-write of a plain Redis counter and appends
 * the lock's fence to a list; every `slowEvery`-th section outlives the ttl, so
 * only auto-extension keeps it safe.
 *
 * argv: <redisUrl> <namespace> <key> <fibers> <iterations> <ttlMs> <slowEvery> <slowMs>
 * (`cluster:host:port,host:port` instead of a URL: a Redis Cluster;
 * `sentinel:<name>:host:port,host:port`: the primary those sentinels name).
 */
import { Duration, Effect, Layer } from "effect"
import { Cluster, Redis } from "ioredis"
import { Lock, LockKv } from "../../src/index.js"

const [url, namespace, key, fibers, iterations, ttlMs, slowEvery, slowMs] = process.argv.slice(2)
if (slowMs === undefined) {
  throw new Error("usage: lockWorker <redisUrl> <namespace> <key> <fibers> <iterations> <ttlMs> <slowEvery> <slowMs>")
}

const addresses = (list: string) =>
  list.split(",").map((address) => {
    const [host, port] = address.split(":")
    return { host: host!, port: Number(port) }
  })
const clusterNodes = url!.startsWith("cluster:") ? addresses(url!.slice("cluster:".length)) : undefined
const sentinel = url!.startsWith("sentinel:")
  ? (() => {
    const [, name, list] = /^sentinel:([^:]+):(.*)$/.exec(url!)!
    return { name: name!, sentinels: addresses(list!) }
  })()
  : undefined
const raw = clusterNodes !== undefined
  ? new Cluster(clusterNodes)
  : sentinel !== undefined
  ? new Redis({ sentinels: sentinel.sentinels, name: sentinel.name })
  : new Redis(url!, { lazyConnect: false })
const storeOptions = clusterNodes !== undefined
  ? { cluster: { nodes: clusterNodes }, namespace }
  : sentinel !== undefined
  ? { sentinel, namespace }
  : { url: url!, namespace }
const counterKey = `${namespace}-data:counter`
const fencesKey = `${namespace}-data:fences`

let sections = 0
const section = (fence: number) =>
  Effect.gen(function*() {
    const n = ++sections
    const value = Number((yield* Effect.promise(() => raw.get(counterKey))) ?? "0")
    yield* Effect.sleep(Duration.millis(n % Number(slowEvery) === 0 ? Number(slowMs) : 2))
    yield* Effect.promise(() => raw.set(counterKey, String(value + 1)))
    yield* Effect.promise(() => raw.rpush(fencesKey, String(fence)))
  })

const fiber = Effect.forEach(
  Array.from({ length: Number(iterations) }),
  () =>
    Effect.scoped(
      Effect.flatMap(
        Lock.acquire(key!, { ttl: Duration.millis(Number(ttlMs)), wait: "60 seconds" }),
        (handle) => Effect.raceFirst(section(handle.fence), Effect.flatMap(handle.lost, Effect.fail))
      )
    ),
  { discard: true }
)

const program = Effect.all(Array.from({ length: Number(fibers) }, () => fiber), {
  concurrency: "unbounded",
  discard: true
})

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layerRedis(storeOptions)))))
  .then(() => raw.quit())
  .then(() => process.exit(0), (error) => {
    console.error(String(error))
    process.exit(1)
  })
