/**
 * (e) Semaphore, one process: 8 clients, each with its own connection (its own
 * LockKv for effect-lock), on one semaphore of limit 3, each holding 1 permit
 * for 1 ms per cycle: effect-lock's `Semaphore.withPermits` beside
 * redis-semaphore's `Semaphore`. An in-process counter of holders checks that
 * no more than 3 hold at once. Rounds are interleaved (each contender takes
 * every place in the order), as in (b).
 */
import { DistributedSemaphore, RedisBacking } from "effect-distributed-lock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { Semaphore as RedisSemaphore } from "redis-semaphore"
import type * as EffectLock from "../../src/index.js"
import type { BenchConfig } from "../lib/config.js"
import { effectLoop, LoopStats, type Probe, promiseLoop } from "../lib/loop.js"
import { distribution, ratio, Samples } from "../lib/stats.js"
import { int, num, renderTable, section } from "../lib/table.js"
import { atLeast, type Target } from "../lib/targets.js"
import { collectGarbage, cpuMicros, now, within } from "../lib/time.js"

// The built package, as users run it (see lib/effectLock.ts); a path in a
// variable, so that type-checking needs no dist/ (CI type-checks before it builds).
const dist = "../../dist/index.js"
const { LockKv, Semaphore }: typeof EffectLock = await import(dist)

interface Client {
  readonly runLoop: (until: number, holdMs: number, probe: Probe, stats: LoopStats) => Promise<void>
  readonly close: () => Promise<void>
}

interface Contender {
  readonly id: string
  readonly label: string
  readonly make: (url: string, key: string, limit: number) => Promise<Client>
}

const effectLock: Contender = {
  id: "effect-lock:semaphore",
  label: "effect-lock Semaphore.withPermits",
  make: async (url, key, limit) => {
    const runtime = ManagedRuntime.make(LockKv.layerRedis({ url, namespace: "bench" }).pipe(Layer.orDie))
    await runtime.runPromise(LockKv.LockKv)
    const options = { limit, wait: "30 seconds" } as const
    return {
      runLoop: (until, holdMs, probe, stats) =>
        runtime.runPromise(
          effectLoop((section) => Semaphore.withPermits(section, key, 1, options), { until, holdMs, probe, stats })
        ),
      close: () => runtime.dispose()
    }
  }
}

const redisSemaphore = (setting: "default" | "fast"): Contender => ({
  id: `redis-semaphore@${setting}`,
  label: setting === "default" ? "redis-semaphore Semaphore (defaults)" : "redis-semaphore Semaphore (retry 1ms)",
  make: async (url, key, limit) => {
    const redis = new Redis(url, { lazyConnect: true, connectionName: `bench-redis-semaphore-${setting}` })
    await redis.connect()
    const options = setting === "default" ? {} : { retryInterval: 1 }
    return {
      runLoop: (until, holdMs, probe, stats) =>
        promiseLoop(async (section) => {
          const semaphore = new RedisSemaphore(redis, key, limit, options)
          await semaphore.acquire()
          try {
            await section()
          } finally {
            await semaphore.release()
          }
        }, { until, holdMs, probe, stats }),
      close: () => redis.quit().then(() => undefined, () => redis.disconnect())
    }
  }
})

/** effect-distributed-lock's `DistributedSemaphore` (made once per client, defaults), `withPermits(1)` per cycle. */
const effectDistributedLock: Contender = {
  id: "effect-distributed-lock@default",
  label: "effect-distributed-lock DistributedSemaphore (defaults)",
  make: async (url, key, limit) => {
    const redis = new Redis(url, { lazyConnect: true, connectionName: "bench-edl-semaphore" })
    await redis.connect()
    const semaphore = await Effect.runPromise(
      DistributedSemaphore.make(key, { limit }).pipe(
        Effect.provide(RedisBacking.layer(redis, { keyPrefix: "bench-edl:" }))
      )
    )
    return {
      runLoop: (until, holdMs, probe, stats) =>
        Effect.runPromise(effectLoop((section) => semaphore.withPermits(1)(section), { until, holdMs, probe, stats })),
      close: () => redis.quit().then(() => undefined, () => redis.disconnect())
    }
  }
}

const contenders: ReadonlyArray<Contender> = [
  effectLock,
  redisSemaphore("default"),
  redisSemaphore("fast"),
  effectDistributedLock
]

export interface SemaphoreRow {
  readonly id: string
  readonly label: string
  readonly opsPerSecond: number
  readonly waitP50: number
  readonly waitP99: number
  readonly cpuUsPerOp: number
  readonly mostHolders: number
  readonly failures: number
  /** Per round: this contender's ops/s ÷ redis-semaphore's (defaults) in the same round; the median. */
  readonly medianRatioToRedisSemaphore: number
}

export interface SemaphoreResult {
  readonly rows: ReadonlyArray<SemaphoreRow>
  readonly table: string
  readonly targets: ReadonlyArray<Target>
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
}

export const runSemaphore = async (
  url: string,
  config: BenchConfig["semaphore"],
  log: (line: string) => void
): Promise<SemaphoreResult> => {
  interface Entry {
    readonly contender: Contender
    readonly clients: ReadonlyArray<Client>
    readonly stats: ReadonlyArray<LoopStats>
    readonly perRound: Array<number>
    ms: number
    cpuUs: number
    most: number
  }
  const entries: Array<Entry> = []
  const runRound = async (entry: Entry, ms: number, stats: ReadonlyArray<LoopStats>) => {
    let holders = 0
    const enter = () => {
      holders++
      if (holders > entry.most) entry.most = holders
    }
    const exit = () => {
      holders--
    }
    const probe: Probe = {
      enter: () => Promise.resolve(enter()),
      exit: () => Promise.resolve(exit()),
      sync: { enter, exit }
    }
    const start = now()
    const until = start + ms
    await within(
      Promise.all(entry.clients.map((client, i) => client.runLoop(until, config.holdMs, probe, stats[i]!))),
      ms + 30_000
    )
    return now() - start
  }
  try {
    for (const contender of contenders) {
      const key = `bench:e:${contender.id}`
      const clients: Array<Client> = []
      for (let i = 0; i < config.clients; i++) clients.push(await contender.make(url, key, config.limit))
      const entry: Entry = {
        contender,
        clients,
        stats: clients.map(() => new LoopStats()),
        perRound: [],
        ms: 0,
        cpuUs: 0,
        most: 0
      }
      entries.push(entry)
      if (config.warmupMs > 0) await runRound(entry, config.warmupMs, clients.map(() => new LoopStats()))
      entry.most = 0
    }
    for (let round = 0; round < config.rounds; round++) {
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[(i + round) % entries.length]!
        const before = entry.stats.reduce((n, s) => n + s.acquisitions, 0)
        collectGarbage()
        const cpu = cpuMicros()
        const ms = await runRound(entry, config.roundMs, entry.stats)
        entry.cpuUs += cpuMicros() - cpu
        entry.ms += ms
        entry.perRound.push(((entry.stats.reduce((n, s) => n + s.acquisitions, 0) - before) / ms) * 1000)
      }
      log(`  (e) round ${round + 1}/${config.rounds} done`)
    }
  } finally {
    for (const entry of entries) for (const client of entry.clients) await client.close()
  }
  const reference = entries.find((e) => e.contender.id === "redis-semaphore@default")
  const rows = entries.map((entry): SemaphoreRow => {
    const ops = entry.stats.reduce((n, s) => n + s.acquisitions, 0)
    const wait = new Samples()
    for (const s of entry.stats) wait.addAll(s.wait.values())
    const waits = distribution(wait)
    return {
      id: entry.contender.id,
      label: entry.contender.label,
      opsPerSecond: (ops / entry.ms) * 1000,
      waitP50: waits.p50,
      waitP99: waits.p99,
      cpuUsPerOp: entry.cpuUs / ops,
      mostHolders: entry.most,
      failures: entry.stats.reduce((n, s) => n + s.failures, 0),
      medianRatioToRedisSemaphore: reference === undefined
        ? Number.NaN
        : median(entry.perRound.map((v, i) => ratio(v, reference.perRound[i]!)))
    }
  })
  const table = [
    section(
      `(e) semaphore, one process: ${config.clients} clients (own connections), limit ${config.limit}, 1 permit each, ` +
        `hold ${config.holdMs} ms, ${config.rounds} × ${config.roundMs} ms per contender`
    ),
    renderTable(
      [
        "contender",
        "ops/s",
        "÷ redis-semaphore (median of rounds)",
        "wait p50 ms",
        "wait p99 ms",
        "client CPU µs/op",
        "most holders",
        "failures"
      ],
      rows.map((r) => [
        r.label,
        int(r.opsPerSecond),
        num(r.medianRatioToRedisSemaphore),
        num(r.waitP50),
        num(r.waitP99),
        num(r.cpuUsPerOp, 0),
        String(r.mostHolders),
        String(r.failures)
      ])
    )
  ].join("\n")
  const own = rows.find((r) => r.id === effectLock.id)
  // Safety only: the ops/s ratio is reported, not held to a target (FIFO hand-off
  // against redis-semaphore's unfair polling, where a releaser can take the permit again).
  const targets = own === undefined ? [] : [
    atLeast(
      "(e) semaphore",
      `never more than ${config.limit} holders (limit − most seen)`,
      config.limit - own.mostHolders,
      0
    )
  ]
  return { rows, table, targets }
}
