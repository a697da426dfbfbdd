/**
 * `npx tsx bench/profile.ts [seconds] [withLock|acquire|memory|<contender id>]` — a
 * `node --cpu-prof` profile of the uncontended effect-lock loop of scenario (a)
 * (`memory`: the same loop on `LockKv.layerMemory`), and a summary of the
 * functions with the most self time, and of effect-lock's own code by
 * inclusive time. For effect-lock it also counts, after the profiled window,
 * the fibers started and the bytes allocated per cycle.
 *
 * It re-runs itself as `node --cpu-prof --import tsx bench/profile.ts --child …`;
 * the child starts a redis-server through the test harness, warms up, runs the
 * loop and notes the loop's start and end (monotonic µs, the profile's clock).
 * The parent then reads the .cpuprofile and counts only the samples taken
 * inside that window, so startup and module loading do not blur the picture.
 * tsx compiles each .ts file to one line of JavaScript, so the child also saves
 * the source maps of the project's files (through the inspector, after the
 * loop) and the summary maps positions back to .ts lines. The profile stays in
 * bench/results/profile/ (open it in Chrome DevTools or speedscope).
 */
import { spawn } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import type { RedisClient } from "./contenders/redis.js"

const dir = resolve("bench/results/profile")
const windowFile = join(dir, "window.json")
const mapsFile = join(dir, "sourcemaps.json")
const args = process.argv.slice(2)
const root = `${resolve(".")}/`

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number> | undefined
}
interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}
interface LoopWindow {
  readonly startUs: number
  readonly endUs: number
  readonly cycles: number
  readonly contender: string
  readonly census?: Census | undefined
}
/** Per effect-lock cycle, measured after the profiled window. */
interface Census {
  readonly fibersPerCycle: number
  /** Bytes allocated per cycle, from V8's sampling heap profiler (collected objects included). */
  readonly bytesPerCycle: number
}
interface SourceMap {
  readonly mappings: string
}

// -----------------------------------------------------------------------------
// Source maps: just enough to map (generated line, column) to an original line
// -----------------------------------------------------------------------------

const base64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/** Per generated line: sorted [generated column, original line (0-based)] pairs. */
const decodeMappings = (mappings: string): Array<Array<readonly [number, number]>> => {
  const lines: Array<Array<readonly [number, number]>> = []
  let srcLine = 0
  for (const line of mappings.split(";")) {
    const out: Array<readonly [number, number]> = []
    let col = 0
    for (const segment of line.split(",")) {
      if (segment === "") continue
      const fields: Array<number> = []
      let value = 0
      let shift = 0
      for (const ch of segment) {
        const digit = base64.indexOf(ch)
        value += (digit & 31) << shift
        if (digit & 32) {
          shift += 5
        } else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      col += fields[0] ?? 0
      if (fields.length >= 4) {
        srcLine += fields[2]!
        out.push([col, srcLine])
      }
    }
    lines.push(out)
  }
  return lines
}

const makeLocator = (maps: Record<string, SourceMap>) => {
  const decoded = new Map<string, Array<Array<readonly [number, number]>>>()
  return (url: string, line: number, column: number): number | undefined => {
    const map = maps[url]
    if (map === undefined) return undefined
    let lines = decoded.get(url)
    if (lines === undefined) {
      lines = decodeMappings(map.mappings)
      decoded.set(url, lines)
    }
    let found: number | undefined
    for (const [col, src] of lines[line] ?? []) {
      if (col > column) break
      found = src
    }
    return found === undefined ? undefined : found + 1
  }
}

// -----------------------------------------------------------------------------
// Summary
// -----------------------------------------------------------------------------

const shortUrl = (url: string): string => {
  if (url === "") return "(native)"
  const path = url.replace(/^file:\/\//, "")
  const nm = path.lastIndexOf("node_modules/")
  if (nm !== -1) return path.slice(nm + "node_modules/".length)
  return path.startsWith(root) ? path.slice(root.length) : path
}

/** Which package a frame belongs to: effect, ioredis, node internals, effect-lock's src, … */
const area = (url: string): string => {
  const u = shortUrl(url)
  if (u === "(native)") return "(native: GC, idle, syscalls)"
  if (u.startsWith("node:")) return "node internals"
  const pkg = /^(@[^/]+\/[^/]+|[^/]+)\//.exec(u)
  if (url.includes("node_modules/") && pkg !== null) return pkg[1]!
  if (u.startsWith("src/")) return `effect-lock ${u.split("/").slice(0, -1).join("/")}`
  return u.split("/")[0] ?? u
}

const summarize = (profile: CpuProfile, window: LoopWindow | undefined, maps: Record<string, SourceMap>): string => {
  const locate = makeLocator(maps)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (f: CallFrame): string => {
    const tsLine = locate(f.url, f.lineNumber, f.columnNumber)
    const where = f.url === ""
      ? ""
      : `  ${shortUrl(f.url)}:${tsLine ?? f.lineNumber + 1}${
        tsLine === undefined && maps[f.url] === undefined ? "" : ""
      }`
    return `${f.functionName === "" ? "(anonymous)" : f.functionName}${where}`
  }
  const selfUs = new Map<string, number>()
  const areaUs = new Map<string, number>()
  const inclusiveSrcUs = new Map<string, number>()
  let t = profile.startTime
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    const dt = profile.timeDeltas[i + 1] ?? 0
    if (window !== undefined && (t < window.startUs || t > window.endUs)) continue
    const node = byId.get(profile.samples[i]!)
    if (node === undefined) continue
    const f = node.callFrame
    const name = label(f)
    selfUs.set(name, (selfUs.get(name) ?? 0) + dt)
    areaUs.set(area(f.url), (areaUs.get(area(f.url)) ?? 0) + dt)
    total += dt
    // Inclusive time of effect-lock's own functions: each one on the stack once.
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame
      if (!shortUrl(frame.url).startsWith("src/")) continue
      const srcName = label(frame)
      if (seen.has(srcName)) continue
      seen.add(srcName)
      inclusiveSrcUs.set(srcName, (inclusiveSrcUs.get(srcName) ?? 0) + dt)
    }
  }
  const pct = (us: number) => `${((100 * us) / Math.max(1, total)).toFixed(1).padStart(5)} %`
  const top = (m: Map<string, number>, n: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => `  ${pct(us)}  ${name}`)
  const lines: Array<string> = []
  if (window !== undefined) {
    const seconds = (window.endUs - window.startUs) / 1e6
    lines.push(
      `${window.contender}: ${window.cycles} cycles in ${seconds.toFixed(2)} s = ${
        Math.round(window.cycles / seconds)
      } ops/s ` +
        `(under the profiler); ${(total / 1000).toFixed(0)} ms of samples in the window, ` +
        `${(total / Math.max(1, window.cycles)).toFixed(0)} µs of samples per cycle`
    )
  }
  if (window?.census !== undefined) {
    lines.push(
      `per cycle, outside the profiled window: ${window.census.fibersPerCycle.toFixed(1)} fibers started, ` +
        `~${(window.census.bytesPerCycle / 1024).toFixed(0)} KiB allocated (sampled)`
    )
  }
  return lines.concat(
    ["", "self time by package:"],
    top(areaUs, 12),
    ["", "top self-time functions:"],
    top(selfUs, 30),
    ["", "effect-lock functions by inclusive time (.ts lines via tsx's source maps):"],
    top(inclusiveSrcUs, 20)
  ).join("\n")
}

// -----------------------------------------------------------------------------
// Child: the profiled loop
// -----------------------------------------------------------------------------

/** effect-lock `withLock` on `LockKv.layerMemory`, in the loop the Redis contenders use. */
const memoryClient = async (): Promise<RedisClient> => {
  const { Lock, LockKv } = await import("./lib/effectLock.js")
  const ManagedRuntime = await import("effect/ManagedRuntime")
  const { effectLoop } = await import("./lib/loop.js")
  const runtime = ManagedRuntime.make(LockKv.layerMemory)
  return {
    runLoop: (spec) => runtime.runPromise(effectLoop((section) => Lock.withLock(section, "bench:profile"), spec)),
    close: () => runtime.dispose()
  }
}

/**
 * Fibers started and bytes allocated per effect-lock cycle (`withLock` or scoped
 * `acquire`, on Redis or memory), 1,000 cycles each, after the profiled window.
 */
const takeCensus = async (contenderId: string, url: string): Promise<Census | undefined> => {
  const form = contenderId === "memory" || contenderId === "effect-lock:withLock"
    ? "withLock"
    : contenderId === "effect-lock:acquire"
    ? "acquire"
    : undefined
  if (form === undefined) return undefined
  const { Lock, LockKv } = await import("./lib/effectLock.js")
  const Effect = await import("effect/Effect")
  const Layer = await import("effect/Layer")
  const ManagedRuntime = await import("effect/ManagedRuntime")
  const Supervisor = await import("effect/Supervisor")
  const { Session } = await import("node:inspector")
  class Counter extends Supervisor.AbstractSupervisor<void> {
    started = 0
    value = Effect.void
    override onStart(): void {
      this.started++
    }
  }
  const runtime = ManagedRuntime.make(
    contenderId === "memory"
      ? LockKv.layerMemory
      : LockKv.layerRedis({ url, namespace: "bench-census" }).pipe(Layer.orDie)
  )
  const cycle = form === "withLock"
    ? Lock.withLock(Effect.void, "bench:census")
    : Effect.scoped(Lock.acquire("bench:census"))
  const cycles = 1_000
  const run = (effect: typeof cycle) => runtime.runPromise(Effect.repeatN(effect, cycles - 1))
  try {
    await run(cycle)
    const counter = new Counter()
    await run(cycle.pipe(Effect.supervised(counter)))
    const session = new Session()
    session.connect()
    const post = (method: string, params?: object) =>
      new Promise<unknown>((resolve, reject) =>
        session.post(method, params, (error, result) => (error === null ? resolve(result) : reject(error)))
      )
    await post("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
    await run(cycle)
    const sampled = await post("HeapProfiler.stopSampling") as {
      readonly profile: { readonly samples: ReadonlyArray<{ readonly size: number }> }
    }
    session.disconnect()
    const bytes = sampled.profile.samples.reduce((sum, sample) => sum + sample.size, 0)
    return { fibersPerCycle: counter.started / cycles, bytesPerCycle: bytes / cycles }
  } finally {
    await runtime.dispose()
  }
}

/** The source maps of the project's own files, read through the inspector (after the measured loop). */
const saveSourceMaps = async () => {
  const { Session } = await import("node:inspector")
  const session = new Session()
  session.connect()
  const maps: Record<string, SourceMap> = {}
  session.on("Debugger.scriptParsed", (message) => {
    const { url } = message.params
    const sourceMapURL = message.params.sourceMapURL ?? ""
    const prefix = "data:application/json;base64,"
    if (url.startsWith(`file://${root}`) && !url.includes("node_modules") && sourceMapURL.startsWith(prefix)) {
      maps[url] = JSON.parse(Buffer.from(sourceMapURL.slice(prefix.length), "base64").toString("utf8")) as SourceMap
    }
  })
  await new Promise<void>((done) => session.post("Debugger.enable", () => done()))
  session.disconnect()
  writeFileSync(mapsFile, JSON.stringify(maps))
}

const child = async (seconds: number, contenderId: string) => {
  const { startRedisServer } = await import("../test/support/redisServer.js")
  const { findContender } = await import("./contenders/redis.js")
  const { LoopStats } = await import("./lib/loop.js")
  const { now } = await import("./lib/time.js")
  const server = await startRedisServer()
  try {
    const client = contenderId === "memory"
      ? await memoryClient()
      : await findContender(contenderId).make(server.url, "bench:profile")
    await client.runLoop({ until: now() + 1_000, holdMs: 0, probe: undefined, stats: new LoopStats() })
    const stats = new LoopStats()
    const startUs = Number(process.hrtime.bigint() / 1000n)
    await client.runLoop({ until: now() + seconds * 1000, holdMs: 0, probe: undefined, stats })
    const endUs = Number(process.hrtime.bigint() / 1000n)
    await client.close()
    const census = await takeCensus(contenderId, server.url)
    const window: LoopWindow = { startUs, endUs, cycles: stats.acquisitions, contender: contenderId, census }
    writeFileSync(windowFile, JSON.stringify(window))
    await saveSourceMaps()
  } finally {
    await server.stop()
  }
}

if (args[0] === "--child") {
  await child(Number(args[1]), args[2]!)
  process.exit(0)
} else {
  const seconds = Number(args[0] ?? 5)
  const form = args[1] ?? "withLock"
  const contenderId = form === "withLock" || form === "acquire" ? `effect-lock:${form}` : form
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const code = await new Promise<number | null>((done) => {
    spawn(
      process.execPath,
      [
        "--cpu-prof",
        "--cpu-prof-dir",
        dir,
        "--cpu-prof-interval",
        "200",
        "--import",
        import.meta.resolve("tsx"),
        fileURLToPath(import.meta.url),
        "--child",
        String(seconds),
        contenderId
      ],
      { stdio: "inherit" }
    ).on("exit", done)
  })
  if (code !== 0) throw new Error(`profiled child exited with ${code}`)
  const file = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0]
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`)
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const window = JSON.parse(readFileSync(windowFile, "utf8")) as LoopWindow
  const maps = JSON.parse(readFileSync(mapsFile, "utf8")) as Record<string, SourceMap>
  const summary = summarize(profile, window, maps)
  writeFileSync(join(dir, "summary.txt"), `${summary}\n`)
  console.log(summary)
  console.log(`\nprofile: ${file}\nsummary: ${join(dir, "summary.txt")}`)
}
