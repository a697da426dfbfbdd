/**
 * Working tree ÷ baseline (`--baseline`): the ratios between an effect-lock
 * row and its twin built from another git ref, over the whole run and round by
 * round. The two run in the same rounds, next to each other in the rotating
 * order, so a slow stretch of the machine mostly falls on both.
 */
import { ratio } from "./stats.js"
import { num, renderTable, section } from "./table.js"

/** What one contender did in one measured round. */
export interface RoundFigures {
  /** Operations (cycles, acquisitions). */
  readonly units: number
  readonly ms: number
  /** CPU time of the client process(es), µs; undefined where not measured. */
  readonly cpuUs: number | undefined
}

export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  /** Rounds with a finite ratio. */
  readonly rounds: number
}

export interface Comparison {
  readonly scenario: string
  readonly row: string
  /** ops/s, working tree ÷ baseline, over the whole run: above 1, the working tree is faster. */
  readonly opsRatio: number
  readonly opsRatioPerRound: Spread
  /** client CPU per operation, working tree ÷ baseline: below 1, the working tree is cheaper. */
  readonly cpuRatio: number | undefined
  readonly cpuRatioPerRound: Spread | undefined
  /** Each round's figures, in round order (JSON only). */
  readonly rounds: { readonly current: ReadonlyArray<RoundFigures>; readonly baseline: ReadonlyArray<RoundFigures> }
}

const spread = (values: ReadonlyArray<number>): Spread => {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b)
  const n = finite.length
  if (n === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, rounds: 0 }
  const median = n % 2 === 1 ? finite[(n - 1) / 2]! : (finite[n / 2 - 1]! + finite[n / 2]!) / 2
  return { median, min: finite[0]!, max: finite[n - 1]!, rounds: n }
}

const sum = (rounds: ReadonlyArray<RoundFigures>, f: (r: RoundFigures) => number) =>
  rounds.reduce((a, r) => a + f(r), 0)

const opsRatio = (a: ReadonlyArray<RoundFigures>, b: ReadonlyArray<RoundFigures>) =>
  ratio(sum(a, (r) => r.units) / sum(a, (r) => r.ms), sum(b, (r) => r.units) / sum(b, (r) => r.ms))

const cpuRatio = (a: ReadonlyArray<RoundFigures>, b: ReadonlyArray<RoundFigures>) =>
  ratio(
    sum(a, (r) => r.cpuUs ?? Number.NaN) / sum(a, (r) => r.units),
    sum(b, (r) => r.cpuUs ?? Number.NaN) / sum(b, (r) => r.units)
  )

/** Compares two contenders' rounds, pairing round i of one with round i of the other. */
export const compareRounds = (
  scenario: string,
  row: string,
  current: ReadonlyArray<RoundFigures>,
  baseline: ReadonlyArray<RoundFigures>
): Comparison => {
  const pairs = current.slice(0, baseline.length).map((c, i) => [[c], [baseline[i]!]] as const)
  const cpuMeasured = current.every((r) => r.cpuUs !== undefined) && baseline.every((r) => r.cpuUs !== undefined)
  return {
    scenario,
    row,
    opsRatio: opsRatio(current, baseline),
    opsRatioPerRound: spread(pairs.map(([c, b]) => opsRatio(c, b))),
    cpuRatio: cpuMeasured ? cpuRatio(current, baseline) : undefined,
    cpuRatioPerRound: cpuMeasured ? spread(pairs.map(([c, b]) => cpuRatio(c, b))) : undefined,
    rounds: { current, baseline }
  }
}

const showSpread = (s: Spread | undefined): string =>
  s === undefined || s.rounds === 0 ? "–" : `${num(s.median, 3)} [${num(s.min, 3)}–${num(s.max, 3)}] n=${s.rounds}`

/** The "working tree ÷ baseline" table. */
export const comparisonTable = (label: string, comparisons: ReadonlyArray<Comparison>): string =>
  [
    section(`working tree ÷ baseline ${label}, same run, interleaved rounds`),
    comparisons.length === 0
      ? "(no effect-lock rows in the scenarios run)"
      : renderTable(
        [
          "scenario",
          "row",
          "ops/s ratio",
          "per round: median [min–max]",
          "CPU/op ratio",
          "per round: median [min–max]"
        ],
        comparisons.map((c) => [
          c.scenario,
          c.row,
          num(c.opsRatio, 3),
          showSpread(c.opsRatioPerRound),
          c.cpuRatio === undefined ? "–" : num(c.cpuRatio, 3),
          showSpread(c.cpuRatioPerRound)
        ])
      ),
    "ops/s ratio > 1: the working tree is faster; CPU/op ratio < 1: it uses less client CPU per operation.",
    "Run the ref against itself (--baseline HEAD on a clean tree) for the noise these ratios carry on this machine."
  ].join("\n")
