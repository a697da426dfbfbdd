/** Mutual exclusion across real OS processes on Redis. */
import { describe, it } from "@effect/vitest"
import { Redis } from "ioredis"
import { uniqueNamespace } from "../support/backends.js"
import { expectExactCounter, runCounterWorkers } from "../support/crossProcess.js"
import { redisUrl } from "../support/redisUrl.js"

describe("Lock across processes (redis)", () => {
  it("processes × fibers on one key: the counter is exact and fences increase in section order", async () => {
    const url = redisUrl()
    const namespace = uniqueNamespace("xproc")
    const run = { processes: 3, fibers: 3, iterations: 12 }
    const results = await runCounterWorkers(url, namespace, run)
    const raw = new Redis(url)
    try {
      await expectExactCounter(results, raw, namespace, run)
      await raw.del(`${namespace}-data:counter`, `${namespace}-data:fences`)
    } finally {
      raw.disconnect()
    }
  }, 120_000)
})
