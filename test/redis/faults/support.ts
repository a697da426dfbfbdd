/**
 * Helpers shared by the fault-injection, property and security suites: a raw
 * ioredis client to look at (and hurt) the server from outside the store, a
 * stopwatch, a store held in a Scope of its own, and `tsx` child processes
 * whose stdout lines can be awaited.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import * as LockKv from "../../../src/LockKv.js"

/** A plain ioredis client, closed with the scope. `commandTimeout` only when given. */
export const rawClient = (url: string, options: { readonly commandTimeout?: number } = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 1,
        ...(options.commandTimeout === undefined ? {} : { commandTimeout: options.commandTimeout })
      })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().then(() => {}, () => client.disconnect()))
  )

/** The store of `layer`, built into the current Scope (so a test can outlive faults without rebuilding it). */
export const buildStore = <E>(layer: Layer.Layer<LockKv.LockKv, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, LockKv.LockKv))

/** Runs `effect` and measures it in wall-clock milliseconds. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.either(effect)
    return { result, started, elapsed: Date.now() - started }
  })

/** Polls `check` every `every` ms until it holds; false after `ms`. */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, ms: number, every = 50) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (yield* check) return true
      yield* Effect.sleep(Duration.millis(every))
    }
    return yield* check
  })

/** Calls `probe` until it succeeds, at most `ms`, keeping the tag and duration of every failure. */
export const untilSucceeds = <A, E extends { readonly _tag: string }, R>(probe: Effect.Effect<A, E, R>, ms: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    const failures: Array<{ readonly tag: string; readonly elapsed: number }> = []
    while (Date.now() < deadline) {
      const { elapsed, result } = yield* timed(probe)
      if (Either.isRight(result)) return { ok: true as const, value: result.right, failures }
      failures.push({ tag: result.left._tag, elapsed })
      yield* Effect.sleep(Duration.millis(100))
    }
    return { ok: false as const, failures }
  })

/** The id of the (single) client connection named `name`, from CLIENT LIST. */
export const clientId = (raw: Redis, name: string) =>
  Effect.promise(async () => {
    const list = String(await raw.call("CLIENT", "LIST"))
    const ids = list.split("\n")
      .filter((line) => new RegExp(`\\bname=${name}(\\s|$)`).test(line))
      .map((line) => /\bid=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined)
    if (ids.length !== 1) throw new Error(`expected one connection named ${name}, found ${ids.length}:\n${list}`)
    return ids[0]!
  })

// -----------------------------------------------------------------------------
// Child processes
// -----------------------------------------------------------------------------

/**
 * tsx's loader, given to node itself: the `tsx` CLI would run the script in a
 * grandchild process, and a SIGKILL to the CLI leaves that grandchild running.
 */
export const tsxLoader = new URL("../../../node_modules/tsx/dist/loader.mjs", import.meta.url).href

export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  /** Resolves with the first stdout line (past or future) that `match` accepts; rejects after `ms` or on exit. */
  readonly line: (match: (line: string) => boolean, ms: number) => Promise<string>
  readonly stderr: () => string
  /** Resolves when the process has exited (at once if it already has). */
  readonly exited: () => Promise<void>
  /** SIGKILL and wait for the exit; the time the signal was sent. */
  readonly kill: () => Promise<number>
}

/** Starts `node --import tsx <script> ...args`: one process; stdout is read line by line. */
export const spawnTsx = (script: string, args: ReadonlyArray<string>): Child => {
  const proc = spawn(process.execPath, ["--import", tsxLoader, script, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  const lines: Array<string> = []
  const listeners = new Set<() => void>()
  let buffer = ""
  let stderr = ""
  let exited = false
  proc.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8")
    let end: number
    while ((end = buffer.indexOf("\n")) !== -1) {
      lines.push(buffer.slice(0, end))
      buffer = buffer.slice(end + 1)
    }
    for (const listener of listeners) listener()
  })
  proc.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 20_000) stderr += chunk.toString("utf8")
  })
  const exitPromise = new Promise<void>((resolve) => {
    proc.once("exit", () => {
      exited = true
      for (const listener of listeners) listener()
      resolve()
    })
  })
  proc.on("error", () => {})
  return {
    process: proc,
    pid: proc.pid ?? -1,
    stderr: () => stderr,
    exited: () => exitPromise,
    line: (match, ms) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match)
          if (found !== undefined) {
            done()
            resolve(found)
          } else if (exited) {
            done()
            reject(new Error(`child exited (code ${proc.exitCode}) before the expected line:\n${stderr}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`no expected line within ${ms} ms; stdout so far:\n${lines.join("\n")}\n${stderr}`))
        }, ms)
        const done = () => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      }),
    kill: async () => {
      const at = Date.now()
      if (!exited) proc.kill("SIGKILL")
      await exitPromise
      return at
    }
  }
}

/** `spawnTsx` as a scoped resource: the child is SIGKILLed (if still alive) when the scope closes. */
export const childScoped = (script: string, args: ReadonlyArray<string>): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => spawnTsx(script, args)),
    (child) => Effect.promise(() => child.kill())
  )

/** Waits (as an Effect) for a stdout line of `child`. */
export const awaitLine = (child: Child, match: (line: string) => boolean, ms: number) =>
  Effect.promise(() => child.line(match, ms))
