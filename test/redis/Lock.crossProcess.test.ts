/** Mutual exclusion across real OS processes on Redis. */
import { describe, expect, it } from "@effect/vitest"
import { Redis } from "ioredis"
import { fileURLToPath } from "node:url"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"
import { runTs } from "../support/runProcess.js"

const worker = fileURLToPath(new URL("../support/lockWorker.ts", import.meta.url))
const runWorker = (args: ReadonlyArray<string>) => runTs(worker, { args, timeoutMs: 90_000 })

describe("Lock across processes (redis)", () => {
  it("processes × fibers on one key: the counter is exact and fences increase in section order", async () => {
    const url = redisUrl()
    const namespace = uniqueNamespace("xproc")
    const processes = 3, fibers = 3, iterations = 12
    // ttl 1 s; every 15th section takes 1.5 s: only renewal keeps it.
    const results = await Promise.all(
      Array.from(
        { length: processes },
        () => runWorker([url, namespace, "counter", String(fibers), String(iterations), "1000", "15", "1500"])
      )
    )
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 })
    const raw = new Redis(url)
    try {
      const counter = Number(await raw.get(`${namespace}-data:counter`))
      const fences = (await raw.lrange(`${namespace}-data:fences`, 0, -1)).map(Number)
      expect(counter).toBe(processes * fibers * iterations)
      expect(fences).toHaveLength(processes * fibers * iterations)
      for (let i = 1; i < fences.length; i++) expect(fences[i]!).toBeGreaterThan(fences[i - 1]!)
      await raw.del(`${namespace}-data:counter`, `${namespace}-data:fences`)
    } finally {
      raw.disconnect()
    }
  }, 120_000)
})
