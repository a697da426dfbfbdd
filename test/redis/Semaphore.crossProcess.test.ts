/** Semaphores and read-write locks across real OS processes on Redis. */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schedule } from "effect"
import { Redis } from "ioredis"
import { fileURLToPath } from "node:url"
import { LockKv, Semaphore } from "../../src/index.js"
import { uniqueNamespace } from "../support/backends.js"
import { type RedisServerHandle, startRedisServer } from "../support/redisServer.js"
import { runTs } from "../support/runProcess.js"
import { spawnTsx } from "./faults/support.js"

const worker = fileURLToPath(new URL("../support/semaphoreWorker.ts", import.meta.url))
const runWorker = (args: ReadonlyArray<string>) => runTs(worker, { args, timeoutMs: 90_000 })

const withRaw = async <A>(url: string, f: (raw: Redis) => Promise<A>): Promise<A> => {
  const raw = new Redis(url)
  try {
    return await f(raw)
  } finally {
    raw.disconnect()
  }
}

// A server of their own: the workers keep it busy, and the suites sharing the run's server
// (the lock's 93 ms-ttl test among them) must not wait behind them.
let server: RedisServerHandle | undefined
const redisUrl = (): string => server!.url

describe("Semaphore and ReadWriteLock across processes (redis)", () => {
  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it(
    "read-write lock: writers exclude each other and every reader (fences increase); a semaphore's limit holds",
    async () => {
      const url = redisUrl()
      const namespace = uniqueNamespace("xrw")
      // One start per process for both parts: starting a process under tsx costs more CPU than the test itself.
      const processes = 3, fibers = 3, iterations = 9, limit = 2
      const results = await Promise.all(
        Array.from(
          { length: processes },
          () => runWorker([url, namespace, "k", "both", String(fibers), String(iterations), String(limit)])
        )
      )
      for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 })
      await withRaw(url, async (raw) => {
        const sections = processes * fibers * iterations
        const writes = sections / 3
        expect(await raw.lrange(`${namespace}-data:violations`, 0, -1)).toEqual([])
        expect(Number(await raw.get(`${namespace}-data:counter`))).toBe(writes)
        expect(Number(await raw.get(`${namespace}-data:reads`))).toBe(sections - writes)
        const fences = (await raw.lrange(`${namespace}-data:fences`, 0, -1)).map(Number)
        expect(fences).toHaveLength(writes)
        for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!)
        // The semaphore part: every section ran, never more than `limit` at once (else a violation).
        expect(Number(await raw.get(`${namespace}-data:sections`))).toBe(sections)
        expect(Number(await raw.get(`${namespace}-data:inside`))).toBe(0)
      })
    },
    120_000
  )

  it("a killed holder's permits come back when their TTL ends, not before", async () => {
    const url = redisUrl()
    const namespace = uniqueNamespace("xcrash")
    const ttlMs = 1500
    const child = spawnTsx(worker, [url, namespace, "crash", "hold", "2", "2", String(ttlMs)])
    try {
      await child.line((line) => line.startsWith("held"), 30_000)
    } catch (error) {
      await child.kill()
      throw error
    }
    // Killed with its permits held: no release, no renewal.
    await child.kill()
    const killedAt = performance.now()
    const program = Effect.gen(function*() {
      const opts: Semaphore.Options = { limit: 2, wait: "10 seconds" }
      const early = yield* Semaphore.tryWithPermits(Effect.void, "crash", 1, opts)
      const acquiredAt = yield* Semaphore.withPermits(Effect.sync(() => performance.now()), "crash", 2, opts)
      return { early, acquiredAt }
    })
    const { acquiredAt, early } = await Effect.runPromise(
      Effect.provide(program, LockKv.layerRedis({ url, namespace }))
    )
    expect(early).toEqual(Option.none())
    // At most a ttl after the kill (a renewal just before it set the full ttl), plus slack.
    expect(acquiredAt - killedAt).toBeLessThan(ttlMs + 1000)
    // The last renewal was at most ttl/3 before the kill: the permits stayed out at least 2/3 of a ttl after it.
    expect(acquiredAt - killedAt).toBeGreaterThan((2 * ttlMs) / 3 - 100)
  }, 60_000)

  it("a release in another process hands the permits over by pub/sub: the waiter makes no second try", async () => {
    const url = redisUrl()
    const namespace = uniqueNamespace("xgrant")
    const child = spawnTsx(worker, [url, namespace, "grant", "hold", "2", "2", "30000", "400"])
    try {
      await child.line((line) => line.startsWith("held"), 30_000)
      const tries = { count: 0 }
      const program = Effect.gen(function*() {
        const kv = yield* LockKv.LockKv
        const counting = {
          ...kv,
          acquirePermits: (...args: Parameters<typeof kv.acquirePermits>) => {
            tries.count++
            return kv.acquirePermits(...args)
          }
        } satisfies LockKv.LockKv.Service
        const opts: Semaphore.Options = { limit: 2, retry: Schedule.spaced("1 hour"), wait: "10 seconds" }
        return yield* Semaphore.withPermits(Effect.succeed("granted"), "grant", 1, opts).pipe(
          Effect.provideService(LockKv.LockKv, counting)
        )
      })
      const result = await Effect.runPromise(Effect.provide(program, LockKv.layerRedis({ url, namespace })))
      expect(result).toBe("granted")
      // The first try queued it; the holder's release (~0.4 s later, before the ~0.67 s keep-alive
      // try) granted the permit and told it on its store's channel.
      expect(tries.count).toBe(1)
      await child.exited()
      expect(child.process.exitCode, child.stderr()).toBe(0)
    } finally {
      await child.kill()
    }
  }, 60_000)
})
