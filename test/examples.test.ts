/** The programs in examples/ (quoted in the README) run and print what the README says. */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const tsx = fileURLToPath(new URL("../node_modules/tsx/dist/cli.mjs", import.meta.url))

const run = (file: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("REDIS_")))
    const child = spawn(process.execPath, [tsx, fileURLToPath(new URL(`../examples/${file}`, import.meta.url))], {
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = "", stderr = ""
    child.stdout.on("data", (chunk) => { stdout += String(chunk) })
    child.stderr.on("data", (chunk) => { stderr += String(chunk) })
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

describe("examples", () => {
  it("demo (npm start): fibers take turns in arrival order, in memory, exit 0", async () => {
    const { code, stdout, stderr } = await run("demo.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("on the memory backend")
    const holders = [...stdout.matchAll(/(fiber-\d) holds/g)].map((m) => m[1])
    expect(holders).toEqual(["fiber-1", "fiber-2", "fiber-3", "fiber-1", "fiber-2", "fiber-3"])
    expect(stdout).toContain("tryWithLock while the lock is held elsewhere: skipped")
  }, 30_000)

  it("basic", async () => {
    const { code, stdout, stderr } = await run("basic.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("building the nightly report")
    expect(stdout).toContain("cleanup ran")
    expect(stdout).toContain("fences increase: true")
  }, 30_000)

  it("fencing: the stale holder's write is refused", async () => {
    const { code, stdout, stderr } = await run("fencing.ts")
    expect(code, stderr).toBe(0)
    expect(stdout).toContain("B accepted: true, stale A accepted: false")
  }, 30_000)
})
