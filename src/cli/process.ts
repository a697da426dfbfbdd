/**
 * A child process in its own process group, and the CLI's own signals.
 *
 * Why `node:child_process` and not `@effect/platform`'s `Command`: `Command`
 * does spawn detached and signal the group, but (1) it reports a death by signal
 * only as an error whose message names the signal, while the CLI must exit with
 * exactly 128+n; (2) its scope finalizer sends SIGTERM and then waits for the
 * exit forever, with no SIGKILL after a grace period; (3) it also SIGTERMs the
 * group after any non-zero exit, which is not ours to decide. So the spawn is
 * wrapped here directly: `Effect.async` for the start, a `Deferred` for the
 * exit, `process.kill(-pid)` for the group.
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"

/** How the command ended. */
export type Termination =
  | { readonly _tag: "Exited"; readonly code: number }
  | { readonly _tag: "Signaled"; readonly signal: NodeJS.Signals }

/** The shell convention: the exit code, or 128+n after a death by signal n. */
export const exitCode = (termination: Termination): number =>
  termination._tag === "Exited" ? termination.code : 128 + signalNumber(termination.signal)

/** The number of a signal on this platform (SIGTERM is 15 everywhere that matters). */
export const signalNumber = (signal: NodeJS.Signals): number => Os.constants.signals[signal] ?? 15

/** The command could not be started: 127 when not found, 126 otherwise (not executable, a directory…). */
export class SpawnFailed extends Data.TaggedError("SpawnFailed")<{
  readonly command: string
  readonly code: string | undefined
  readonly message: string
}> {
  get exitCode(): number {
    return this.code === "ENOENT" ? 127 : 126
  }
}

/** A running command, leader of its own process group. */
export interface GroupProcess {
  readonly pid: number
  /** Completes when the group leader (the command) exits. */
  readonly exit: Effect.Effect<Termination>
  readonly hasExited: Effect.Effect<boolean>
  /** Signals the whole group; a no-op when no member is left. */
  readonly kill: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** Whether any process of the group is still alive. */
  readonly groupAlive: Effect.Effect<boolean>
}

const killGroup = (pid: number, signal: NodeJS.Signals | 0): boolean => {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    // ESRCH: the group is empty. EPERM cannot happen for our own children.
    return false
  }
}

/**
 * Waits until the leader has exited and no process of the group is left, or
 * `grace` has passed; `true` when the group is gone.
 */
export const awaitGroupGone = (child: GroupProcess, grace: Duration.Duration): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    yield* child.exit
    while (yield* child.groupAlive) yield* Effect.sleep("50 millis")
    return true
  }).pipe(
    Effect.timeoutTo({ duration: grace, onSuccess: () => true, onTimeout: () => false })
  )

/**
 * SIGTERM to the group, then SIGKILL to whatever is left after `grace`; completes
 * when the leader has exited.
 */
export const terminate = (child: GroupProcess, grace: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* child.kill("SIGTERM")
    const gone = yield* awaitGroupGone(child, grace)
    if (!gone) yield* child.kill("SIGKILL")
    yield* child.exit
  })

/**
 * Starts `command` with inherited stdio as the leader of a new process group
 * (`detached`: on POSIX, Node calls setsid(), so the command is also out of the
 * terminal's foreground group and sees only the signals the CLI forwards).
 * When the Scope closes while it still runs, the group is terminated
 * (SIGTERM, SIGKILL after `killGrace`).
 */
export const spawnGroup = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly env: NodeJS.ProcessEnv; readonly killGrace: Duration.Duration }
): Effect.Effect<GroupProcess, SpawnFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const exited = yield* Deferred.make<Termination>()
      const child = yield* Effect.async<ChildProcess.ChildProcess, SpawnFailed>((resume) => {
        let started = false
        const handle = ChildProcess.spawn(command, [...args], {
          stdio: "inherit",
          detached: true,
          env: options.env
        })
        handle.once("spawn", () => {
          started = true
          resume(Effect.succeed(handle))
        })
        handle.on("error", (error: NodeJS.ErrnoException) => {
          if (started) return
          resume(Effect.fail(
            new SpawnFailed({
              command,
              code: error.code,
              message: error.code === "ENOENT"
                ? `command not found: ${command}`
                : `cannot run ${command}: ${error.code ?? error.message}`
            })
          ))
        })
        handle.once("exit", (code, signal) => {
          Deferred.unsafeDone(
            exited,
            Effect.succeed<Termination>(
              signal !== null ? { _tag: "Signaled", signal } : { _tag: "Exited", code: code ?? 0 }
            )
          )
        })
      })
      const pid = child.pid!
      const handle: GroupProcess = {
        pid,
        exit: Deferred.await(exited),
        hasExited: Deferred.isDone(exited),
        kill: (signal) => Effect.sync(() => void killGroup(pid, signal)),
        groupAlive: Effect.sync(() => killGroup(pid, 0))
      }
      return handle
    }),
    (child) => Effect.flatMap(child.hasExited, (done) => done ? Effect.void : terminate(child, options.killGrace))
  )

/** The signals the CLI takes over while `exec` runs, and forwards to the command. */
export const forwardedSignals: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM", "SIGHUP"]

/**
 * Replaces Node's default handling of `forwardedSignals` (exit at once) for the
 * lifetime of the Scope: each signal received is queued instead.
 */
export const captureSignals: Effect.Effect<Queue.Dequeue<NodeJS.Signals>, never, Scope.Scope> = Effect.gen(
  function*() {
    const queue = yield* Queue.unbounded<NodeJS.Signals>()
    const onSignal = (signal: NodeJS.Signals) => {
      Queue.unsafeOffer(queue, signal)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (const signal of forwardedSignals) process.on(signal, onSignal)
      }),
      () =>
        Effect.sync(() => {
          for (const signal of forwardedSignals) process.off(signal, onSignal)
        })
    )
    return queue
  }
)

/** A signal already received, if any, without waiting. */
export const pendingSignal = (signals: Queue.Dequeue<NodeJS.Signals>): Effect.Effect<Option.Option<NodeJS.Signals>> =>
  Queue.poll(signals)
