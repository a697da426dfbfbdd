/** The Promise facade: the seed's useLock() on both backends. */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { useLock } from "../src/promise.js"
import { uniqueNamespace } from "./support/backends.js"
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
    const saved = { url: process.env["REDIS_URL"], host: process.env["REDIS_HOST"] }
    afterEach(async () => {
      await useLock().close()
      for (const [name, value] of [["REDIS_URL", saved.url], ["REDIS_HOST", saved.host]] as const) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    })
    const memoryOnly = () => {
      delete process.env["REDIS_URL"]
      delete process.env["REDIS_HOST"]
    }

    it("is the same instance on every call, and a new one after close()", async () => {
      memoryOnly()
      const kv = useLock()
      expect(useLock()).toBe(kv)
      await kv.set("k", "v")
      await kv.close()
      const fresh = useLock()
      expect(fresh).not.toBe(kv)
      // A new instance: the memory store starts empty.
      expect(await fresh.get("k")).toBeNull()
    })

    it("set NX/PX resolves true/false, get resolves the value or null, del the count", async () => {
      memoryOnly()
      const kv = useLock()
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
      const kv = useLock()
      const error: unknown = await kv.set("", "v").then(() => undefined, (e: unknown) => e)
      expect(error).toMatchObject({ _tag: "InvalidArgument" })
      const both: unknown = await kv.set("k", "v", { NX: true, XX: true }).then(() => undefined, (e: unknown) => e)
      expect(both).toMatchObject({ _tag: "InvalidArgument" })
    })

    it("supports await using (Symbol.asyncDispose)", async () => {
      memoryOnly()
      const kv = useLock()
      await kv[Symbol.asyncDispose]()
      expect(useLock()).not.toBe(kv)
    })

    it("an unreachable Redis rejects with LockKvError, never falls back to memory", async () => {
      process.env["REDIS_URL"] = "redis://127.0.0.1:1"
      const kv = useLock()
      const error: unknown = await kv.get("k").then(() => undefined, (e: unknown) => e)
      expect(error).toMatchObject({ _tag: "LockKvError" })
    }, 15_000)
  })
})
