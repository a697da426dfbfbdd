/**
 * One client process of the `cluster` scenario: `node --import tsx
 * bench/cluster/worker.ts <json>`. Builds one effect-lock store (the built
 * package, as users run it) on the cluster named in the argument, warms up,
 * says "ready" and waits for the parent's `go <startAt>` line; from `startAt`
 * (a wall-clock instant shared by every worker) it runs
 * `concurrency` fibers, each taking `Lock.withLock(Effect.void)` on random
 * keys out of `keys` distinct ones, for `durationMs`. Prints one JSON line:
 * the acquisitions in the window, failures and the process's CPU time.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createInterface } from "node:readline"
import { Lock, LockKv } from "../lib/effectLock.js"
import { cpuMicros, sleep } from "../lib/time.js"

interface Args {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>
  readonly namespace: string
  readonly concurrency: number
  readonly keys: number
  readonly warmupMs: number
  readonly durationMs: number
}

const args = JSON.parse(process.argv[2]!) as Args
let counting = false
let acquisitions = 0
let failures = 0

const cycle = Effect.suspend(() => {
  const key = `k${Math.floor(Math.random() * args.keys)}`
  return Lock.withLock(Effect.void, key, { ttl: "5 seconds", wait: "2 seconds" })
}).pipe(
  Effect.matchEffect({
    onFailure: () => Effect.sync(() => void (counting && failures++)),
    onSuccess: () => Effect.sync(() => void (counting && acquisitions++))
  })
)

/** The `go <startAt>` line on stdin. */
const go = new Promise<number>((resolve) => {
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.startsWith("go ")) resolve(Number(line.slice(3)))
  })
})

const program = Effect.gen(function*() {
  // Warm up (JIT, connections to every node), then wait for the shared start.
  const warmUntil = Date.now() + args.warmupMs
  yield* Effect.forEach(
    Array.from({ length: args.concurrency }),
    () => Effect.whileLoop({ while: () => Date.now() < warmUntil, body: () => cycle, step: () => {} }),
    { concurrency: "unbounded", discard: true }
  )
  process.stdout.write("ready\n")
  const startAt = yield* Effect.promise(() => go)
  const until = startAt + args.durationMs
  const loop = Effect.whileLoop({ while: () => Date.now() < until, body: () => cycle, step: () => {} })
  yield* Effect.promise(() => sleep(Math.max(0, startAt - Date.now())))
  counting = true
  const cpu = cpuMicros()
  yield* Effect.forEach(Array.from({ length: args.concurrency }), () => loop, {
    concurrency: "unbounded",
    discard: true
  })
  counting = false
  return cpuMicros() - cpu
})

const layer = LockKv.layerRedis({ cluster: { nodes: args.nodes }, namespace: args.namespace })
Effect.runPromise(Effect.provide(program, Layer.orDie(layer))).then(
  (cpuUs) => {
    process.stdout.write(`${JSON.stringify({ acquisitions, failures, cpuUs })}\n`)
    process.exit(0)
  },
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
