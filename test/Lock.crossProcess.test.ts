/** Mutual exclusion across real OS processes on Redis. */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import { uniqueNamespace } from "./support/backends.js"
import { redisUrl } from "./support/redisUrl.js"

const worker = fileURLToPath(new URL("./support/lockWorker.ts", import.meta.url))
const tsx = fileURLToPath(new URL("../node_modules/tsx/dist/cli.mjs", import.meta.url))

const runWorker = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [tsx, worker, ...args], { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => { stderr += String(chunk) })
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })

describe("Lock across processes (redis)", () => {
  it("processes × fibers on one key: the counter is exact and fences increase in section order", async () => {
    const url = redisUrl()
    const namespace = uniqueNamespace("xproc")
    const processes = 3, fibers = 3, iterations = 12
    // ttl 300 ms; every 10th section takes 700 ms: only renewal keeps it.
    const results = await Promise.all(
      Array.from({ length: processes }, () =>
        runWorker([url, namespace, "counter", String(fibers), String(iterations), "300", "10", "700"]))
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
