/**
 * (b') Contended across processes: the same 8 clients as (b), each in its own
 * OS process (`bench/worker.ts`). The 8 workers start once and serve every
 * contender in turn, so rounds interleave as in (b). Mutual exclusion is
 * checked across processes with a Redis INCR/DECR "holders" key.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { type RedisContender, selectContenders } from "../contenders/redis.js"
import { type Baseline, baselineEnv, type BaselineLocation } from "../lib/baseline.js"
import {
  addCounts,
  addServerDeltas,
  emptyCounts,
  emptyServerDelta,
  type ServerStats,
  withoutCalls
} from "../lib/commands.js"
import type { Comparison, RoundFigures } from "../lib/compare.js"
import type { BenchConfig } from "../lib/config.js"
import { LoopStats } from "../lib/loop.js"
import { type FromWorker, marker, type ToWorker, type WorkerResult } from "../lib/protocol.js"
import { section } from "../lib/table.js"
import type { Target } from "../lib/targets.js"
import { within } from "../lib/time.js"
import { overrunGraceMs } from "./contended.js"
import {
  type ContendedRow,
  contendedTable,
  contendedTargets,
  type Tally,
  toRow,
  withLockComparisons
} from "./contention.js"

export interface CrossProcessResult {
  readonly rows: ReadonlyArray<ContendedRow>
  readonly targets: ReadonlyArray<Target>
  readonly table: string
  /** Working tree ÷ baseline, with `--baseline` only. */
  readonly comparisons: ReadonlyArray<Comparison>
}

const workerPath = fileURLToPath(new URL("../worker.ts", import.meta.url))

interface Worker {
  readonly process: ChildProcess
  readonly send: (message: ToWorker) => void
  /** The next message, failing on an error message, an exit, or after `ms`. */
  readonly next: (ms: number) => Promise<FromWorker>
}

/** Starts a worker; with a baseline, it loads that build too (and checks its module identity). */
const startWorker = (baseline: BaselineLocation | undefined): Worker => {
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), workerPath], {
    stdio: ["pipe", "pipe", "inherit"],
    env: baseline === undefined
      ? process.env
      : { ...process.env, [baselineEnv]: JSON.stringify({ ref: baseline.ref, sha: baseline.sha, dir: baseline.dir }) }
  })
  const inbox: Array<FromWorker> = []
  let waiting: ((m: FromWorker | Error) => void) | undefined
  const deliver = (m: FromWorker | Error) => {
    if (waiting !== undefined) {
      const w = waiting
      waiting = undefined
      w(m)
    } else if (!(m instanceof Error)) inbox.push(m)
  }
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line.startsWith(marker)) deliver(JSON.parse(line.slice(marker.length)) as FromWorker)
    else if (line.trim() !== "") process.stderr.write(`[worker ${child.pid}] ${line}\n`)
  })
  child.on("exit", (code) => deliver(new Error(`worker ${child.pid} exited with ${code}`)))
  return {
    process: child,
    send: (message) => child.stdin!.write(`${JSON.stringify(message)}\n`),
    next: (ms) => {
      const queued = inbox.shift()
      const message = queued !== undefined
        ? Promise.resolve<FromWorker | Error>(queued)
        : new Promise<FromWorker | Error>((resolve) => {
          waiting = resolve
        })
      return within(message, ms).then((m) => {
        if (m === undefined) {
          waiting = undefined
          throw new Error(`worker ${child.pid} did not answer within ${ms} ms`)
        }
        if (m instanceof Error) throw m
        if (m.op === "error") throw new Error(`worker ${child.pid}: ${m.message}`)
        return m
      })
    }
  }
}

const expect = async <Op extends FromWorker["op"]>(
  worker: Worker,
  op: Op,
  ms: number
): Promise<Extract<FromWorker, { op: Op }>> => {
  const message = await worker.next(ms)
  if (message.op !== op) throw new Error(`expected "${op}" from worker, got "${message.op}"`)
  return message as Extract<FromWorker, { op: Op }>
}

interface Entry extends Tally<RedisContender> {
  readonly rounds: Array<RoundFigures>
}

export const runCrossProcess = async (
  url: string,
  server: ServerStats,
  config: BenchConfig["crossProcess"],
  log: (line: string) => void,
  only: ReadonlyArray<string> = [],
  baseline?: Baseline
): Promise<CrossProcessResult> => {
  const workers = Array.from({ length: config.clients }, () => startWorker(baseline))
  const all = <A>(f: (w: Worker) => Promise<A>) => Promise.all(workers.map(f))
  const probeKey = "bench:holders"
  const entries: Array<Entry> = selectContenders(only, baseline).filter((c) => c.contended).map((contender) => ({
    contender,
    stats: workers.map(() => new LoopStats()),
    ms: 0,
    sent: emptyCounts,
    server: emptyServerDelta,
    cpuUs: 0,
    violations: 0,
    overruns: 0,
    rounds: []
  }))

  /** Prepares every worker, runs one synchronized round, closes the clients. */
  const runRound = async (entry: Entry, ms: number, measured: boolean) => {
    const key = `bench:b2:${entry.contender.id}`
    await server.client.del(probeKey)
    for (const w of workers) w.send({ op: "prepare", contender: entry.contender.id, url, key, probeKey })
    await all((w) => expect(w, "prepared", 30_000))
    const before = await server.snapshot()
    const startAt = Date.now() + 100
    for (const w of workers) w.send({ op: "run", startAt, durationMs: ms, holdMs: config.holdMs })
    const results: Array<WorkerResult> = []
    const finished = await within(all((w) => expect(w, "result", ms + overrunGraceMs + 1_000)), ms + overrunGraceMs)
    const after = await server.snapshot()
    const elapsed = Date.now() - startAt
    if (finished !== undefined) { for (const m of finished) results.push(m.result) }
    for (const w of workers) w.send({ op: "close" })
    await all((w) => expect(w, "closed", 30_000))
    if (!measured) return
    entry.ms += elapsed
    if (finished === undefined) entry.overruns++
    let delta = server.delta(before, after)
    for (const [i, r] of results.entries()) {
      entry.stats[i]!.merge(r.stats)
      entry.sent = addCounts(entry.sent, r.sent)
      entry.violations += r.violations
      entry.cpuUs += r.cpuUs
      delta = {
        executed: withoutCalls(withoutCalls(delta.executed, "incr", r.probeIncr), "decr", r.probeDecr),
        cpuSeconds: delta.cpuSeconds
      }
    }
    entry.server = addServerDeltas(entry.server, delta)
    entry.rounds.push({
      units: results.reduce((n, r) => n + r.stats.acquisitions, 0),
      ms: elapsed,
      cpuUs: results.reduce((n, r) => n + r.cpuUs, 0)
    })
  }

  try {
    await all((w) => expect(w, "hello", 60_000))
    log(`  (b') ${workers.length} worker processes up`)
    if (config.warmupMs > 0) { for (const entry of entries) await runRound(entry, config.warmupMs, false) }
    for (let round = 0; round < config.rounds; round++) {
      const order = entries.map((_, i) => entries[(i + round) % entries.length]!)
      for (const entry of order) await runRound(entry, config.roundMs, true)
      log(`  (b') round ${round + 1}/${config.rounds} done`)
    }
  } finally {
    for (const w of workers) w.send({ op: "exit" })
    await Promise.all(
      workers.map((w) =>
        within(new Promise<void>((resolve) => w.process.once("exit", () => resolve())), 5_000).then((r) => {
          if (r === undefined && w.process.pid !== undefined) w.process.kill("SIGKILL")
        })
      )
    )
  }

  const rows = entries.map((entry) => toRow(entry))
  const table = [
    section(
      `(b') contended, ${config.clients} processes (1 client each), 1 key, hold ${config.holdMs} ms + INCR/DECR probe, ` +
        `${config.rounds} × ${config.roundMs} ms per contender`
    ),
    contendedTable(rows)
  ].join("\n")
  return {
    rows,
    targets: contendedTargets("(b') processes", rows),
    table,
    comparisons: withLockComparisons("(b') processes", entries)
  }
}
