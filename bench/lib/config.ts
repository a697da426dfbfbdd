/** Command-line options and the durations of a full and a `--quick` run. */

export const scenarioNames = [
  "uncontended",
  "contended",
  "cross-process",
  "memory",
  "memory-bound",
  "semaphore",
  "cluster"
] as const
export type ScenarioName = typeof scenarioNames[number]

/** Short names, as the issue letters them. */
const aliases: Record<string, ScenarioName> = {
  a: "uncontended",
  b: "contended",
  "b'": "cross-process",
  b2: "cross-process",
  processes: "cross-process",
  c: "memory",
  d: "memory-bound",
  e: "semaphore",
  f: "cluster"
}

export interface BenchConfig {
  readonly quick: boolean
  readonly scenarios: ReadonlyArray<ScenarioName>
  readonly output: string
  /** Redis contenders kept (by id prefix); empty: all of them. */
  readonly contenders: ReadonlyArray<string>
  /** `--baseline <git-ref>`: effect-lock at that ref, measured beside the working tree. */
  readonly baseline: string | undefined
  /** `--baseline-patch <file>`: a diff applied to the baseline before it is built (a variant of the ref). */
  readonly baselinePatch: string | undefined
  readonly uncontended: { readonly rounds: number; readonly roundMs: number; readonly warmupMs: number }
  readonly contended: {
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
    readonly clients: number
    readonly holdMs: number
  }
  readonly crossProcess: {
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
    readonly clients: number
    readonly holdMs: number
  }
  readonly memory: {
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
    readonly fibers: number
  }
  readonly memoryBound: { readonly keys: number; readonly ttlMs: number; readonly settleMs: number }
  readonly semaphore: {
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
    readonly clients: number
    readonly holdMs: number
    readonly limit: number
  }
  readonly cluster: {
    readonly rounds: number
    readonly roundMs: number
    readonly warmupMs: number
    readonly fibers: number
    readonly keys: number
    /** Client process counts to measure with (the fibers are split among them). */
    readonly processes: ReadonlyArray<number>
  }
}

export const usage =
  `usage: npm run bench -- [--quick] [--only <scenario>[,<scenario>...]] [--out <file.json>] [--baseline <git-ref>]

scenarios: ${scenarioNames.join(", ")} (or a, b, b', c, d, e, f)
  --quick   about one minute: shorter rounds, fewer of them, 200k keys in memory-bound
  --only    run only these scenarios (repeatable or comma-separated)
  --out     where to write the JSON (default bench/results/latest.json)
  --contenders <id>[,<id>...]
            run only the Redis contenders whose id starts with one of these
            (e.g. floor,redis-semaphore,effect-lock); a partial run, for probing
  --baseline <git-ref>
            also measure effect-lock built from that commit, in the same rounds,
            and print working tree ÷ baseline ratios (built once into
            $TMPDIR/effect-lock-baseline-<sha>-<hash>)
  --baseline-patch <file>
            apply this diff (git apply) to the baseline before building it:
            measures a variant of the ref, e.g. the recorded A/Bs in bench/ab/
  --rounds <n>
            measured rounds of (a), (b), (b'), (c) and (e), instead of the preset
            count; more short rounds make the per-round ratios' median steadier`

export const parseArgs = (argv: ReadonlyArray<string>): BenchConfig => {
  let quick = false
  let output = "bench/results/latest.json"
  const only: Array<ScenarioName> = []
  const contenders: Array<string> = []
  let baseline: string | undefined
  let baselinePatch: string | undefined
  let rounds: number | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.startsWith("--") && arg.includes("=")
      ? arg.split("=", 2) as [string, string]
      : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined) throw new Error(`${flag} needs a value\n${usage}`)
      return v
    }
    switch (flag) {
      case "--quick":
        quick = true
        break
      case "--only":
        for (const name of value().split(",").map((s) => s.trim()).filter((s) => s !== "")) {
          const scenario = (scenarioNames as ReadonlyArray<string>).includes(name)
            ? name as ScenarioName
            : aliases[name]
          if (scenario === undefined) throw new Error(`unknown scenario "${name}"\n${usage}`)
          if (!only.includes(scenario)) only.push(scenario)
        }
        break
      case "--contenders":
        for (const id of value().split(",").map((s) => s.trim())) if (id !== "") contenders.push(id)
        break
      case "--out":
        output = value()
        break
      case "--rounds": {
        const v = value()
        rounds = /^\d+$/.test(v) ? Number(v) : Number.NaN
        if (!(rounds >= 1 && rounds <= 1_000)) {
          throw new Error(`--rounds needs a whole number from 1 to 1000, got "${v}"\n${usage}`)
        }
        break
      }
      case "--baseline":
        baseline = value().trim()
        if (baseline === "") throw new Error(`--baseline needs a git ref (a commit, branch or tag)\n${usage}`)
        break
      case "--baseline-patch":
        baselinePatch = value().trim()
        if (baselinePatch === "") throw new Error(`--baseline-patch needs a file\n${usage}`)
        break
      case "--help":
      case "-h":
        console.log(usage)
        process.exit(0)
        break
      default:
        throw new Error(`unknown option "${arg}"\n${usage}`)
    }
  }
  if (baselinePatch !== undefined && baseline === undefined) {
    throw new Error(`--baseline-patch needs --baseline <git-ref> (the commit it applies to)\n${usage}`)
  }
  const scenarios = only.length === 0 ? [...scenarioNames] : scenarioNames.filter((s) => only.includes(s))
  const config: BenchConfig = quick
    ? {
      quick,
      scenarios,
      output,
      contenders,
      baseline,
      baselinePatch,
      uncontended: { rounds: 2, roundMs: 400, warmupMs: 200 },
      contended: { rounds: 1, roundMs: 1_000, warmupMs: 0, clients: 8, holdMs: 1 },
      crossProcess: { rounds: 1, roundMs: 1_000, warmupMs: 0, clients: 8, holdMs: 1 },
      memory: { rounds: 2, roundMs: 300, warmupMs: 100, fibers: 8 },
      memoryBound: { keys: 200_000, ttlMs: 1, settleMs: 2_500 },
      semaphore: { rounds: 1, roundMs: 1_000, warmupMs: 0, clients: 8, holdMs: 1, limit: 3 },
      cluster: {
        rounds: 1,
        roundMs: 2_000,
        warmupMs: 1_000,
        fibers: 64,
        keys: 10_000,
        processes: [1, 3]
      }
    }
    : {
      quick,
      scenarios,
      output,
      contenders,
      baseline,
      baselinePatch,
      // As many rounds as a scenario has contenders, so that each takes every place
      // in the rotating order once, and short ones, so that a slow stretch of this
      // shared machine falls on all of them rather than on one.
      uncontended: { rounds: 7, roundMs: 700, warmupMs: 500 },
      contended: { rounds: 8, roundMs: 1_000, warmupMs: 300, clients: 8, holdMs: 1 },
      crossProcess: { rounds: 8, roundMs: 1_000, warmupMs: 300, clients: 8, holdMs: 1 },
      memory: { rounds: 8, roundMs: 400, warmupMs: 300, fibers: 8 },
      memoryBound: { keys: 1_000_000, ttlMs: 1, settleMs: 3_000 },
      semaphore: { rounds: 6, roundMs: 1_000, warmupMs: 300, clients: 8, holdMs: 1, limit: 3 },
      cluster: {
        rounds: 3,
        roundMs: 3_000,
        warmupMs: 1_000,
        fibers: 64,
        keys: 10_000,
        processes: [1, 3]
      }
    }
  return rounds === undefined ? config : {
    ...config,
    uncontended: { ...config.uncontended, rounds },
    contended: { ...config.contended, rounds },
    crossProcess: { ...config.crossProcess, rounds },
    memory: { ...config.memory, rounds },
    semaphore: { ...config.semaphore, rounds },
    cluster: { ...config.cluster, rounds }
  }
}
