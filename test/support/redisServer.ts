/**
 * A throwaway `redis-server` for tests: a child process on a free loopback port,
 * no persistence, stopped by pid. The shape of Effect's testcontainers layers
 * (a scoped resource that starts a server and hands out its address), without
 * Docker.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"

/** PEMs of a test certificate authority and a server certificate for 127.0.0.1 it signed. */
export interface TlsMaterial {
  readonly ca: string
  readonly cert: string
  readonly key: string
}

export interface StartOptions {
  /** Extra `redis-server` arguments, e.g. `["--requirepass", "secret"]`. */
  readonly args?: ReadonlyArray<string> | undefined
  /** Serve TLS only (with a fresh test CA); the handle's `url` is then `rediss://`. */
  readonly tls?: boolean | undefined
  /** A fixed port instead of a free one. */
  readonly port?: number | undefined
  /** How long to wait for the first PING answer (default 10 s). */
  readonly startTimeoutMs?: number | undefined
}

export interface RedisServerHandle {
  readonly port: number
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS), without credentials. */
  readonly url: string
  /** The pid of the current process (changes on `restart`). */
  readonly pid: number
  /** The TLS material when started with `tls: true`. */
  readonly tls: TlsMaterial | undefined
  /** Sends a signal to the server process. */
  readonly kill: (signal?: NodeJS.Signals) => void
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  readonly stop: () => Promise<void>
  /** Stops the server and starts a new one on the same port (empty: no persistence). */
  readonly restart: () => Promise<void>
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  readonly pause: () => void
  /** Thaws a paused server (SIGCONT). */
  readonly resume: () => void
}

const installHint = "redis-server is not on PATH. The tests start their own Redis: install it with " +
  "`apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), " +
  "or point REDIS_URL at a disposable server."

let checked = false
const ensureRedisServer = (): void => {
  if (checked) return
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" })
  if (probe.error !== undefined || probe.status !== 0) throw new Error(installHint)
  checked = true
}

/** A port nobody listens on right now (bind port 0, read it, close). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("could not find a free port"))))
    })
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One PING over a fresh socket; resolves with the first reply line, or rejects. */
const pingOnce = (port: number, material: TlsMaterial | undefined, timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket: net.Socket = material === undefined
      ? net.connect({ host: "127.0.0.1", port })
      : tls.connect({ host: "127.0.0.1", port, ca: material.ca, servername: "localhost" })
    let data = ""
    const done = (error: Error | undefined, line?: string) => {
      clearTimeout(timer)
      socket.destroy()
      if (error !== undefined) reject(error)
      else resolve(line ?? "")
    }
    const timer = setTimeout(() => done(new Error("PING timed out")), timeoutMs)
    socket.on(material === undefined ? "connect" : "secureConnect", () => socket.write("PING\r\n"))
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8")
      const end = data.indexOf("\r\n")
      if (end !== -1) done(undefined, data.slice(0, end))
    })
    socket.on("error", (error) => done(error))
    socket.on("close", () => done(new Error("connection closed before a reply")))
  })

/** Generates a CA and a server certificate for 127.0.0.1 / localhost with openssl. */
const makeTlsMaterial = (dir: string): TlsMaterial & { readonly files: Record<"ca" | "cert" | "key", string> } => {
  const run = (args: ReadonlyArray<string>) => {
    const result = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" })
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(`openssl ${args[0]} failed (is openssl installed?): ${result.stderr ?? String(result.error)}`)
    }
  }
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
  run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=effect-lock test CA"
  ])
  run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"])
  run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "san.ext"
  ])
  const files = { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") }
  return {
    files,
    ca: readFileSync(files.ca, "utf8"),
    cert: readFileSync(files.cert, "utf8"),
    key: readFileSync(files.key, "utf8")
  }
}

/** Every server this process started (and its directory), killed if the process exits without stopping them. */
const running = new Set<ChildProcess>()
const directories = new Set<string>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const child of running) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
    for (const dir of directories) rmSync(dir, { recursive: true, force: true })
  })
}

const waitForExit = (child: ChildProcess, ms: number): Promise<boolean> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve(true)
    : new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms)
      child.once("exit", () => {
        clearTimeout(timer)
        resolve(true)
      })
    })

/**
 * Starts `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no`
 * (plus `args`) and waits until it answers PING. Throws when `redis-server` is
 * not installed (with how to install it) or does not come up within 10 s.
 */
export const startRedisServer = async (options: StartOptions = {}): Promise<RedisServerHandle> => {
  ensureRedisServer()
  installExitHook()
  const dir = mkdtempSync(join(tmpdir(), "effect-lock-redis-"))
  directories.add(dir)
  const material = options.tls === true ? makeTlsMaterial(dir) : undefined
  const startTimeoutMs = options.startTimeoutMs ?? 10_000
  let port = options.port ?? await freePort()
  let child: ChildProcess | undefined
  let paused = false

  const argsFor = (p: number): Array<string> => [
    ...(material === undefined
      ? ["--port", String(p)]
      : [
        "--port",
        "0",
        "--tls-port",
        String(p),
        "--tls-cert-file",
        material.files.cert,
        "--tls-key-file",
        material.files.key,
        "--tls-ca-cert-file",
        material.files.ca,
        "--tls-auth-clients",
        "no"
      ]),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    ...(options.args ?? [])
  ]

  const launch = async (p: number): Promise<ChildProcess> => {
    const proc = spawn("redis-server", argsFor(p), { stdio: ["ignore", "pipe", "pipe"] })
    running.add(proc)
    let output = ""
    const collect = (chunk: Buffer) => {
      if (output.length < 8_000) output += chunk.toString("utf8")
    }
    proc.stdout?.on("data", collect)
    proc.stderr?.on("data", collect)
    proc.once("exit", () => running.delete(proc))
    const spawnError = new Promise<Error>((resolve) => proc.once("error", resolve))
    // A signal that cannot be delivered is reported as an 'error' event: never let it throw.
    proc.on("error", () => {})
    const deadline = Date.now() + startTimeoutMs
    for (;;) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => undefined)])
      if (failed !== undefined) throw new Error(`${installHint} (${failed.message})`)
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`redis-server exited during startup (code ${proc.exitCode}):\n${output}`)
      }
      try {
        const reply = await pingOnce(p, material, 1_000)
        // NOAUTH: up, but protected by --requirepass; either way it answers.
        if (reply.startsWith("+PONG") || reply.startsWith("-NOAUTH")) {
          // Make sure the answer came from this process, not one already on the port.
          await sleep(30)
          if (proc.exitCode === null && proc.signalCode === null) return proc
          continue
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL")
        throw new Error(`redis-server on port ${p} did not answer PING within ${startTimeoutMs} ms:\n${output}`)
      }
      await sleep(50)
    }
  }

  // A free port can be taken between probing and binding: try a few fresh ones.
  for (let attempt = 1;; attempt++) {
    try {
      child = await launch(port)
      break
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      if (options.port === undefined && attempt < 3 && /already in use/i.test(message)) {
        port = await freePort()
        continue
      }
      rmSync(dir, { recursive: true, force: true })
      directories.delete(dir)
      throw error
    }
  }

  const current = (): ChildProcess => {
    if (child === undefined) throw new Error("redis-server is not running")
    return child
  }

  const stopProcess = async () => {
    const proc = child
    if (proc === undefined) return
    if (paused) {
      proc.kill("SIGCONT")
      paused = false
    }
    proc.kill("SIGTERM")
    if (!(await waitForExit(proc, 5_000))) {
      proc.kill("SIGKILL")
      await waitForExit(proc, 5_000)
    }
    running.delete(proc)
    child = undefined
  }

  return {
    port,
    url: `${material === undefined ? "redis" : "rediss"}://127.0.0.1:${port}`,
    get pid() {
      return current().pid ?? -1
    },
    tls: material === undefined ? undefined : { ca: material.ca, cert: material.cert, key: material.key },
    kill: (signal = "SIGTERM") => {
      current().kill(signal)
    },
    stop: async () => {
      await stopProcess()
      rmSync(dir, { recursive: true, force: true })
      directories.delete(dir)
    },
    restart: async () => {
      await stopProcess()
      child = await launch(port)
    },
    pause: () => {
      current().kill("SIGSTOP")
      paused = true
    },
    resume: () => {
      current().kill("SIGCONT")
      paused = false
    }
  }
}

/** `startRedisServer` as a scoped resource: the server stops when the scope closes. */
export const redisServerScoped = (options?: StartOptions): Effect.Effect<RedisServerHandle, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisServer(options)),
    (server) => Effect.promise(() => server.stop())
  )
