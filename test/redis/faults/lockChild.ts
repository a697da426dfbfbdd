/**
 * A child process for the crash tests: it holds or waits for one lock on Redis
 * and reports on stdout, one JSON object a line, until it is killed.
 *
 * argv: hold <redisUrl> <namespace> <key> <ttlMs>
 *         acquires with wait 0, prints {"event":"acquired","before":<ms>,"fence":n},
 *         then holds (renewing) forever.
 *       wait <redisUrl> <namespace> <key> <ttlMs>
 *         prints {"event":"ready"}, then waits (up to 60 s) for the lock and
 *         prints {"event":"acquired",...} if it ever gets it.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Lock from "../../../src/Lock.js"
import * as LockKv from "../../../src/LockKv.js"

const [mode, url, namespace, key, ttlMs] = process.argv.slice(2)
if (ttlMs === undefined || (mode !== "hold" && mode !== "wait")) {
  throw new Error("usage: lockChild hold|wait <redisUrl> <namespace> <key> <ttlMs>")
}

const say = (event: Record<string, unknown>) => Effect.sync(() => process.stdout.write(`${JSON.stringify(event)}\n`))

const program = Effect.gen(function*() {
  yield* say({ event: "ready", pid: process.pid })
  const before = Date.now()
  const handle = yield* Lock.acquire(key!, {
    ttl: Duration.millis(Number(ttlMs)),
    wait: mode === "hold" ? 0 : Duration.seconds(60)
  })
  yield* say({ event: "acquired", before, fence: handle.fence })
  const lost = yield* handle.lost
  yield* say({ event: "lost", message: lost.message })
}).pipe(Effect.scoped)

Effect.runPromise(program.pipe(Effect.provide(Layer.orDie(LockKv.layerRedis({ url: url!, namespace })))))
  .then(() => process.exit(0), (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  })
