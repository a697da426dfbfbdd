/** The programs in examples/ (quoted in the README) run and print what the README says. */
import { describe, expect, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { runTs, withoutRedisEnv } from "./support/runProcess.js"

const run = (file: string) =>
  runTs(fileURLToPath(new URL(`../examples/${file}`, import.meta.url)), { env: withoutRedisEnv() })

describe("examples", () => {
  it("demo (npm start): fibers take turns in arrival order, in memory, exit 0", async () => {
    const { code, stderr, stdout } = await run("demo.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("on the memory backend")
    const holders = [...stdout.matchAll(/(fiber-\d) holds/g)].map((m) => m[1])
    expect(holders).toEqual(["fiber-1", "fiber-2", "fiber-3", "fiber-1", "fiber-2", "fiber-3"])
    expect(stdout).toContain("tryWithLock while the lock is held elsewhere: skipped")
  }, 30_000)

  it("basic", async () => {
    const { code, stderr, stdout } = await run("basic.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("building the nightly report")
    expect(stdout).toContain("cleanup ran")
    expect(stdout).toContain("fences increase: true")
  }, 30_000)

  it("fencing: the stale holder's write is refused", async () => {
    const { code, stderr, stdout } = await run("fencing.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("B accepted: true, stale A accepted: false")
  }, 30_000)

  it("semaphore: never more than the limit; readers and a writer", async () => {
    const { code, stderr, stdout } = await run("semaphore.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("at most 3 exports ran at once")
    expect(stdout.match(/export \d done/g)).toHaveLength(8)
    expect(stdout.match(/reading the config/g)).toHaveLength(3)
    expect(stdout).toMatch(/writing the config with fence \d+/)
  }, 30_000)
})
