/**
 * (f) `cluster`: many distinct keys over a 3-master Redis Cluster vs a
 * 1-master one (both started here, no replicas, the same client code), with
 * the same total number of fibers spread over 1 or several client processes
 * (`bench/cluster/worker.ts`). Acquisitions/s should scale with the masters
 * while the servers are the bottleneck; on a small machine the clients (and
 * the servers themselves) share the same cores, which the CPU columns show.
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { fileURLToPath } from "node:url"
import { redisCli, type RedisClusterHandle, startRedisCluster } from "../../test/support/redisHa.js"
import type { BenchConfig } from "../lib/config.js"
import { int, num, renderTable, section } from "../lib/table.js"
import { atLeast, type Target } from "../lib/targets.js"

const workerPath = fileURLToPath(new URL("../cluster/worker.ts", import.meta.url))

interface WorkerResult {
  readonly acquisitions: number
  readonly failures: number
  readonly cpuUs: number
}

interface Worker {
  readonly ready: Promise<void>
  readonly go: (startAt: number) => void
  readonly result: Promise<WorkerResult>
}

/** Starts a worker: `ready` once it has connected and warmed up; `go` starts its window. */
const startWorker = (args: object): Worker => {
  const child = spawn(process.execPath, ["--import", import.meta.resolve("tsx"), workerPath, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  let out = ""
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    onReady = resolve
  })
  child.stdout!.on("data", (chunk) => {
    out += String(chunk)
    if (out.includes("ready\n")) onReady()
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000)
  const result = new Promise<WorkerResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      onReady()
      try {
        if (code !== 0) throw new Error(`cluster worker exited with ${code}`)
        resolve(JSON.parse(out.trim().split("\n").pop()!) as WorkerResult)
      } catch (error) {
        reject(error)
      }
    })
  })
  return { ready, go: (startAt) => child.stdin!.write(`go ${startAt}\n`), result }
}

/** used_cpu_sys + used_cpu_user of every node, seconds. */
const serverCpu = async (cluster: RedisClusterHandle): Promise<number> => {
  let total = 0
  for (const node of cluster.nodes) {
    const info = await redisCli(node.port, ["INFO", "cpu"])
    for (const field of ["used_cpu_sys", "used_cpu_user"]) {
      total += Number(new RegExp(`${field}:([0-9.]+)`).exec(info)?.[1] ?? 0)
    }
  }
  return total
}

interface Measure {
  readonly masters: number
  readonly processes: number
  readonly rate: number
  readonly failures: number
  /** Client CPU, in cores (CPU seconds per second of the window). */
  readonly clientCores: number
  readonly serverCores: number
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const runCluster = async (
  config: BenchConfig["cluster"],
  log: (line: string) => void
): Promise<{ readonly table: string; readonly targets: ReadonlyArray<Target>; readonly measures: Array<Measure> }> => {
  log("  (f) starting a 1-master and a 3-master cluster")
  const clusters = new Map<number, RedisClusterHandle>()
  try {
    clusters.set(1, await startRedisCluster({ masters: 1, replicasPerMaster: 0 }))
    clusters.set(3, await startRedisCluster({ masters: 3, replicasPerMaster: 0 }))
    const measures: Array<Measure> = []
    for (let round = 0; round < config.rounds; round++) {
      for (const processes of config.processes) {
        // Alternate which cluster goes first: a slow stretch of the machine falls on both.
        const order = round % 2 === 0 ? [1, 3] : [3, 1]
        for (const masters of order) {
          const cluster = clusters.get(masters)!
          const perProcess = Math.max(1, Math.round(config.fibers / processes))
          const workers = Array.from({ length: processes }, () =>
            startWorker({
              nodes: cluster.startupNodes,
              namespace: `bench-e-${randomUUID().slice(0, 8)}`,
              concurrency: perProcess,
              keys: config.keys,
              warmupMs: config.warmupMs,
              durationMs: config.roundMs
            }))
          await Promise.all(workers.map((w) => w.ready))
          const cpuBefore = await serverCpu(cluster)
          const startAt = Date.now() + 100
          for (const w of workers) w.go(startAt)
          const results = await Promise.all(workers.map((w) => w.result))
          const cpuAfter = await serverCpu(cluster)
          const seconds = config.roundMs / 1000
          const measure: Measure = {
            masters,
            processes,
            rate: results.reduce((n, r) => n + r.acquisitions, 0) / seconds,
            failures: results.reduce((n, r) => n + r.failures, 0),
            clientCores: results.reduce((n, r) => n + r.cpuUs, 0) / 1e6 / seconds,
            serverCores: (cpuAfter - cpuBefore) / seconds
          }
          measures.push(measure)
          log(
            `  (f) round ${round + 1}: ${masters} master(s), ${processes} process(es): ${int(measure.rate)} acq/s, ` +
              `client ${num(measure.clientCores)} cores`
          )
        }
      }
    }
    const rows: Array<Array<string>> = []
    const targets: Array<Target> = []
    for (const processes of config.processes) {
      const of = (masters: number) => measures.filter((m) => m.masters === masters && m.processes === processes)
      const rate = (masters: number) => median(of(masters).map((m) => m.rate))
      for (const masters of [1, 3]) {
        const ms = of(masters)
        rows.push([
          `${masters} master${masters > 1 ? "s" : ""}`,
          String(processes),
          int(rate(masters)),
          num(masters === 3 ? rate(3) / rate(1) : 1, 2),
          num(median(ms.map((m) => m.clientCores)), 2),
          num(median(ms.map((m) => m.serverCores)), 2),
          int(ms.reduce((n, m) => n + m.failures, 0))
        ])
      }
      targets.push(
        atLeast(
          "(f) cluster",
          `acquisitions/s, 3 masters ÷ 1, ${processes} client process(es)`,
          rate(3) / rate(1),
          2.5,
          "where CPU allows"
        )
      )
    }
    const table = [
      section(
        `(f) cluster: Lock.withLock(Effect.void) on ${config.keys} distinct keys, ${config.fibers} fibers in all, ` +
          `${config.rounds} × ${config.roundMs} ms (medians)`
      ),
      renderTable(
        ["target", "processes", "acq/s", "÷ 1 master", "client cores", "server cores", "failures"],
        rows
      )
    ].join("\n")
    return { table, targets, measures }
  } finally {
    for (const cluster of clusters.values()) await cluster.stop()
  }
}
