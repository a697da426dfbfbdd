/** Runs a TypeScript file in a child Node process (through tsx), bounded in time. */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const tsx = fileURLToPath(new URL("../../node_modules/tsx/dist/cli.mjs", import.meta.url))

export interface ProcessResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment without any REDIS_* variable: the library then runs in memory. */
export const withoutRedisEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("REDIS_")))

/** Runs `file` with `args`; SIGKILLs it after `timeoutMs` (the test then sees code null). */
export const runTs = (
  file: string,
  options: { readonly args?: ReadonlyArray<string>; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {}
): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsx, file, ...(options.args ?? [])], {
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => {
      stdout += String(chunk)
    })
    child.stderr.on("data", (chunk) => {
      stderr += String(chunk)
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000)
    child.on("error", reject)
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
