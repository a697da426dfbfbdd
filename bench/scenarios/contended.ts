/**
 * (b) Contended, one process: 8 clients, each with its own connection (its own
 * LockKv for effect-lock), on one key, each holding the lock 1 ms. A shared
 * in-process counter of holders detects overlapping sections.
 */
import { type RedisClient, type RedisContender, selectContenders } from "../contenders/redis.js"
import type { Baseline } from "../lib/baseline.js"
import { emptyCounts, emptyServerDelta, type ServerStats } from "../lib/commands.js"
import type { Comparison, RoundFigures } from "../lib/compare.js"
import type { BenchConfig } from "../lib/config.js"
import { LoopStats, type Probe } from "../lib/loop.js"
import { measureRound } from "../lib/round.js"
import { section } from "../lib/table.js"
import type { Target } from "../lib/targets.js"
import { now, within } from "../lib/time.js"
import {
  type ContendedRow,
  contendedTable,
  contendedTargets,
  type Tally,
  toRow,
  withLockComparisons
} from "./contention.js"

export interface ContendedResult {
  readonly rows: ReadonlyArray<ContendedRow>
  readonly targets: ReadonlyArray<Target>
  readonly table: string
  /** Working tree ÷ baseline, with `--baseline` only. */
  readonly comparisons: ReadonlyArray<Comparison>
}

/** Time a round's loops get, after the round's end, to finish their last acquisition. */
export const overrunGraceMs = 30_000

const holdersProbe = () => {
  let holders = 0
  let violations = 0
  const enter = () => {
    if (++holders > 1) violations++
  }
  const exit = () => {
    holders--
  }
  const probe: Probe = {
    enter: () => Promise.resolve(enter()),
    exit: () => Promise.resolve(exit()),
    sync: { enter, exit }
  }
  return { probe, violations: () => violations }
}

interface Entry extends Tally<RedisContender> {
  readonly clients: ReadonlyArray<RedisClient>
  readonly rounds: Array<RoundFigures>
}

export const runContended = async (
  url: string,
  server: ServerStats,
  config: BenchConfig["contended"],
  log: (line: string) => void,
  only: ReadonlyArray<string> = [],
  baseline?: Baseline
): Promise<ContendedResult> => {
  const entries: Array<Entry> = []
  const runRound = async (entry: Entry, ms: number, stats: ReadonlyArray<LoopStats>) => {
    const { probe, violations } = holdersProbe()
    const start = now()
    const until = start + ms
    const done = await within(
      Promise.all(
        entry.clients.map((client, i) => client.runLoop({ until, holdMs: config.holdMs, probe, stats: stats[i]! }))
      ),
      ms + overrunGraceMs
    )
    return { ms: now() - start, violations: violations(), overrun: done === undefined }
  }
  try {
    for (const contender of selectContenders(only, baseline).filter((c) => c.contended)) {
      const clients: Array<RedisClient> = []
      for (let i = 0; i < config.clients; i++) clients.push(await contender.make(url, `bench:b:${contender.id}`))
      const entry: Entry = {
        contender,
        clients,
        stats: clients.map(() => new LoopStats()),
        ms: 0,
        sent: emptyCounts,
        server: emptyServerDelta,
        cpuUs: 0,
        violations: 0,
        overruns: 0,
        rounds: []
      }
      entries.push(entry)
      if (config.warmupMs > 0) {
        const warm = await runRound(entry, config.warmupMs, clients.map(() => new LoopStats()))
        entry.violations += warm.violations
      }
    }
    for (let round = 0; round < config.rounds; round++) {
      const order = entries.map((_, i) => entries[(i + round) % entries.length]!)
      for (const entry of order) {
        const [acquisitions, cpuUs] = [entry.stats.reduce((n, s) => n + s.acquisitions, 0), entry.cpuUs]
        const result = await measureRound(server, entry, () => runRound(entry, config.roundMs, entry.stats))
        entry.rounds.push({
          units: entry.stats.reduce((n, s) => n + s.acquisitions, 0) - acquisitions,
          ms: result.ms,
          cpuUs: entry.cpuUs - cpuUs
        })
        entry.ms += result.ms
        entry.violations += result.violations
        if (result.overrun) entry.overruns++
      }
      log(`  (b) round ${round + 1}/${config.rounds} done`)
    }
  } finally {
    for (const entry of entries) for (const client of entry.clients) await client.close()
  }
  const rows = entries.map((entry) => toRow(entry))
  const table = [
    section(
      `(b) contended, one process: ${config.clients} clients (own connections), 1 key, hold ${config.holdMs} ms, ` +
        `${config.rounds} × ${config.roundMs} ms per contender`
    ),
    contendedTable(rows)
  ].join("\n")
  return {
    rows,
    targets: contendedTargets("(b) contended", rows),
    table,
    comparisons: withLockComparisons("(b) contended", entries)
  }
}
