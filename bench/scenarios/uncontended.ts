/**
 * (a) Uncontended: one client per contender, one connection, one key nobody
 * else touches; acquire + release as fast as it goes. Rounds are interleaved
 * (the order rotates each round) so machine noise hits every contender alike.
 */
import { baselineIdPrefix, type RedisClient, selectContenders } from "../contenders/redis.js"
import type { Baseline } from "../lib/baseline.js"
import { type CommandCounts, emptyCounts, emptyServerDelta, perUnit, type ServerStats } from "../lib/commands.js"
import { compareRounds, type Comparison, type RoundFigures } from "../lib/compare.js"
import type { BenchConfig } from "../lib/config.js"
import { LoopStats } from "../lib/loop.js"
import { measureRound } from "../lib/round.js"
import { distribution, ratio } from "../lib/stats.js"
import { int, num, renderTable, section } from "../lib/table.js"
import { asReference, atLeast, bestOf, isLibrary, type Target } from "../lib/targets.js"
import { now } from "../lib/time.js"

export interface UncontendedRow {
  readonly id: string
  readonly label: string
  readonly cycles: number
  readonly seconds: number
  readonly opsPerSec: number
  /** Cycle latency (acquire + release), microseconds. */
  readonly latencyUs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
  readonly failures: number
  readonly errors: Readonly<Record<string, number>>
  /** Commands this process sent per cycle (round trips). */
  readonly sentPerCycle: number
  /** Commands Redis executed per cycle, Lua-internal calls included (INFO commandstats). */
  readonly executedPerCycle: number
  readonly sent: CommandCounts
  readonly executed: CommandCounts
  readonly redisCpuUsPerCycle: number
  /** CPU time of this (client) process per cycle, µs: steadier than ops/s on a busy machine. */
  readonly clientCpuUsPerCycle: number
}

export interface UncontendedResult {
  readonly rows: ReadonlyArray<UncontendedRow>
  readonly targets: ReadonlyArray<Target>
  readonly table: string
  /** Working tree ÷ baseline, with `--baseline` only. */
  readonly comparisons: ReadonlyArray<Comparison>
}

export const runUncontended = async (
  url: string,
  server: ServerStats,
  config: BenchConfig["uncontended"],
  log: (line: string) => void,
  only: ReadonlyArray<string> = [],
  baseline?: Baseline
): Promise<UncontendedResult> => {
  const contenders = selectContenders(only, baseline).filter((c) => c.uncontended)
  const entries: Array<{
    readonly contender: typeof contenders[number]
    readonly client: RedisClient
    readonly stats: LoopStats
    ms: number
    cpuUs: number
    sent: CommandCounts
    server: typeof emptyServerDelta
    readonly rounds: Array<RoundFigures>
  }> = []
  for (const contender of contenders) {
    const client = await contender.make(url, `bench:a:${contender.id}`)
    entries.push({
      contender,
      client,
      stats: new LoopStats(),
      ms: 0,
      cpuUs: 0,
      sent: emptyCounts,
      server: emptyServerDelta,
      rounds: []
    })
  }
  try {
    if (config.warmupMs > 0) {
      for (const entry of entries) {
        await entry.client.runLoop({
          until: now() + config.warmupMs,
          holdMs: 0,
          probe: undefined,
          stats: new LoopStats()
        })
      }
    }
    for (let round = 0; round < config.rounds; round++) {
      const order = entries.map((_, i) => entries[(i + round) % entries.length]!)
      for (const entry of order) {
        const [cycles, cpuUs] = [entry.stats.acquisitions, entry.cpuUs]
        let ms = 0
        await measureRound(server, entry, async () => {
          const start = now()
          await entry.client.runLoop({ until: start + config.roundMs, holdMs: 0, probe: undefined, stats: entry.stats })
          ms = now() - start
        })
        entry.ms += ms
        entry.rounds.push({ units: entry.stats.acquisitions - cycles, ms, cpuUs: entry.cpuUs - cpuUs })
      }
      log(`  (a) round ${round + 1}/${config.rounds} done`)
    }
  } finally {
    for (const entry of entries) await entry.client.close()
  }

  const rows: Array<UncontendedRow> = entries.map(({ contender, cpuUs, ms, sent, server: s, stats }) => {
    const cycles = stats.acquisitions
    const d = distribution(stats.cycle)
    return {
      id: contender.id,
      label: contender.label,
      cycles,
      seconds: ms / 1000,
      opsPerSec: cycles / (ms / 1000),
      latencyUs: { p50: d.p50 * 1000, p90: d.p90 * 1000, p99: d.p99 * 1000, max: d.max * 1000 },
      failures: stats.failures,
      errors: Object.fromEntries(stats.errors),
      sentPerCycle: sent.total / cycles,
      executedPerCycle: s.executed.total / cycles,
      sent,
      executed: s.executed,
      redisCpuUsPerCycle: (s.cpuSeconds * 1e6) / cycles,
      clientCpuUsPerCycle: cpuUs / cycles
    }
  })

  const byId = (id: string) => rows.find((r) => r.id === id)
  const withLock = byId("effect-lock:withLock")
  const acquire = byId("effect-lock:acquire")
  const scenario = "(a) uncontended"
  const floor = byId("floor")
  // "Ahead of redlock, redis-semaphore and effect-distributed-lock": ahead of the fastest of them.
  const best = bestOf(rows.filter((r) => isLibrary(r.id)), (r) => r.opsPerSec)
  /** The two (a) targets for `row`, named after `name`. */
  const goals = (row: typeof rows[number], name: string): Array<Target> => [
    atLeast(scenario, `${name} ops/s ÷ floor ops/s`, ratio(row.opsPerSec, floor?.opsPerSec ?? NaN), 0.9),
    ...(best === undefined
      ? []
      : [
        atLeast(scenario, `${name} ops/s ÷ fastest library's (${best.label})`, ratio(row.opsPerSec, best.opsPerSec), 1)
      ])
  ]
  const targets: Array<Target> = withLock === undefined ? [] : goals(withLock, "effect-lock withLock")
  // The same goals for the reference rows: effect-lock's scripts with no Effect (what
  // the fence and the queue check cost in Redis), and the floor awaited in Effect.
  for (
    const [id, name] of [["ref:scripts", "ref: effect-lock's scripts, bare ioredis"], [
      "ref:effect-floor",
      "ref: floor inside Effect"
    ]]
  ) {
    const row = byId(id!)
    if (row !== undefined) { for (const goal of goals(row, name!)) targets.push(asReference(goal)) }
  }

  const table = [
    section(`(a) uncontended: 1 client, 1 key, ${config.rounds} × ${config.roundMs} ms per contender, interleaved`),
    renderTable(
      [
        "contender",
        "ops/s",
        "p50 µs",
        "p99 µs",
        "node CPU µs/cycle",
        "redis CPU µs/cycle",
        "sent/cycle",
        "exec/cycle",
        "fails",
        "executed per cycle (commandstats)"
      ],
      rows.map((r) => [
        r.label,
        int(r.opsPerSec),
        num(r.latencyUs.p50, 0),
        num(r.latencyUs.p99, 0),
        num(r.clientCpuUsPerCycle, 1),
        num(r.redisCpuUsPerCycle, 1),
        num(r.sentPerCycle),
        num(r.executedPerCycle),
        int(r.failures),
        perUnit(r.executed, r.cycles)
      ])
    ),
    "",
    renderTable(
      ["effect-lock ÷ anchor", "withLock ops/s", "acquire ops/s", "withLock node CPU/cycle", "acquire node CPU/cycle"],
      rows.filter((r) => !r.id.startsWith("effect-lock")).map((anchor) => [
        `÷ ${anchor.label}`,
        num(ratio(withLock?.opsPerSec ?? NaN, anchor.opsPerSec)),
        num(ratio(acquire?.opsPerSec ?? NaN, anchor.opsPerSec)),
        num(ratio(withLock?.clientCpuUsPerCycle ?? NaN, anchor.clientCpuUsPerCycle), 1),
        num(ratio(acquire?.clientCpuUsPerCycle ?? NaN, anchor.clientCpuUsPerCycle), 1)
      ])
    )
  ].join("\n")
  const roundsOf = (id: string) => entries.find((e) => e.contender.id === id)?.rounds
  const comparisons = (["withLock", "acquire"] as const).flatMap((form) => {
    const [ours, theirs] = [roundsOf(`effect-lock:${form}`), roundsOf(`${baselineIdPrefix}${form}`)]
    return ours === undefined || theirs === undefined ? [] : [compareRounds("(a) uncontended", form, ours, theirs)]
  })
  return { rows, targets, table, comparisons }
}
