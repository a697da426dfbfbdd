/** The Promise facade: the seed's useLock() on both backends. */
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as EffectConfigError from "effect/ConfigError"
import { fileURLToPath } from "node:url"
import { inspect } from "node:util"
import { ConfigError, type Kv, useLock } from "../src/promise.js"
import { uniqueNamespace } from "./support/backends.js"
import { freePort, startRedisServer } from "./support/redisServer.js"
import { redisUrl } from "./support/redisUrl.js"
import { runTs, withoutRedisEnv } from "./support/runProcess.js"

const seed = fileURLToPath(new URL("../examples/seed.ts", import.meta.url))
// The process must exit by itself once the store is closed (else it is killed: code null).
const runSeed = (env: NodeJS.ProcessEnv) => runTs(seed, { env })

const expectSeedFlow = (stdout: string) => {
  expect(stdout.match(/Lock acquired for my-resource-123/g)).toHaveLength(2)
  expect(stdout.match(/Work done for my-resource-123/g)).toHaveLength(2)
  expect(stdout.match(/Lock released for my-resource-123/g)).toHaveLength(2)
}

describe("effect-lock/promise", () => {
  it("the seed's usage example runs in memory and exits", async () => {
    const result = await runSeed(withoutRedisEnv())
    expect(result.code, result.stderr).toBe(0)
    expectSeedFlow(result.stdout)
  }, 30_000)

  it("the seed's usage example runs on Redis and exits", async () => {
    const namespace = uniqueNamespace("seed")
    const result = await runSeed({ ...withoutRedisEnv(), REDIS_URL: redisUrl(), LOCK_NAMESPACE: namespace })
    expect(result.code, result.stderr).toBe(0)
    expectSeedFlow(result.stdout)
  }, 30_000)

  describe("in this process (memory: the test environment sets no REDIS_URL)", () => {
    const names = ["REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_CONNECT_TIMEOUT"] as const
    const saved = names.map((name) => [name, process.env[name]] as const)
    /** The handles a test opened: all closed after it, so the next test starts with a new instance. */
    const opened: Array<Kv> = []
    const open = (): Kv => {
      const kv = useLock()
      opened.push(kv)
      return kv
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((kv) => kv.close()))
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    })
    const memoryOnly = () => {
      for (const name of names) delete process.env[name]
    }
    const rejection = (promise: Promise<unknown>): Promise<unknown> =>
      promise.then(() => expect.fail("expected a rejection"), (e: unknown) => e)

    it("every call is a handle on one shared instance; a new instance once all are closed", async () => {
      memoryOnly()
      const a = open()
      const b = open()
      expect(b).not.toBe(a)
      // One store: what one handle writes, the other reads.
      await a.set("k", "v")
      expect(await b.get("k")).toBe("v")
      await a.close()
      await b.close()
      const fresh = open()
      // A new instance: the memory store starts empty.
      expect(await fresh.get("k")).toBeNull()
    })

    it("set NX/PX resolves true/false, get resolves the value or null, del the count", async () => {
      memoryOnly()
      const kv = open()
      expect(await kv.backend()).toBe("memory")
      expect(await kv.get("lock:a")).toBeNull()
      expect(await kv.set("lock:a", "me", { NX: true, PX: 5000 })).toBe(true)
      expect(await kv.set("lock:a", "you", { NX: true, PX: 5000 })).toBe(false)
      expect(await kv.get("lock:a")).toBe("me")
      expect(await kv.compareAndDelete("lock:a", "you")).toBe(false)
      expect(await kv.del("lock:a")).toBe(1)
      expect(await kv.del("lock:a")).toBe(0)
    })

    it("rejects with the typed error itself", async () => {
      memoryOnly()
      const kv = open()
      const error = await rejection(kv.set("", "v"))
      expect(error).toBeInstanceOf(Error)
      expect(error).toMatchObject({ _tag: "InvalidArgument" })
      const both = await rejection(kv.set("k", "v", { NX: true, XX: true }))
      expect(both).toMatchObject({ _tag: "InvalidArgument" })
    })

    it("await using closes only its own handle: the others keep working", async () => {
      memoryOnly()
      const other = open()
      await other.set("shared", "1")
      {
        await using scoped = useLock()
        expect(await scoped.get("shared")).toBe("1")
      }
      // The instance is still open for `other`: same store, same data.
      expect(await other.get("shared")).toBe("1")
      expect(await other.set("shared", "2")).toBe(true)
    })

    it("a closed handle rejects with a typed Error, not a string; close is idempotent", async () => {
      memoryOnly()
      const kv = open()
      const keep = open()
      await kv.close()
      await kv.close()
      await kv[Symbol.asyncDispose]()
      for (
        const [operation, call] of [
          ["get", () => kv.get("k")],
          ["set", () => kv.set("k", "v")],
          ["del", () => kv.del("k")],
          ["compareAndDelete", () => kv.compareAndDelete("k", "v")],
          ["backend", () => kv.backend()]
        ] as const
      ) {
        const error = await rejection(call())
        expect(error).toBeInstanceOf(Error)
        expect(error).toMatchObject({ _tag: "LockKvError", operation })
        expect(String((error as Error).message)).toContain("closed useLock() handle")
      }
      // Closing it twice did not close someone else's share.
      expect(await keep.set("k", "v")).toBe(true)
      await keep.close()
      expect(await rejection(keep.get("k"))).toMatchObject({ _tag: "LockKvError", operation: "get" })
    })

    it("closing the last handle while calls are under way lets them finish first", async () => {
      memoryOnly()
      process.env["REDIS_URL"] = redisUrl()
      const key = `inflight-${uniqueNamespace()}`
      const kv = useLock()
      // Called while the connection is still being made, closed in the same tick.
      const calls = [kv.set(key, "v", { PX: 10_000 }), kv.backend()]
      const closing = kv.close()
      expect(await Promise.all(calls)).toEqual([true, "redis"])
      await closing
      expect(await rejection(kv.get(key))).toMatchObject({ _tag: "LockKvError", operation: "get" })
      // The write really happened: a new instance finds it.
      const fresh = open()
      expect(await fresh.get(key)).toBe("v")
      expect(await fresh.del(key)).toBe(1)
    }, 15_000)

    it("a defect rejects with an Error too, never a bare value", async () => {
      memoryOnly()
      const kv = open()
      // Untyped input whose getter throws a string: a defect inside the call.
      const options = {
        get NX(): boolean {
          throw "not an Error"
        }
      }
      const error = await rejection(kv.set("k", "v", options))
      expect(error).toBeInstanceOf(Error)
      expect(error).toMatchObject({ _tag: "UnknownException", error: "not an Error" })
      // The handle still works.
      expect(await kv.set("k", "v")).toBe(true)
    })

    it("an unreachable Redis rejects with LockKvError, never falls back to memory", async () => {
      process.env["REDIS_URL"] = "redis://127.0.0.1:1"
      const kv = open()
      const error = await rejection(kv.get("k"))
      expect(error).toBeInstanceOf(Error)
      expect(error).toMatchObject({ _tag: "LockKvError" })
    }, 15_000)

    it("a Redis down at the first call is tried again at the next: the failed build is not kept", async () => {
      memoryOnly()
      const port = await freePort()
      process.env["REDIS_URL"] = `redis://127.0.0.1:${port}`
      process.env["REDIS_CONNECT_TIMEOUT"] = "2s"
      const kv = open()
      for (let i = 0; i < 2; i++) {
        const started = Date.now()
        const error = await rejection(kv.get("k"))
        expect(error).toMatchObject({ _tag: "LockKvError", operation: "connect" })
        expect(Date.now() - started).toBeLessThan(3_000)
      }
      const server = await startRedisServer({ port })
      try {
        expect(await kv.backend()).toBe("redis")
        expect(await kv.set("recovered", "yes", { PX: 10_000 })).toBe(true)
        expect(await kv.get("recovered")).toBe("yes")
        await kv.close()
      } finally {
        await server.stop()
      }
    }, 30_000)

    it("an invalid configuration rejects with an Error tagged ConfigError naming the variable", async () => {
      memoryOnly()
      process.env["REDIS_HOST"] = "127.0.0.1"
      process.env["REDIS_PORT"] = "abc"
      const kv = open()
      const error = await rejection(kv.get("k"))
      expect(error).toBeInstanceOf(Error)
      expect(error).toBeInstanceOf(ConfigError)
      expect(error).toMatchObject({ _tag: "ConfigError" })
      expect((error as Error).message).toContain("REDIS_PORT")
      expect(EffectConfigError.isConfigError((error as Error).cause)).toBe(true)
      // The next call reads the configuration again: fixed, it works.
      delete process.env["REDIS_HOST"]
      delete process.env["REDIS_PORT"]
      expect(await kv.backend()).toBe("memory")
    })

    it("a ConfigError never carries a secret value", async () => {
      memoryOnly()
      process.env["REDIS_URL"] = "http://user:hunter2-promise@example"
      const kv = open()
      const error = await rejection(kv.get("k"))
      expect(error).toMatchObject({ _tag: "ConfigError" })
      const text = [String(error), JSON.stringify(error), inspect(error, { depth: 10 })].join("\n")
      expect(text).toContain("REDIS_URL")
      expect(text).not.toContain("hunter2-promise")
    })
  })
})
