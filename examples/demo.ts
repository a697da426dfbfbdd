/**
 * `npm start`: several fibers contend for one lock and take turns. Runs in memory
 * by default; set REDIS_URL (or REDIS_HOST) and the same program runs on Redis.
 */
import { Console, Effect, Layer } from "effect"
import { Lock, LockKv } from "../src/index.js"

const worker = (name: string) =>
  Effect.gen(function*() {
    for (let round = 1; round <= 2; round++) {
      yield* Lock.withLock("demo:report", { ttl: "5 seconds", wait: "10 seconds" })(
        Effect.gen(function*() {
          yield* Console.log(`${name} holds the lock (round ${round})`)
          yield* Effect.sleep("50 millis")
          yield* Console.log(`${name} releases it`)
        })
      )
    }
  })

const program = Effect.gen(function*() {
  const kv = yield* LockKv.LockKv
  yield* Console.log(`effect-lock demo on the ${kv.backend} backend (namespace "${kv.namespace}")`)
  yield* Effect.all(["fiber-1", "fiber-2", "fiber-3"].map(worker), { concurrency: "unbounded" })

  const skipped = yield* Lock.withLock("demo:busy")(
    Lock.tryWithLock("demo:busy")(Effect.succeed("ran"))
  )
  yield* Console.log(`tryWithLock while the lock is held elsewhere: ${skipped._tag === "None" ? "skipped" : "ran"}`)
  yield* Console.log("done")
})

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layer)))).catch((error) => {
  console.error(String(error))
  process.exitCode = 1
})
