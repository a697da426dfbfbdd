/**
 * What (b) and (b') share: turning per-client loop stats and command counts
 * into one row per contender, the table, and the issue's targets.
 */
import { baselineIdPrefix } from "../contenders/redis.js"
import { type CommandCounts, perUnit, type ServerDelta } from "../lib/commands.js"
import { compareRounds, type Comparison, type RoundFigures } from "../lib/compare.js"
import { LoopStats } from "../lib/loop.js"
import { distribution, ratio, Samples } from "../lib/stats.js"
import { int, num, renderTable } from "../lib/table.js"
import { asReference, atLeast, atMost, bestOf, type Target } from "../lib/targets.js"

export interface ContendedRow {
  readonly id: string
  readonly label: string
  readonly setting: string
  readonly clients: number
  readonly seconds: number
  readonly acquisitions: number
  readonly acquisitionsPerSec: number
  /** Wait from first request to acquisition, ms. */
  readonly waitMs: { readonly p50: number; readonly p99: number; readonly max: number }
  /** The longest wait still unfinished when a round ended, ms (starvation shows here). */
  readonly unfinishedWaitMs: number
  /** min ÷ max acquisitions per client. */
  readonly fairness: number
  readonly perClient: ReadonlyArray<number>
  readonly sentPerAcquisition: number
  readonly executedPerAcquisition: number
  readonly sent: CommandCounts
  readonly executed: CommandCounts
  /** redis-server CPU (user + sys) as a share of one core over the run, %. */
  readonly redisCpuPercent: number
  readonly redisCpuUsPerAcquisition: number
  /** CPU time of the client process(es), µs per acquisition. */
  readonly clientCpuUsPerAcquisition: number
  readonly failures: number
  readonly errors: Readonly<Record<string, number>>
  readonly violations: number
  /** Rounds whose loops had not all stopped 30 s after their end. */
  readonly overruns: number
}

/** What (b) and (b') accumulate per contender over their rounds. */
export interface ContenderTotals {
  readonly contender: { readonly id: string; readonly label: string; readonly setting: string }
  /** One per client. */
  readonly stats: ReadonlyArray<LoopStats>
  readonly ms: number
  readonly sent: CommandCounts
  readonly server: ServerDelta
  /** CPU time of the client process(es), µs. */
  readonly cpuUs: number
  readonly violations: number
  readonly overruns: number
}

/** The running totals of one contender while (b) or (b') runs its rounds. */
export interface Tally<C extends ContenderTotals["contender"]> {
  readonly contender: C
  readonly stats: ReadonlyArray<LoopStats>
  ms: number
  sent: CommandCounts
  server: ServerDelta
  cpuUs: number
  violations: number
  overruns: number
}

export const toRow = (t: ContenderTotals): ContendedRow => {
  const wait = new Samples()
  const all = new LoopStats()
  for (const c of t.stats) {
    wait.addAll(c.wait.values())
    all.merge(c.toJSON())
  }
  const perClient = t.stats.map((c) => c.acquisitions)
  const acquisitions = perClient.reduce((a, b) => a + b, 0)
  const d = distribution(wait)
  const seconds = t.ms / 1000
  return {
    id: t.contender.id,
    label: t.contender.label,
    setting: t.contender.setting,
    clients: t.stats.length,
    seconds,
    acquisitions,
    acquisitionsPerSec: acquisitions / seconds,
    waitMs: { p50: d.p50, p99: d.p99, max: d.max },
    unfinishedWaitMs: all.unfinishedWait,
    fairness: ratio(Math.min(...perClient), Math.max(...perClient)),
    perClient,
    sentPerAcquisition: t.sent.total / acquisitions,
    executedPerAcquisition: t.server.executed.total / acquisitions,
    sent: t.sent,
    executed: t.server.executed,
    redisCpuPercent: (100 * t.server.cpuSeconds) / seconds,
    redisCpuUsPerAcquisition: (t.server.cpuSeconds * 1e6) / acquisitions,
    clientCpuUsPerAcquisition: t.cpuUs / acquisitions,
    failures: all.failures,
    errors: Object.fromEntries(all.errors),
    violations: t.violations,
    overruns: t.overruns
  }
}

export const contendedTable = (rows: ReadonlyArray<ContendedRow>): string =>
  [
    renderTable(
      [
        "contender",
        "acq/s",
        "p50 wait ms",
        "p99 wait ms",
        "max wait ms",
        "fairness",
        "sent/acq",
        "exec/acq",
        "node CPU µs/acq",
        "redis CPU %",
        "redis µs/acq",
        "fails",
        "violations"
      ],
      rows.map((r) => [
        r.label,
        int(r.acquisitionsPerSec),
        num(r.waitMs.p50, 1),
        num(r.waitMs.p99, 1),
        num(Math.max(r.waitMs.max, r.unfinishedWaitMs), 1) + (r.unfinishedWaitMs > r.waitMs.max ? "*" : ""),
        num(r.fairness),
        num(r.sentPerAcquisition),
        num(r.executedPerAcquisition),
        num(r.clientCpuUsPerAcquisition, 0),
        num(r.redisCpuPercent, 1),
        num(r.redisCpuUsPerAcquisition, 1),
        int(r.failures),
        int(r.violations) + (r.overruns > 0 ? ` (${r.overruns} overrun)` : "")
      ])
    ),
    "",
    renderTable(
      ["executed per acquisition (commandstats)", "", "per-client acquisitions"],
      rows.map((r) => [r.label, perUnit(r.executed, r.acquisitions), r.perClient.join(" ")])
    ),
    rows.some((r) => r.unfinishedWaitMs > r.waitMs.max)
      ? "* a wait still unfinished when its round ended (a starving client) is longer than any completed one"
      : "",
    ...rows.flatMap((r) => Object.entries(r.errors).slice(0, 2).map(([e, n]) => `  ${r.label}: ${n} × ${e}`))
  ].join("\n")

export const contendedTargets = (scenario: string, rows: ReadonlyArray<ContendedRow>): Array<Target> => {
  const targets: Array<Target> = []
  const withLock = rows.find((r) => r.id === "effect-lock:withLock")
  // The best anchor: any other contender, each library at its defaults and at its fastest retry, and the floor
  // (never effect-lock itself, at any ref).
  const best = bestOf(
    rows.filter((r) => !r.id.startsWith("effect-lock") && !r.id.startsWith("ref:")),
    (r) => r.acquisitionsPerSec
  )
  const maxWait = (row: ContendedRow) => Math.max(row.waitMs.max, row.unfinishedWaitMs)
  if (withLock !== undefined) {
    if (best !== undefined) {
      targets.push(atLeast(
        scenario,
        `effect-lock withLock acquisitions/s ÷ best anchor's (${best.label})`,
        ratio(withLock.acquisitionsPerSec, best.acquisitionsPerSec),
        1
      ))
    }
    targets.push(
      atMost(scenario, "effect-lock withLock max wait, ms", maxWait(withLock), 50),
      atLeast(scenario, "effect-lock withLock fairness (min/max per client)", withLock.fairness, 0.7),
      atMost(scenario, "effect-lock withLock commands sent per acquisition", withLock.sentPerAcquisition, 3),
      atMost(
        scenario,
        "effect-lock withLock commands executed per acquisition",
        withLock.executedPerAcquisition,
        3,
        "INFO commandstats, Lua-internal calls included"
      )
    )
  }
  // The fair hand-off floor (a reference, see bench/README.md) against the same targets.
  const fair = rows.find((r) => r.id === "ref:fair-floor")
  if (fair !== undefined && best !== undefined) {
    targets.push(
      asReference(atLeast(
        scenario,
        `ref: fair hand-off floor acquisitions/s ÷ best anchor's (${best.label})`,
        ratio(fair.acquisitionsPerSec, best.acquisitionsPerSec),
        1
      )),
      asReference(atMost(scenario, "ref: fair hand-off floor max wait, ms", maxWait(fair), 50)),
      asReference(atMost(
        scenario,
        "ref: fair hand-off floor commands executed per acquisition",
        fair.executedPerAcquisition,
        3,
        "INFO commandstats, Lua-internal calls included"
      ))
    )
  }
  targets.push(
    atMost(
      scenario,
      "mutual-exclusion violations, all contenders",
      rows.reduce((n, r) => n + r.violations, 0),
      0
    )
  )
  return targets
}

/** withLock, working tree ÷ baseline (`--baseline`), from (b)'s or (b')'s per-round figures. */
export const withLockComparisons = (
  scenario: string,
  entries: ReadonlyArray<{ readonly contender: { readonly id: string }; readonly rounds: ReadonlyArray<RoundFigures> }>
): Array<Comparison> => {
  const roundsOf = (id: string) => entries.find((e) => e.contender.id === id)?.rounds
  const [ours, theirs] = [roundsOf("effect-lock:withLock"), roundsOf(`${baselineIdPrefix}withLock`)]
  return ours === undefined || theirs === undefined ? [] : [compareRounds(scenario, "withLock", ours, theirs)]
}
