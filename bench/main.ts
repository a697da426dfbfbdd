/**
 * The bench proper: starts one redis-server through the test harness, runs the
 * selected scenarios, prints the tables to stdout (progress goes to stderr) and
 * writes the JSON.
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { dirname, resolve } from "node:path"
import { startRedisServer } from "../test/support/redisServer.js"
import { type Baseline, BaselineError, prepareBaseline } from "./lib/baseline.js"
import { connectServerStats, installSentCounter } from "./lib/commands.js"
import { type Comparison, comparisonTable } from "./lib/compare.js"
import { parseArgs, type ScenarioName } from "./lib/config.js"
import { num, renderTable, section } from "./lib/table.js"
import type { Target } from "./lib/targets.js"
import { runCluster } from "./scenarios/cluster.js"
import { runContended } from "./scenarios/contended.js"
import { runCrossProcess } from "./scenarios/crossProcess.js"
import { runMemory } from "./scenarios/memory.js"
import { runMemoryBound } from "./scenarios/memoryBound.js"
import { runSemaphore } from "./scenarios/semaphore.js"
import { runUncontended } from "./scenarios/uncontended.js"

installSentCounter()

const config = (() => {
  try {
    return parseArgs(process.argv.slice(2))
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error))
    process.exit(2)
  }
})()

const log = (line: string) => process.stderr.write(`${line}\n`)
const began = Date.now()
const elapsed = () => `${((Date.now() - began) / 1000).toFixed(1)} s`

/**
 * The tree measured: HEAD, the files of src/ that differ from it, and a
 * fingerprint of those differences. The engine changes under the bench while
 * others work: the worker processes of (b') load src/ when they start, so a run
 * during which the fingerprint changed may have measured two versions.
 */
const readTree = () => {
  const git = (...args: Array<string>) => spawnSync("git", args, { encoding: "utf8" }).stdout?.trimEnd() ?? ""
  const head = git("rev-parse", "--short", "HEAD")
  const status = git("status", "--porcelain", "--untracked-files=all", "--", "src")
  const dirtySrc = status.split("\n").filter((l) => l !== "").map((l) => l.slice(3))
  const untracked = dirtySrc.filter((f) => status.includes(`?? ${f}`)).map((f) => {
    try {
      return readFileSync(f, "utf8")
    } catch {
      return ""
    }
  })
  const fingerprint = createHash("sha1").update(head).update(git("diff", "HEAD", "--", "src")).update(
    untracked.join("\0")
  )
    .digest("hex").slice(0, 12)
  return { head, dirtySrc, fingerprint }
}
const tree = readTree()

/** `--baseline`: resolved, built (once) and loaded before anything starts; any failure exits 2. */
const baseline: Baseline | undefined = config.baseline === undefined ? undefined : await (async (ref) => {
  try {
    const loaded = await prepareBaseline(ref, config.baselinePatch, log)
    log(
      `bench: baseline ${loaded.ref} = ${loaded.sha.slice(0, 12)}, from ${loaded.dir}${
        loaded.built ? " (built now)" : ""
      }`
    )
    if (loaded.buildWarning !== undefined) log(`bench: WARNING: ${loaded.buildWarning}`)
    return loaded
  } catch (error) {
    // A BaselineError says all there is to say; anything else keeps its stack.
    const message = error instanceof BaselineError
      ? error.message
      : error instanceof Error
      ? error.stack ?? error.message
      : String(error)
    console.error(`bench: --baseline ${ref}: ${message}`)
    process.exit(2)
  }
})(config.baseline)

const server = await startRedisServer()
const stats = await connectServerStats(server.url)
const results: Record<string, unknown> = {}
const tables: Array<string> = []
const targets: Array<Target> = []
const comparisons: Array<Comparison> = []

try {
  const redisVersion = await stats.version()
  log(
    `bench: redis-server ${redisVersion} on ${server.url} (pid ${server.pid}); ${
      config.quick ? "quick" : "full"
    } run of ${config.scenarios.join(", ")}` +
      (config.contenders.length > 0 ? `, only contenders ${config.contenders.join(", ")} (partial)` : "") +
      (baseline === undefined ? "" : `, against baseline ${baseline.ref} (${baseline.sha.slice(0, 12)})`)
  )
  results.meta = {
    date: new Date().toISOString(),
    mode: config.quick ? "quick" : "full",
    scenarios: config.scenarios,
    node: process.version,
    redis: redisVersion,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    tree,
    config
  }

  interface Outcome {
    readonly json: unknown
    readonly table: string
    readonly targets: ReadonlyArray<Target>
    readonly comparisons?: ReadonlyArray<Comparison>
  }
  const scenarios: Record<ScenarioName, () => Promise<Outcome>> = {
    uncontended: async () => {
      const { comparisons, table, targets, ...json } = await runUncontended(
        server.url,
        stats,
        config.uncontended,
        log,
        config.contenders,
        baseline
      )
      return { json, table, targets, comparisons }
    },
    contended: async () => {
      const { comparisons, table, targets, ...json } = await runContended(
        server.url,
        stats,
        config.contended,
        log,
        config.contenders,
        baseline
      )
      return { json, table, targets, comparisons }
    },
    "cross-process": async () => {
      const { comparisons, table, targets, ...json } = await runCrossProcess(
        server.url,
        stats,
        config.crossProcess,
        log,
        config.contenders,
        baseline
      )
      return { json, table, targets, comparisons }
    },
    memory: async () => {
      const { comparisons, table, targets, ...json } = await runMemory(config.memory, log, baseline)
      return { json, table, targets, comparisons }
    },
    "memory-bound": async () => {
      const { table, ...json } = await runMemoryBound(config.memoryBound, log)
      return { json, table, targets: [] }
    },
    semaphore: async () => {
      const { table, targets, ...json } = await runSemaphore(server.url, config.semaphore, log)
      return { json, table, targets }
    },
    cluster: async () => {
      const { table, targets, ...json } = await runCluster(config.cluster, log)
      return { json, table, targets }
    }
  }

  for (const scenario of config.scenarios) {
    log(`bench: ${scenario} … (${elapsed()})`)
    try {
      const outcome = await scenarios[scenario]()
      results[scenario] = outcome.json
      tables.push(outcome.table)
      for (const target of outcome.targets) targets.push(target)
      for (const comparison of outcome.comparisons ?? []) comparisons.push(comparison)
    } catch (error) {
      // One broken scenario (or contender) must not cost the others' figures.
      const message = error instanceof Error ? error.stack ?? error.message : String(error)
      log(`bench: ${scenario} failed: ${message}`)
      results[scenario] = { error: message }
      tables.push(section(scenario), `FAILED: ${message.split("\n")[0]}`)
    }
  }

  const targetTable = (rows: ReadonlyArray<Target>) =>
    renderTable(
      ["scenario", "measure", "value", "target", "verdict"],
      rows.map((t) => [
        t.scenario,
        t.name + (t.note === undefined ? "" : ` (${t.note})`),
        // Enough digits that a FAIL never prints as the target itself (3.004 vs ≤ 3).
        num(t.value, Math.abs(t.value) >= 100 ? 1 : 3),
        t.target,
        t.verdict
      ])
    )
  if (baseline !== undefined) {
    tables.push(comparisonTable(`@${baseline.ref} (${baseline.sha.slice(0, 12)})`, comparisons))
    if (baseline.buildWarning !== undefined) tables.push(`WARNING: ${baseline.buildWarning}`)
    results.baseline = {
      ref: baseline.ref,
      sha: baseline.sha,
      dir: baseline.dir,
      builtThisRun: baseline.built,
      buildWarning: baseline.buildWarning,
      comparisons
    }
  }
  const own = targets.filter((t) => t.reference !== true)
  const references = targets.filter((t) => t.reference === true)
  tables.push(
    section("targets (issue 4), from this run"),
    own.length === 0 ? "(none in the scenarios run)" : targetTable(own)
  )
  if (references.length > 0) {
    tables.push(
      section("the same targets held to the reference rows (not libraries): can a lock of that kind meet them here?"),
      targetTable(references)
    )
  }
  const treeAfter = readTree()
  const changed = treeAfter.fingerprint !== tree.fingerprint
  if (changed) {
    tables.push(
      `\nWARNING: src/ changed during the run (${tree.head}/${tree.fingerprint} → ${treeAfter.head}/${treeAfter.fingerprint}): ` +
        "scenarios may have measured different versions; run again on a quiet tree."
    )
  }
  results.treeAfter = treeAfter
  const seconds = (Date.now() - began) / 1000
  tables.push(
    `\nbench finished in ${seconds.toFixed(1)} s (${config.quick ? "--quick" : "full run"}) on ${tree.head}` +
      (tree.dirtySrc.length === 0 ? "" : ` + uncommitted ${tree.dirtySrc.join(", ")}`) +
      `; JSON: ${config.output}`
  )
  results.targets = targets
  results.durationSeconds = seconds
  console.log(tables.join("\n"))

  const out = resolve(config.output)
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(
    out,
    `${JSON.stringify(results, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`
  )
} finally {
  await stats.close()
  await server.stop()
}
process.exit(0)
