/**
 * Soak test (not part of `npm test`): `npm run soak [-- --seconds 20]`.
 *
 * Starts its own redis-server, runs `--processes` worker processes (worker.ts)
 * of `--fibers` fibers each, hammering `--keys` keys with a short `--ttl`,
 * SIGKILLs a random worker every `--kill-every` ms or so and starts a new one,
 * for `--seconds`. Inside every section a Redis-side marker detects overlaps
 * (see worker.ts). At the end it prints a table and a JSON line, and exits 1
 * when it found a violation of mutual exclusion:
 *
 * - overlap: a section entered while another live process's section had not
 *   left (a marker left by a SIGKILLed process is stale, not an overlap);
 * - exit mismatch: a section found, when leaving, that someone else had
 *   entered meanwhile;
 * - fence regression: a section entered with a fence not above the last one
 *   entered on that key (an older holder still running after a newer one began).
 */
import { Redis } from "ioredis"
import { fileURLToPath } from "node:url"
import { type Child, spawnTsx } from "../redis/faults/support.js"
import { startRedisServer } from "../support/redisServer.js"

const options = {
  seconds: 20,
  processes: 4,
  fibers: 3,
  keys: 3,
  ttl: 500,
  "kill-every": 1_500,
  /** 1: a self-check of the detector (sections ignore a lost lock): violations expected. */
  unsafe: 0
}
type OptionName = keyof typeof options
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const name = argv[i]!.replace(/^--/, "")
  const value = Number(argv[i + 1])
  if (!(name in options) || !Number.isFinite(value) || value < (name === "unsafe" ? 0 : 1)) {
    console.error(`usage: soak [--${Object.keys(options).join(" N] [--")} N]`)
    process.exit(2)
  }
  options[name as OptionName] = value
  i++
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const namespace = "soak"
const workerScript = fileURLToPath(new URL("./worker.ts", import.meta.url))

interface Suspect {
  readonly key: string
  readonly owner: string
  readonly at: number
  readonly pid: number
}

const main = async () => {
  const server = await startRedisServer()
  const raw = new Redis(server.url)
  const live = new Map<number, Child>()
  const kills: Array<{ readonly pid: number; readonly at: number }> = []
  let spawned = 0
  // Whatever happens, never outlive the budget by more than a minute.
  const watchdog = setTimeout(() => {
    for (const child of live.values()) child.process.kill("SIGKILL")
    console.error("soak: did not finish in time")
    process.exit(3)
  }, (options.seconds + 60) * 1_000)
  watchdog.unref()

  const spawnWorker = async () => {
    const child = spawnTsx(workerScript, [
      server.url,
      namespace,
      String(options.keys),
      String(options.fibers),
      String(options.ttl),
      ...(options.unsafe === 1 ? ["unsafe"] : [])
    ])
    spawned++
    live.set(child.pid, child)
    await child.line((line) => line.includes("\"ready\""), 30_000)
    return child
  }

  try {
    await Promise.all(Array.from({ length: options.processes }, spawnWorker))
    const started = Date.now()
    const end = started + options.seconds * 1_000
    process.stderr.write(
      `soak: ${options.processes} processes × ${options.fibers} fibers, ${options.keys} keys, ttl ${options.ttl} ms, ` +
        `${options.seconds} s${options.unsafe === 1 ? " (UNSAFE self-check: violations expected)" : ""}\n`
    )
    while (Date.now() < end) {
      await sleep(Math.min(end - Date.now(), options["kill-every"] * (0.5 + Math.random())))
      if (Date.now() >= end) break
      const victims = [...live.values()]
      const victim = victims[Math.floor(Math.random() * victims.length)]!
      const at = await victim.kill()
      kills.push({ pid: victim.pid, at })
      live.delete(victim.pid)
      await spawnWorker()
    }
    const elapsed = (Date.now() - started) / 1_000

    // Stop the survivors gracefully (they release their locks), SIGKILL after 5 s.
    await Promise.all([...live.values()].map(async (child) => {
      child.process.kill("SIGTERM")
      const stopped = await Promise.race([child.exited().then(() => true), sleep(5_000).then(() => false)])
      if (!stopped) await child.kill()
    }))
    live.clear()

    const stats = await raw.hgetall(`${namespace}-soak:stats`)
    const list = async (name: string) =>
      (await raw.lrange(`${namespace}-soak:${name}`, 0, -1)).map((line) => JSON.parse(line) as Record<string, unknown>)
    const suspects = (await list("suspects")) as unknown as ReadonlyArray<Suspect>
    const exitMismatches = await list("exitMismatches")
    const fenceRegressions = await list("fenceRegressions")
    const lags = Object.values(await raw.hgetall(`${namespace}-soak:lag`))
      .map((value) => JSON.parse(value) as { readonly max: number; readonly p99: number })

    // A marker whose owner had been SIGKILLed before it was found is stale: that process was gone.
    const killedAt = new Map(kills.map((k) => [k.pid, k.at]))
    const overlaps = suspects.filter((s) => {
      const ownerPid = Number(s.owner.split(":")[0])
      const killed = killedAt.get(ownerPid)
      return killed === undefined || killed > s.at
    })
    const staleMarkers = suspects.length - overlaps.length
    const violations = overlaps.length + exitMismatches.length + fenceRegressions.length
    const n = (field: string) => Number(stats[field] ?? 0)
    const summary = {
      seconds: Math.round(elapsed * 10) / 10,
      processes: options.processes,
      fibersPerProcess: options.fibers,
      keys: options.keys,
      ttlMs: options.ttl,
      workersStarted: spawned,
      kills: kills.length,
      acquisitions: n("acquired"),
      acquisitionsPerSecond: Math.round(n("acquired") / elapsed),
      sectionsLongerThanTtl: n("longSections"),
      lostLocks: n("lost"),
      notAcquired: n("notAcquired"),
      storeErrors: n("storeErrors"),
      staleMarkersFromKilledHolders: staleMarkers,
      overlaps: overlaps.length,
      exitMismatches: exitMismatches.length,
      fenceRegressions: fenceRegressions.length,
      violations,
      maxEventLoopDelayMs: Math.round(Math.max(0, ...lags.map((l) => l.max))),
      p99EventLoopDelayMs: Math.round(Math.max(0, ...lags.map((l) => l.p99)))
    }
    const width = Math.max(...Object.keys(summary).map((k) => k.length))
    console.log("\nsoak results")
    console.log("-".repeat(width + 12))
    for (const [name, value] of Object.entries(summary)) {
      console.log(`${name.padEnd(width)}  ${String(value).padStart(8)}`)
    }
    console.log("-".repeat(width + 12))
    if (violations > 0) {
      console.log("violations:")
      for (const v of [...overlaps, ...exitMismatches, ...fenceRegressions].slice(0, 20)) console.log(JSON.stringify(v))
    }
    console.log(JSON.stringify(summary))
    return violations > 0 ? 1 : 0
  } finally {
    clearTimeout(watchdog)
    for (const child of live.values()) await child.kill()
    raw.disconnect()
    await server.stop()
  }
}

main().then((code) => process.exit(code), (error) => {
  console.error(error)
  process.exit(2)
})
