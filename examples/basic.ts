// The combinators in one program. Runs in memory; with REDIS_URL set, on Redis.
import { Console, Effect, Layer, Option } from "effect"
import { Lock, LockKv } from "../src/index.js"

// withLock: wait (up to `wait`) for the lock, run the effect, release.
const nightlyReport = Console.log("building the nightly report").pipe(
  Lock.withLock("report:nightly", { ttl: "30 seconds", wait: "5 seconds" })
)

// tryWithLock: one try; Option.none() when someone else holds the lock.
const cleanupIfIdle = Lock.tryWithLock("cleanup", { ttl: "1 minute" })(
  Console.log("cleaning up")
)

// acquire: a scoped handle with the fencing token, released with the Scope.
const writeWithFence = Effect.scoped(
  Effect.gen(function*() {
    const lock = yield* Lock.acquire("invoice:42", { ttl: "10 seconds" })
    yield* Console.log(`holding ${lock.key} with fence ${lock.fence}`)
    return lock.fence
  })
)

const program = Effect.gen(function*() {
  yield* nightlyReport
  const cleaned = yield* cleanupIfIdle
  yield* Console.log(Option.isSome(cleaned) ? "cleanup ran" : "cleanup skipped: busy elsewhere")
  const first = yield* writeWithFence
  const second = yield* writeWithFence
  yield* Console.log(`fences increase: ${second > first}`)
}).pipe(
  // Every failure is a tagged error you can handle by name.
  Effect.catchTags({
    LockNotAcquired: (e) => Console.error(`busy: ${e.key}`),
    LockLost: (e) => Console.error(`lost ${e.key} while working`),
    LockKvError: (e) => Console.error(`store failure in ${e.operation}: ${e.message}`),
    InvalidArgument: (e) => Console.error(`bad ${e.argument}: ${e.message}`)
  })
)

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layer))))
