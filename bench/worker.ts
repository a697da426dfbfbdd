/**
 * One client of scenario (b') in its own OS process: `node --import tsx
 * bench/worker.ts`, driven over stdin/stdout by `scenarios/crossProcess.ts`
 * (see `lib/protocol.ts`). Inside each critical section it INCRs a "holders"
 * key on a separate connection (a reply above 1 is a violation) and DECRs it on
 * the way out; those commands are left out of the contender's counts.
 */
import { Redis } from "ioredis"
import { createInterface } from "node:readline"
import { findContender, type RedisClient } from "./contenders/redis.js"
import { baselineEnv, type BaselineLocation, loadBaseline } from "./lib/baseline.js"
import { excludeFromSent, installSentCounter, sentSnapshot, subtractCounts } from "./lib/commands.js"
import { LoopStats, type Probe } from "./lib/loop.js"
import { type FromWorker, marker, type ToWorker } from "./lib/protocol.js"
import { cpuMicros, now, sleep } from "./lib/time.js"

installSentCounter()

// With `--baseline` the parent names the built baseline; a worker that cannot
// load it (or would load other effect / ioredis instances) exits, failing (b').
const baselineLocation = process.env[baselineEnv]
const baseline = baselineLocation === undefined || baselineLocation === ""
  ? undefined
  : { ...(await loadBaseline(JSON.parse(baselineLocation) as BaselineLocation)), built: false, buildWarning: undefined }

const reply = (message: FromWorker): void => {
  process.stdout.write(`${marker}${JSON.stringify(message)}\n`)
}

let client: RedisClient | undefined
let probeRedis: Redis | undefined
let probeKey = ""

const handle = async (message: ToWorker): Promise<void> => {
  switch (message.op) {
    case "prepare": {
      if (probeRedis === undefined) {
        probeRedis = excludeFromSent(new Redis(message.url, { lazyConnect: true, connectionName: "bench-probe" }))
        await probeRedis.connect()
      }
      probeKey = message.probeKey
      client = await findContender(message.contender, baseline).make(message.url, message.key)
      return reply({ op: "prepared" })
    }
    case "run": {
      if (client === undefined || probeRedis === undefined) throw new Error("run before prepare")
      const redis = probeRedis
      let probeIncr = 0
      let probeDecr = 0
      let violations = 0
      const probe: Probe = {
        enter: async () => {
          probeIncr++
          if ((await redis.incr(probeKey)) > 1) violations++
        },
        exit: async () => {
          probeDecr++
          await redis.decr(probeKey)
        }
      }
      // Start together: the parent names a wall-clock instant all workers share.
      const delay = message.startAt - Date.now()
      if (delay > 0) await sleep(delay)
      const stats = new LoopStats()
      const sentBefore = sentSnapshot()
      const cpuStart = cpuMicros()
      await client.runLoop({
        until: now() + (message.startAt + message.durationMs - Date.now()),
        holdMs: message.holdMs,
        probe,
        stats
      })
      const cpuUs = cpuMicros() - cpuStart
      const sent = subtractCounts(sentSnapshot(), sentBefore)
      return reply({ op: "result", result: { stats: stats.toJSON(), sent, probeIncr, probeDecr, violations, cpuUs } })
    }
    case "close": {
      await client?.close()
      client = undefined
      return reply({ op: "closed" })
    }
    case "exit": {
      await probeRedis?.quit().catch(() => probeRedis?.disconnect())
      process.exit(0)
    }
  }
}

// One message at a time, in order.
let chain = Promise.resolve()
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "") return
  chain = chain.then(() => handle(JSON.parse(line) as ToWorker)).catch((error: unknown) =>
    reply({ op: "error", message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })
  )
})
process.stdin.on("end", () => process.exit(0))
reply({ op: "hello", pid: process.pid })
