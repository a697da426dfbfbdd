// Semaphore and read-write lock. Runs in memory; with REDIS_URL set, on Redis.
import { Console, Effect, Layer } from "effect"
import { LockKv, ReadWriteLock, Semaphore } from "../src/index.js"

// At most 3 exports at a time, across every process that shares the store.
let running = 0
let most = 0
const exportOne = (n: number) =>
  Effect.gen(function*() {
    most = Math.max(most, ++running)
    yield* Effect.sleep("20 millis")
    running--
  }).pipe(
    Semaphore.withPermits("exports", 1, { limit: 3, ttl: "30 seconds" }),
    Effect.tap(() => Console.log(`export ${n} done`))
  )

// Any number of readers at once, or one writer, whose fence the resource can check.
const readConfig = ReadWriteLock.withRead(Console.log("reading the config"), "config")
const writeConfig = Effect.scoped(
  Effect.gen(function*() {
    const lock = yield* ReadWriteLock.acquireWrite("config", { ttl: "10 seconds" })
    yield* Console.log(`writing the config with fence ${lock.fence}`)
  })
)

const program = Effect.gen(function*() {
  yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], exportOne, { concurrency: "unbounded", discard: true })
  yield* Console.log(`at most ${most} exports ran at once`)
  yield* Effect.all([readConfig, readConfig, writeConfig, readConfig], { concurrency: "unbounded" })
})

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layer))))
