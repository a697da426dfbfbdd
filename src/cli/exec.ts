/**
 * `effect-lock exec`: run a command while holding a lock, like flock(1) across
 * machines.
 *
 * The sequence: connect (exit 2 on failure) → acquire with `Lock.acquire`,
 * auto-extended (conflict code when held elsewhere) → spawn the command as the
 * leader of its own process group → wait for whichever comes first, its exit
 * or the loss of the lock → release → exit with its code.
 *
 * Signals: SIGINT/SIGTERM/SIGHUP are taken over for the whole run. While
 * waiting for the lock they abort the wait (exit 128+n); while the command runs
 * they are forwarded to its group, and the CLI keeps holding (and renewing) the
 * lock until the command has exited, so whatever cleanup it does on that
 * signal is still protected.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { format } from "../internal/duration.js"
import * as Lock from "../Lock.js"
import * as LockKv from "../LockKv.js"
import { CliExit, ExitCodes } from "./errors.js"
import * as ChildGroup from "./process.js"
import * as Progress from "./progress.js"
import * as Store from "./store.js"

export interface ExecOptions {
  readonly key: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration
  readonly namespace: Option.Option<string>
  readonly conflictExitCode: number
  readonly killGrace: Duration.Duration
  /** No "held elsewhere" line and no waiting line (for cron); errors are still printed. */
  readonly quiet: boolean
}

/** Environment variables the command receives on top of the CLI's own. */
export const envNames = {
  key: "EFFECT_LOCK_KEY",
  fence: "EFFECT_LOCK_FENCE"
} as const

/** Runs the command under the lock; succeeds with the exit code the CLI should end with. */
export const exec = (options: ExecOptions): Effect.Effect<number, CliExit> =>
  Effect.scoped(Effect.gen(function*() {
    // First, so that a signal at any later point is handled rather than killing the CLI outright.
    const signals = yield* ChildGroup.captureSignals
    const abortOnSignal = Effect.flatMap(
      Queue.take(signals),
      (signal) => Effect.fail(new CliExit({ code: 128 + ChildGroup.signalNumber(signal) }))
    )

    const store = yield* Effect.raceFirst(Store.connect(options.namespace), abortOnSignal)

    const handle = yield* Lock.acquire(options.key, { ttl: options.ttl, wait: options.wait }).pipe(
      (acquire) => options.quiet ? acquire : Progress.whileWaiting(options.key)(acquire),
      Effect.provideService(LockKv.LockKv, store),
      Effect.catchTags({
        LockNotAcquired: () =>
          new CliExit({
            code: options.conflictExitCode,
            message: options.quiet
              ? undefined
              : Duration.toMillis(options.wait) > 0
              ? `lock "${options.key}" is held elsewhere (waited ${format(Duration.toMillis(options.wait))})`
              : `lock "${options.key}" is held elsewhere`
          }),
        LockKvError: (error) => new CliExit({ code: ExitCodes.config, message: `cannot use Redis: ${error.message}` }),
        InvalidArgument: (error) => new CliExit({ code: ExitCodes.config, message: error.message }),
        // Only with `replicas`, which the CLI does not ask for.
        ReplicationNotConfirmed: (error) => new CliExit({ code: ExitCodes.config, message: error.message })
      }),
      (acquire) => Effect.raceFirst(acquire, abortOnSignal)
    )

    // A signal that arrived while acquiring, but after the race was decided: do not start the command.
    const early = yield* ChildGroup.pendingSignal(signals)
    if (early._tag === "Some") return 128 + ChildGroup.signalNumber(early.value)

    const child = yield* ChildGroup.spawnGroup(options.command, options.args, {
      env: { ...process.env, [envNames.key]: options.key, [envNames.fence]: String(handle.fence) },
      killGrace: options.killGrace
    }).pipe(
      Effect.catchTag("SpawnFailed", (error) => new CliExit({ code: error.exitCode, message: error.message }))
    )

    // Forward every signal the CLI receives to the command's group until the scope closes.
    yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(signals), child.kill)))

    const outcome = yield* Effect.raceFirst(
      Effect.map(child.exit, (termination) => ({ _tag: "Exited" as const, termination })),
      Effect.as(handle.lost, { _tag: "Lost" as const })
    )
    if (outcome._tag === "Exited") return ChildGroup.exitCode(outcome.termination)

    yield* Effect.sync(() =>
      process.stderr.write(
        `effect-lock: lock "${options.key}" was lost while the command ran; ` +
          `sending SIGTERM to its process group (SIGKILL after ${format(Duration.toMillis(options.killGrace))})\n`
      )
    )
    yield* ChildGroup.terminate(child, options.killGrace)
    return ExitCodes.lost
  }))
