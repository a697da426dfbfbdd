/**
 * Running the real `effect-lock` binary in tests: `node bin/effect-lock.js`,
 * from source (EFFECT_LOCK_CLI_SOURCE=1, so a stale dist/ is never tested),
 * with an environment that contains only the Redis settings a test gives it.
 * Every process started here is tracked and killed by `killAll`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const binPath = fileURLToPath(new URL("../../bin/effect-lock.js", import.meta.url))

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Settles when the CLI exits (or is killed after `timeoutMs`). */
  readonly result: Promise<CliResult>
  readonly kill: (signal?: NodeJS.Signals) => void
}

const running = new Set<ChildProcess>()

/** The parent's environment without any Redis / lock settings, plus `overrides`. */
export const cliEnv = (overrides: Record<string, string | undefined>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(REDIS_|LOCK_NAMESPACE$|EFFECT_LOCK_)/.test(name)) continue
    env[name] = value
  }
  for (const [name, value] of Object.entries(overrides)) {
    if (value !== undefined) env[name] = value
  }
  env["EFFECT_LOCK_CLI_SOURCE"] = "1"
  return env
}

/** Tracks `child` and collects its output until it closes; SIGKILLed if still running after `timeoutMs` (default 45 s). */
const collect = (child: ChildProcess, timeoutMs: number | undefined): Promise<CliResult> => {
  running.add(child)
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8")
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs ?? 45_000)
    child.once("error", (error) => {
      clearTimeout(timer)
      running.delete(child)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Starts `effect-lock <args>`; SIGKILLed if still running after `timeoutMs` (default 45 s). */
export const startCli = (
  args: ReadonlyArray<string>,
  options: { readonly env: NodeJS.ProcessEnv; readonly timeoutMs?: number | undefined }
): CliProcess => {
  const child = spawn(process.execPath, [binPath, ...args], {
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  return {
    child,
    pid: child.pid ?? -1,
    result: collect(child, options.timeoutMs),
    kill: (signal = "SIGTERM") => {
      child.kill(signal)
    }
  }
}

/** Runs `effect-lock <args>` to the end. */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly env: NodeJS.ProcessEnv; readonly timeoutMs?: number | undefined }
): Promise<CliResult> => startCli(args, options).result

/**
 * Runs `effect-lock <args>` with a terminal as its stdin/stdout/stderr, through
 * util-linux `script(1)` (in Debian's essential bsdutils): what a user at a
 * terminal sees, stdout and stderr merged, in `stdout`.
 */
export const runCliOnTty = (
  args: ReadonlyArray<string>,
  options: { readonly env: NodeJS.ProcessEnv; readonly timeoutMs?: number | undefined }
): Promise<CliResult> => {
  const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`
  const command = [process.execPath, binPath, ...args].map(quote).join(" ")
  return collect(
    spawn("script", ["-qec", command, "/dev/null"], { env: options.env, stdio: ["ignore", "pipe", "pipe"] }),
    options.timeoutMs
  )
}

/** Whether a process with this pid exists (a zombie counts as gone for `kill(pid, 0)` only once reaped). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `predicate` every `intervalMs` until true; throws after `timeoutMs`. */
export const waitFor = async (
  what: string,
  predicate: () => boolean | Promise<boolean>,
  options: { readonly timeoutMs?: number | undefined; readonly intervalMs?: number | undefined } = {}
): Promise<void> => {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000)
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(options.intervalMs ?? 50)
  }
}

/**
 * Kills every CLI still running (SIGKILL), and the process groups of the
 * commands they started, found through the `*.pid` files the test commands
 * write into `dir` (a CLI killed by SIGKILL cannot stop its command itself).
 */
export const killAll = (dir?: string | undefined): void => {
  for (const child of running) {
    try {
      child.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  if (dir === undefined) return
  let files: Array<string> = []
  try {
    files = readdirSync(dir).filter((name) => name.endsWith(".pid"))
  } catch {
    return
  }
  for (const file of files) {
    const pid = Number(readFileSync(join(dir, file), "utf8").trim())
    if (!Number.isInteger(pid) || pid <= 1) continue
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, "SIGKILL")
      } catch {
        // already gone
      }
    }
  }
}
