/**
 * The `effect-lock` binary, end to end: real CLI processes (`node
 * bin/effect-lock.js`), real commands, the test run's real Redis. Each test has
 * its own namespace and temp directory; every process is killed afterwards.
 */
import { it as itEffect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { Redis } from "ioredis"
import { randomUUID } from "node:crypto"
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import * as Progress from "../src/cli/progress.js"
import { cliEnv, isAlive, killAll, runCli, runCliOnTty, startCli, waitFor } from "./support/cli.js"
import { redisUrl } from "./support/redisUrl.js"

let redis: Redis
let dir: string
let namespace: string
let env: NodeJS.ProcessEnv

beforeAll(() => {
  redis = new Redis(redisUrl(), { lazyConnect: false, maxRetriesPerRequest: 1 })
})

afterAll(async () => {
  await redis.quit()
})

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "effect-lock-cli-"))
  namespace = `cli-test-${randomUUID()}`
  env = cliEnv({ REDIS_URL: redisUrl(), LOCK_NAMESPACE: namespace })
})

afterEach(() => {
  killAll(dir)
  rmSync(dir, { recursive: true, force: true })
})

const file = (name: string) => join(dir, name)
const readPid = (name: string) => Number(readFileSync(file(name), "utf8").trim())
/** A POSIX shell command; `$1` is the test's temp directory. */
const shell = (script: string): Array<string> => ["sh", "-c", script, "sh", dir]
const rawKey = (key: string) => `${namespace}:${key}`

/** A command that holds the lock until `<name>.stop` exists, after writing `<name>.pid`. */
const holder = (name: string) =>
  shell(`echo $$ > "$1/${name}.pid"; while [ ! -e "$1/${name}.stop" ]; do sleep 0.05; done`)

describe("effect-lock exec", { timeout: 60_000 }, () => {
  it("runs two commands on one key one after the other", async () => {
    const log = file("log")
    // Each command appends its start and end time (ms) around a 1 s sleep.
    const script = "const fs = require('fs'); const f = process.argv[1]; const id = process.argv[2];" +
      "fs.appendFileSync(f, id + ' start ' + Date.now() + '\\n');" +
      "setTimeout(() => fs.appendFileSync(f, id + ' end ' + Date.now() + '\\n'), 1000)"
    const run = (id: string) =>
      startCli(["exec", "shared", "--wait", "20s", "--", process.execPath, "-e", script, log, id], { env })
    const [a, b] = await Promise.all([run("a").result, run("b").result])
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0])

    const lines = readFileSync(log, "utf8").trim().split("\n").map((line) => line.split(" "))
    expect(lines).toHaveLength(4)
    const interval = (id: string) => {
      const at = (event: string) => Number(lines.find(([who, what]) => who === id && what === event)![2])
      return { start: at("start"), end: at("end") }
    }
    const [first, second] = [interval("a"), interval("b")].sort((x, y) => x.start - y.start)
    expect(first!.end).toBeGreaterThan(first!.start)
    // No overlap: the second started only after the first had ended.
    expect(second!.start).toBeGreaterThanOrEqual(first!.end)
  })

  it("--no-wait gets the conflict code while another process holds the lock", async () => {
    const holding = startCli(["exec", "busy", "--", ...holder("holder")], { env })
    await waitFor("the holder to start", () => existsSync(file("holder.pid")))

    const [conflict, custom] = await Promise.all([
      runCli(["exec", "busy", "--no-wait", "--", "true"], { env }),
      runCli(["exec", "busy", "--wait", "300ms", "--conflict-exit-code", "9", "--", "true"], { env })
    ])
    expect(conflict.code).toBe(1)
    expect(conflict.stderr.trim()).toBe(`effect-lock: lock "busy" is held elsewhere`)
    expect(custom.code).toBe(9)

    // SIGINT while waiting aborts the wait (130) and never runs the command.
    const waiter = startCli(["exec", "busy", "--wait", "20s", "--", ...shell(`touch "$1/waiter-ran"`)], { env })
    // Each CLI subscribes to a release channel of its own once connected (after taking over signals).
    const subscribers = async () =>
      ((await redis.pubsub("CHANNELS", `${namespace}:__released__:*`)) as Array<unknown>).length
    await waitFor("the waiter to connect", async () => (await subscribers()) >= 2)
    await new Promise((resolve) => setTimeout(resolve, 300))
    waiter.kill("SIGINT")
    const aborted = await waiter.result
    expect(aborted.code).toBe(130)
    expect(existsSync(file("waiter-ran"))).toBe(false)
    expect(await redis.exists(rawKey("busy"))).toBe(1)

    writeFileSync(file("holder.stop"), "")
    expect((await holding.result).code).toBe(0)
    expect(await redis.get(rawKey("busy"))).toBeNull()
  })

  it("passes exit codes through: own code, 128+signal, 127 not found, 126 not executable", async () => {
    const notExecutable = file("script.sh")
    writeFileSync(notExecutable, "#!/bin/sh\nexit 0\n")
    chmodSync(notExecutable, 0o644)
    const [seven, killed, missing, denied] = await Promise.all([
      runCli(["exec", "codes-1", "--", "sh", "-c", "exit 7"], { env }),
      runCli(["exec", "codes-2", "--", "sh", "-c", "kill -KILL $$"], { env }),
      runCli(["exec", "codes-3", "--", "effect-lock-no-such-command"], { env }),
      runCli(["exec", "codes-4", "--", notExecutable], { env })
    ])
    expect(seven.code).toBe(7)
    expect(killed.code).toBe(128 + 9)
    expect(missing.code).toBe(127)
    expect(missing.stderr).toContain("command not found: effect-lock-no-such-command")
    expect(denied.code).toBe(126)
    // Released in every case.
    for (const key of ["codes-1", "codes-2", "codes-3", "codes-4"]) {
      expect(await redis.exists(rawKey(key))).toBe(0)
    }
  })

  it("hands everything after -- to the command, flags like --help included", async () => {
    const result = await runCli(
      ["exec", "args", "--", "sh", "-c", "echo \"$1 $2 fence=$EFFECT_LOCK_FENCE\"", "sh", "--help", "-h"],
      { env }
    )
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toMatch(/^--help -h fence=\d+$/)
  })

  it("refuses to run without Redis configured, and reports bad input and unreachable Redis with exit 2", async () => {
    const noRedis = cliEnv({ LOCK_NAMESPACE: namespace })
    const [unconfigured, badTtl, bareNumber, unreachable] = await Promise.all([
      runCli(["exec", "k", "--", "true"], { env: noRedis }),
      runCli(["exec", "k", "--ttl", "soon", "--", "true"], { env }),
      runCli(["exec", "k", "--wait", "30", "--", "true"], { env }),
      runCli(["exec", "k", "--", "true"], {
        env: cliEnv({ REDIS_URL: "redis://someone:hunter2-secret@127.0.0.1:1", REDIS_CONNECT_TIMEOUT: "2s" })
      })
    ])
    expect(unconfigured.code).toBe(2)
    expect(unconfigured.stderr).toContain("Redis is not configured")
    expect(unconfigured.stderr.trim().split("\n")).toHaveLength(1)
    expect(badTtl.code).toBe(2)
    expect(badTtl.stderr).toContain("--ttl")
    expect(bareNumber.code).toBe(2)
    expect(bareNumber.stderr).toContain("has no unit")
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).toContain("effect-lock: cannot use Redis")
    expect(unreachable.stderr).not.toContain("hunter2")
  })

  it("refuses unknown options, missing values and stray arguments with exit 2, and runs nothing", async () => {
    const ran = shell(`touch "$1/ran"`)
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      // A mistyped flag before -- was once run as the command (exit 127).
      [["exec", "typo", "--no-wiat", "--", ...ran], "unknown option --no-wiat (did you mean --no-wait?)"],
      [["exec", "typo", "--ttl", "--", ...ran], "--ttl needs a value"],
      [["exec", "typo", "--ttl", "--quiet", "--", ...ran], "--ttl needs a value"],
      [["exec", "typo", "--quiet=yes", "--", ...ran], "--quiet takes no value"],
      [["exec", "typo", "sh", "--", ...ran], "unexpected argument \"sh\" (the command goes after --)"],
      [["exec", "--", ...ran], "missing <key>"],
      [["exec", "typo", "--"], "missing <command> after --"],
      [["exec", "typo"], "missing -- <command>"],
      [["exec", "typo", "--conflict-exit-code", "256", "--", ...ran], "--conflict-exit-code must be an integer 0..255"],
      [["exce", "typo", "--", ...ran], "unknown command \"exce\" (did you mean exec?)"],
      [["status", "a", "b"], "unexpected argument \"b\""],
      [["status", "typo", "--jsno"], "unknown option --jsno (did you mean --json?)"]
    ]
    const results = await Promise.all(cases.map(([args]) => runCli(args, { env })))
    results.forEach((result, i) => {
      const [args, message] = cases[i]!
      expect(result.code, args.join(" ")).toBe(2)
      expect(result.stderr, args.join(" ")).toContain(`effect-lock: ${message}`)
      expect(result.stderr, args.join(" ")).toMatch(/\nUsage: effect-lock /)
      expect(result.stdout, args.join(" ")).toBe("")
    })
    expect(results[0]!.stderr).toContain("Usage: effect-lock exec <key> [options] -- <command> [args...]")
    expect(existsSync(file("ran"))).toBe(false)
    expect(await redis.exists(rawKey("typo"))).toBe(0)
  })

  it("--quiet: a skipped run prints nothing, errors still print", async () => {
    const holding = startCli(["exec", "cron", "--", ...holder("holder")], { env })
    await waitFor("the holder to start", () => existsSync(file("holder.pid")))

    const [skipped, short, waited, unreachable] = await Promise.all([
      // The README's cron line: silent, and a success.
      runCli(["exec", "cron", "--no-wait", "--quiet", "--conflict-exit-code", "0", "--", "true"], { env }),
      runCli(["exec", "cron", "--no-wait", "-q", "--", "true"], { env }),
      runCli(["exec", "cron", "--wait", "300ms", "-q", "--", "true"], { env }),
      runCli(["exec", "cron", "--quiet", "--", "true"], {
        env: cliEnv({ REDIS_URL: "redis://127.0.0.1:1", REDIS_CONNECT_TIMEOUT: "2s" })
      })
    ])
    expect([skipped.code, skipped.stdout, skipped.stderr]).toEqual([0, "", ""])
    expect([short.code, short.stderr]).toEqual([1, ""])
    expect([waited.code, waited.stderr]).toEqual([1, ""])
    expect(unreachable.code).toBe(2)
    expect(unreachable.stderr).toContain("effect-lock: cannot use Redis")

    // On a terminal the wait shows a progress line, except with --quiet.
    const [loud, quiet] = await Promise.all([
      runCliOnTty(["exec", "cron", "--wait", "1s", "--", "true"], { env }),
      runCliOnTty(["exec", "cron", "--wait", "1s", "--quiet", "--", "true"], { env })
    ])
    expect(loud.code).toBe(1)
    expect(loud.stdout).toContain("waiting for lock cron")
    expect(loud.stdout).toContain(`lock "cron" is held elsewhere`)
    expect([quiet.code, quiet.stdout]).toEqual([1, ""])

    writeFileSync(file("holder.stop"), "")
    expect((await holding.result).code).toBe(0)
  })

  it("--wait infinity waits past the 10 s default and acquires on release; --ttl infinity is refused", async () => {
    const holding = startCli(["exec", "forever", "--", ...holder("holder")], { env })
    await waitFor("the holder to start", () => existsSync(file("holder.pid")))
    const waiter = startCli(["exec", "forever", "--wait", "infinity", "--", ...shell(`touch "$1/waiter-ran"`)], {
      env
    })
    let settled = false
    void waiter.result.then(() => (settled = true))
    const subscribers = async () =>
      ((await redis.pubsub("CHANNELS", `${namespace}:__released__:*`)) as Array<unknown>).length
    await waitFor("the waiter to connect", async () => (await subscribers()) >= 2)
    // Past the default wait (10 s): a finite wait would have ended with the conflict code by now.
    await new Promise((resolve) => setTimeout(resolve, 10_500))
    expect(settled).toBe(false)
    expect(existsSync(file("waiter-ran"))).toBe(false)

    writeFileSync(file("holder.stop"), "")
    expect((await holding.result).code).toBe(0)
    const result = await waiter.result
    expect(result.code, result.stderr).toBe(0)
    expect(existsSync(file("waiter-ran"))).toBe(true)

    const endlessTtl = await runCli(["exec", "forever", "--ttl", "infinity", "--", "true"], { env })
    expect(endlessTtl.code).toBe(2)
    expect(endlessTtl.stderr).toContain("effect-lock: --ttl must be finite")
  })

  it("terminates a command that outlives a lost lock (SIGTERM, then SIGKILL) and exits 3", async () => {
    // The command ignores SIGTERM, so only the SIGKILL after --kill-grace ends it.
    const cli = startCli(
      [
        "exec",
        "lost",
        "--ttl",
        "1s",
        "--kill-grace",
        "300ms",
        "--",
        ...shell(
          `trap "" TERM; echo $$ > "$1/child.pid"; while true; do sleep 0.05; done`
        )
      ],
      { env }
    )
    await waitFor("the command to start", () => existsSync(file("child.pid")))
    const childPid = readPid("child.pid")
    expect(isAlive(childPid)).toBe(true)

    expect(await redis.del(rawKey("lost"))).toBe(1)
    const result = await cli.result
    expect(result.code).toBe(3)
    expect(result.stderr).toContain(`lock "lost" was lost`)
    await waitFor("the command to be gone", () => !isAlive(childPid), { timeoutMs: 3_000 })
  })

  it("forwards SIGTERM to the command and releases the lock after it exits", async () => {
    const cli = startCli([
      "exec",
      "signal",
      "--",
      ...shell(
        `trap 'echo got-term > "$1/marker"; exit 0' TERM; echo $$ > "$1/child.pid"; ` +
          `while true; do sleep 0.05; done`
      )
    ], { env })
    await waitFor("the command to start", () => existsSync(file("child.pid")))
    expect(await redis.exists(rawKey("signal"))).toBe(1)

    cli.kill("SIGTERM")
    const result = await cli.result
    expect(result.code).toBe(0) // the command's own exit code after its trap
    expect(readFileSync(file("marker"), "utf8").trim()).toBe("got-term")
    expect(isAlive(readPid("child.pid"))).toBe(false)
    expect(await redis.exists(rawKey("signal"))).toBe(0)
  })
})

describe("effect-lock status / release", { timeout: 60_000 }, () => {
  it("status shows held/free and the fence; release refuses without --force", async () => {
    const holding = startCli(["exec", "inspect", "--ttl", "2s", "--kill-grace", "200ms", "--", ...holder("holder")], {
      env
    })
    await waitFor("the holder to start", () => existsSync(file("holder.pid")))

    const held = await runCli(["status", "inspect", "--json"], { env })
    expect(held.code).toBe(0)
    const heldStatus = JSON.parse(held.stdout)
    expect(heldStatus).toMatchObject({ key: "inspect", namespace, held: true })
    expect(heldStatus.fence).toBeGreaterThanOrEqual(1)
    expect(heldStatus.ttlMs).toBeGreaterThan(0)
    expect(heldStatus.ttlMs).toBeLessThanOrEqual(2_000)

    const human = await runCli(["status", "inspect"], { env })
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(`lock "inspect" (namespace "${namespace}"): held, expires in`)
    expect(human.stdout).toContain(`fence ${heldStatus.fence}`)

    const refused = await runCli(["release", "inspect"], { env })
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain("--force")
    expect(await redis.exists(rawKey("inspect"))).toBe(1)

    // The operator override: the holder finds its lock gone and ends with 3.
    const forced = await runCli(["release", "inspect", "--force"], { env })
    expect(forced.code).toBe(0)
    expect(forced.stdout).toContain(`released lock "inspect"`)
    expect((await holding.result).code).toBe(3)

    // Exit 1 when free, like a `flock -n` probe; the JSON is still printed.
    const free = await runCli(["status", "inspect", "--json"], { env })
    expect(free.code).toBe(1)
    expect(JSON.parse(free.stdout)).toEqual({
      key: "inspect",
      namespace,
      held: false,
      ttlMs: null,
      fence: heldStatus.fence
    })
  })

  it("--namespace overrides LOCK_NAMESPACE", async () => {
    const other = `${namespace}-other`
    const result = await runCli(["exec", "ns", "--namespace", other, "--", ...shell(`echo $$ > "$1/ns.pid"`)], { env })
    expect(result.code).toBe(0)
    const status = await runCli(["status", "ns", "--namespace", other, "--json"], { env })
    expect(status.code).toBe(1)
    expect(JSON.parse(status.stdout)).toMatchObject({ namespace: other, held: false, fence: 1 })
    await redis.del(`{${other}:ns}:fence`)
  })

  it("status exits 1 when free and 2 when Redis cannot be used", async () => {
    const [free, freeJson, unconfigured, unreachable] = await Promise.all([
      runCli(["status", "never-taken"], { env }),
      runCli(["status", "never-taken", "--json"], { env }),
      runCli(["status", "never-taken", "--json"], { env: cliEnv({}) }),
      runCli(["status", "never-taken"], {
        env: cliEnv({ REDIS_URL: "redis://127.0.0.1:1", REDIS_CONNECT_TIMEOUT: "2s" })
      })
    ])
    expect([free.code, free.stdout.trim()]).toEqual([1, `lock "never-taken" (namespace "${namespace}"): free`])
    expect(freeJson.code).toBe(1)
    expect(JSON.parse(freeJson.stdout)).toMatchObject({ held: false, fence: null })
    expect([unconfigured.code, unconfigured.stdout]).toEqual([2, ""])
    expect(unconfigured.stderr).toContain("Redis is not configured")
    expect([unreachable.code, unreachable.stdout]).toEqual([2, ""])
    expect(unreachable.stderr).toContain("cannot use Redis")
  })

  it("prints plain help (no colours, the program's name in Usage) and the version", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--help"], "Usage: effect-lock <exec|status|release>"],
      [["-h"], "Usage: effect-lock <exec|status|release>"],
      [["exec", "--help"], "Usage: effect-lock exec <key> [options] -- <command> [args...]"],
      [["exec", "k", "-h", "--", "true"], "Usage: effect-lock exec <key> [options] -- <command> [args...]"],
      [["status", "--help"], "Usage: effect-lock status <key>"],
      [["release", "-h"], "Usage: effect-lock release <key> --force"]
    ]
    // FORCE_COLOR as a terminal-less colour request: the help stays plain whatever the environment says.
    const results = await Promise.all(cases.map(([args]) => runCli(args, { env: { ...env, FORCE_COLOR: "1" } })))
    results.forEach((result, i) => {
      const [args, usage] = cases[i]!
      expect(result.code, args.join(" ")).toBe(0)
      expect(result.stdout.startsWith(usage), args.join(" ")).toBe(true)
      expect(result.stdout).toContain("Examples:\n")
      expect(result.stdout).not.toContain("\x1b")
      expect(result.stderr).toBe("")
    })
    expect(results[2]!.stdout).toContain("--wait infinity")
    expect(results[2]!.stdout).toContain("-q, --quiet")
    expect(results[4]!.stdout.replace(/\s+/g, " ")).toContain("0 when the lock is held, 1 when it is free")

    const version = await runCli(["--version"], { env })
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    expect([version.code, version.stdout]).toEqual([0, `${manifest.version}\n`])
  })
})

describe("effect-lock internals", () => {
  itEffect.effect(
    "draws the waiting line on a TTY, erases it at the end, and stays silent otherwise",
    () =>
      Effect.gen(function*() {
        const tty: Array<string> = []
        const pipe: Array<string> = []
        const wait = (stream: Progress.Output) =>
          Effect.fork(Effect.sleep("3 seconds").pipe(Progress.whileWaiting("jobs", { stream })))
        const fibers = [
          yield* wait({ isTTY: true, write: (chunk) => tty.push(chunk) }),
          yield* wait({ isTTY: false, write: (chunk) => pipe.push(chunk) })
        ]
        yield* TestClock.adjust("3 seconds")
        for (const fiber of fibers) yield* Fiber.join(fiber)
        expect(tty).toContain("\r\x1b[2Kwaiting for lock jobs… 1.0s")
        expect(tty.at(-1)).toBe("\r\x1b[2K")
        expect(pipe).toEqual([])
      })
  )
})
