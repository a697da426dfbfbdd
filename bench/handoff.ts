/**
 * `npx tsx bench/handoff.ts [effect-lock|redis-semaphore] [processes] [seconds]` — where the
 * time of a contended acquisition goes across processes: scenario (b') (one key, a 1 ms hold
 * with an INCR/DECR probe inside, one client per process) with a timestamp at each step, on
 * the wall clock every process shares (`performance.timeOrigin + performance.now()`). Run
 * `npm run build` first: effect-lock is loaded from `dist/`, as in the bench.
 *
 * Steps per acquisition, p50/p90/p99/max:
 * - A section starts, I the probe's INCR answered, S the 1 ms sleep over, B the DECR answered
 *   (the section ends);
 * - W the release written to the socket, R its reply read, C `withLock` returned (effect-lock);
 * - M the next holder's process reads its hand-off message (effect-lock), then its A.
 * "B → next A" is the hand-off: from one section's end to the next section's start in
 * another process (a library whose releaser takes the lock again has fewer of those).
 *
 * It starts its own redis-server (test harness); the workers are this file, re-run with
 * `--worker`. A scratch tool for the README's "where the time goes", not a benchmark: its
 * timestamps cost a little, and it measures one library at a time.
 */
import { fork } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import type { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

type Library = "effect-lock" | "redis-semaphore"
type Step = "A" | "I" | "S" | "B" | "W" | "R" | "C" | "M"
type Event = readonly [Step, number]

const wall = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const warmupMs = 2_000

const worker = async (library: Library, url: string, out: string): Promise<void> => {
  const { Redis } = await import("ioredis")
  const events: Array<Event> = []
  const mark = (step: Step) => events.push([step, wall()])
  // The release is the only command with 10 RESP parts (EVALSHA sha 5 KEYS token key).
  const net = await import("node:net")
  const write = net.Socket.prototype.write
  net.Socket.prototype.write = function(this: Socket, data: unknown, ...rest: Array<unknown>) {
    if (typeof data === "string" && data.startsWith("*10\r\n")) mark("W")
    return (write as (...args: Array<unknown>) => boolean).call(this, data, ...rest)
  } as typeof write
  const emit = Redis.prototype.emit
  Redis.prototype.emit = function(this: InstanceType<typeof Redis>, name: string | symbol, ...args: Array<unknown>) {
    if (name === "messageBuffer") mark("M")
    return emit.call(this, name, ...args)
  }
  // Replies as ioredis reads them: effect-lock's release answers [2 or 3, channel, message] when it hands on.
  type WithReturnReply = { prototype: { returnReply: (reply: unknown) => void } }
  const dataHandler = (await import("ioredis/built/DataHandler.js")) as unknown as {
    default: WithReturnReply & { default?: WithReturnReply }
  }
  const handler = dataHandler.default.default ?? dataHandler.default
  const returnReply = handler.prototype.returnReply
  handler.prototype.returnReply = function(this: unknown, reply: unknown) {
    if (Array.isArray(reply) && (reply[0] === 2 || reply[0] === 3)) mark("R")
    return returnReply.call(this, reply)
  }
  const probe = new Redis(url)
  const section = async () => {
    mark("A")
    await probe.incr("handoff:probe")
    mark("I")
    await sleep(1)
    mark("S")
    await probe.decr("handoff:probe")
    mark("B")
  }
  let run: (until: number) => Promise<void>
  if (library === "effect-lock") {
    const Effect = await import("effect/Effect")
    const Layer = await import("effect/Layer")
    const ManagedRuntime = await import("effect/ManagedRuntime")
    const { Lock, LockKv } = await import("./lib/effectLock.js")
    const runtime = ManagedRuntime.make(LockKv.layerRedis({ url, namespace: "handoff" }).pipe(Layer.orDie))
    await runtime.runPromise(LockKv.LockKv)
    const locked = Lock.withLock(Effect.promise(section), "k")
    run = (until) =>
      runtime.runPromise(Effect.gen(function*() {
        while (Date.now() < until) {
          const reply = yield* Effect.exit(locked)
          if (reply._tag === "Success") mark("C")
        }
      }))
  } else {
    const { Mutex } = await import("redis-semaphore")
    const client = new Redis(url)
    run = async (until) => {
      while (Date.now() < until) {
        const mutex = new Mutex(client, "k")
        await mutex.acquire()
        await section()
        await mutex.release()
        mark("C")
      }
    }
  }
  process.on("message", async (message: { startAt: number; seconds: number }) => {
    await sleep(message.startAt - Date.now())
    await run(message.startAt + warmupMs)
    events.length = 0
    await run(message.startAt + warmupMs + message.seconds * 1000)
    await writeFile(out, JSON.stringify(events))
    process.exit(0)
  })
  process.send!("ready")
}

const quantiles = (values: ReadonlyArray<number>): string => {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (p: number) => sorted.length === 0 ? "-" : (sorted[Math.floor(p * (sorted.length - 1))]! * 1000).toFixed(0)
  return `n=${sorted.length}  p50 ${at(0.5)}  p90 ${at(0.9)}  p99 ${at(0.99)}  max ${at(1)} µs`
}

const main = async (): Promise<void> => {
  const library = (process.argv[2] ?? "effect-lock") as Library
  if (library !== "effect-lock" && library !== "redis-semaphore") throw new Error(`unknown library ${library}`)
  const processes = Number(process.argv[3] ?? 8)
  const seconds = Number(process.argv[4] ?? 4)
  const { startRedisServer } = await import("../test/support/redisServer.js")
  const server = await startRedisServer()
  const dir = join(tmpdir(), `effect-lock-handoff-${process.pid}`)
  const self = fileURLToPath(import.meta.url)
  try {
    const files = Array.from({ length: processes }, (_, i) => `${dir}-${i}.json`)
    const children = files.map((file) =>
      fork(self, ["--worker", library, server.url, file], { execArgv: ["--import", "tsx"] })
    )
    await Promise.all(children.map((child) => new Promise((resolve) => child.once("message", resolve))))
    const startAt = Date.now() + 300
    for (const child of children) child.send({ startAt, seconds })
    await Promise.all(children.map((child) => new Promise((resolve) => child.once("exit", resolve))))
    const all: Array<{ step: Step; at: number; process: number }> = []
    files.forEach((file, i) => {
      for (const [step, at] of JSON.parse(readFileSync(file, "utf8")) as Array<Event>) {
        all.push({ step, at, process: i })
      }
      rmSync(file, { force: true })
    })
    all.sort((a, b) => a.at - b.at)
    const gaps: Record<string, Array<number>> = {}
    const add = (name: string, ms: number) => (gaps[name] ??= []).push(ms)
    const last: Record<string, Map<number, number>> = {}
    const lastOf = (step: Step, p: number) => last[step]?.get(p)
    let lastEnd: { at: number; process: number } | undefined
    for (const e of all) {
      const since = (step: Step) => {
        const t = lastOf(step, e.process)
        return t === undefined ? undefined : e.at - t
      }
      if (e.step === "I") add("A → I  probe INCR", since("A")!)
      if (e.step === "S") add("I → S  sleep 1 ms", since("I")!)
      if (e.step === "B") add("S → B  probe DECR", since("S")!)
      if (e.step === "W" && lastEnd?.process === e.process) add("B → W  release written", e.at - lastEnd.at)
      if (e.step === "R" && lastEnd?.process === e.process) add("B → R  release reply read", e.at - lastEnd.at)
      if (e.step === "C" && lastEnd?.process === e.process) add("B → C  returned", e.at - lastEnd.at)
      if (e.step === "M" && lastEnd !== undefined) add("B → M  waiter reads its message", e.at - lastEnd.at)
      if (e.step === "A") {
        const message = lastOf("M", e.process)
        if (message !== undefined && lastEnd !== undefined && message > lastEnd.at) {
          add("M → A  section starts", e.at - message)
        }
        if (lastEnd !== undefined && lastEnd.process !== e.process) add("B → next A, other process", e.at - lastEnd.at)
        if (lastEnd !== undefined && lastEnd.process === e.process) add("B → next A, same process", e.at - lastEnd.at)
      }
      if (e.step === "B") lastEnd = { at: e.at, process: e.process }
      ;(last[e.step] ??= new Map()).set(e.process, e.at)
    }
    const acquisitions = all.filter((e) => e.step === "A").length
    console.log(
      `${library}, ${processes} processes, ${seconds} s: ${(acquisitions / seconds).toFixed(0)} acquisitions/s`
    )
    for (const [name, values] of Object.entries(gaps)) console.log(`${name.padEnd(34)} ${quantiles(values)}`)
  } finally {
    await server.stop()
  }
}

if (process.argv[2] === "--worker") {
  await worker(process.argv[3] as Library, process.argv[4]!, process.argv[5]!)
} else {
  await main()
}
