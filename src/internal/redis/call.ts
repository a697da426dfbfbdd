/**
 * One command of the Redis store as an Effect, and what bounds it in time.
 * A store call must fail within 5 s or succeed; it must never hang:
 *
 * - `enableOfflineQueue: false`: ioredis never queues a command to send it
 *   later, possibly long after the caller gave up on it (a late `acquire` would
 *   leave a lock nobody owns). Instead each call waits for the connection to be
 *   ready itself (`awaitReady`), inside its own deadline, and only then sends.
 * - `maxRetriesPerRequest: 0` + `autoResendUnfulfilledCommands: false`: a
 *   command in flight when the connection drops is rejected at once (its
 *   outcome is unknown, which the lock engine handles) instead of being
 *   silently re-sent after the reconnect.
 * - A watchdog (`watchStalls`): when commands are pending on the command
 *   connection and no reply has come for 3 s (frozen server, half-open TCP),
 *   the connection is dropped: every command in flight fails, and the retry
 *   strategy reconnects instead of every later command timing out on a dead
 *   socket. One timer per connection, in place of ioredis' `commandTimeout` +
 *   `socketTimeout`, which arm and clear two timers and a listener for every
 *   command: about 15 % of an uncontended lock cycle. The subscriber
 *   connection, which is not on that path, keeps ioredis' options.
 * - `callTimeout`: an Effect-level backstop around wait-for-ready + command.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import { LockKvError } from "../errors.js"
import { type Client, commandTimeoutMillis, type Connection } from "./connection.js"
import { describe, isNoScript, noReplyWithin, sanitize } from "./errors.js"

const callTimeout = Duration.seconds(4)
/** How often the watchdog looks at the commands in flight. */
const stallCheckMillis = 250

/** @internal */
export interface StallWatch {
  /** A command was sent: in flight until `settled`. */
  readonly sent: () => void
  /** A command got its reply (or failed). */
  readonly settled: () => void
  /** How many times a silent connection was dropped. */
  readonly drops: number
}

/**
 * Drops `client`'s connection when commands are in flight and none has been
 * answered for `commandTimeoutMillis` (checked every `stallCheckMillis`, on a
 * timer that does not keep the process alive). Replies come in order, so
 * "no reply for 3 s" bounds the wait of every pending command.
 *
 * @internal
 */
export const watchStalls = (client: Redis): Effect.Effect<StallWatch, never, Scope.Scope> =>
  Effect.suspend(() => {
    let pending = 0
    let lastProgress = 0
    let drops = 0
    const watch: StallWatch = {
      sent: () => {
        if (pending++ === 0) lastProgress = performance.now()
      },
      settled: () => {
        pending--
        lastProgress = performance.now()
      },
      get drops() {
        return drops
      }
    }
    return Effect.as(
      Effect.acquireRelease(
        Effect.sync(() => {
          const timer = setInterval(() => {
            if (pending === 0 || performance.now() - lastProgress < commandTimeoutMillis) return
            drops++
            lastProgress = performance.now()
            // Destroys the socket (as ioredis' socketTimeout does: a graceful close would wait
            // for the silent peer); commands in flight are rejected, never re-sent, and the
            // retry strategy reconnects.
            client.stream?.destroy(new Error(noReplyWithin(commandTimeoutMillis)))
          }, stallCheckMillis)
          timer.unref()
          return timer
        }),
        (timer) => Effect.sync(() => clearInterval(timer))
      ),
      watch
    )
  })

/**
 * Sends one command and reads its reply (`convert`). `send` sends it; with
 * `reload`, it is a script sent again, as EVAL, after a NOSCRIPT (which means
 * it did not run).
 *
 * @internal
 */
export type Call = <A>(
  operation: string,
  send: (reload: boolean) => Promise<unknown>,
  convert: (reply: unknown) => Effect.Effect<A, LockKvError>
) => Effect.Effect<A, LockKvError>

/**
 * `call` on `connection`. While connected, a command is bounded by the stall
 * watchdog (and fails at once when the connection drops): no timer or fiber
 * per call on the hot path. Otherwise the call first waits for the
 * connection, bounded by `callTimeout`.
 *
 * @internal
 */
export const makeCall = (
  connection: Connection<Client>,
  secrets: ReadonlyArray<string>,
  /** What drops a silent connection: `watchStalls` of the client, or the cluster's per-node watch. */
  watch: Effect.Effect<StallWatch, never, Scope.Scope>
): Effect.Effect<Call, never, Scope.Scope> =>
  Effect.map(watch, (stalls) => {
    const failed = (operation: string, error: unknown, dropsBefore: number) => {
      const cause = sanitize(error, secrets)
      // Failed because the watchdog dropped the silent connection: say so.
      const why = stalls.drops !== dropsBefore
        ? noReplyWithin(commandTimeoutMillis)
        : describe(cause, commandTimeoutMillis)
      return Effect.fail(new LockKvError({ operation, message: `Redis ${operation} failed: ${why}`, cause }))
    }

    /** Sends the command now and resumes with its converted reply. */
    const dispatch = <A>(
      operation: string,
      send: (reload: boolean) => Promise<unknown>,
      convert: (reply: unknown) => Effect.Effect<A, LockKvError>,
      resume: (effect: Effect.Effect<A, LockKvError>) => void
    ): void => {
      const dropsBefore = stalls.drops
      const attempt = (reload: boolean): void => {
        let sent: Promise<unknown>
        try {
          sent = send(reload)
        } catch (error) {
          return resume(failed(operation, error, dropsBefore))
        }
        stalls.sent()
        sent.then(
          (reply) => {
            stalls.settled()
            resume(convert(reply))
          },
          (error) => {
            stalls.settled()
            if (!reload && isNoScript(error)) attempt(true)
            else resume(failed(operation, error, dropsBefore))
          }
        )
      }
      attempt(false)
    }

    const afterReady = <A>(
      operation: string,
      send: (reload: boolean) => Promise<unknown>,
      convert: (reply: unknown) => Effect.Effect<A, LockKvError>
    ): Effect.Effect<A, LockKvError> =>
      connection.awaitReady(operation).pipe(
        // Ready now: send at once (if the connection is lost again meanwhile, the command fails).
        Effect.zipRight(Effect.async<A, LockKvError>((resume) => dispatch(operation, send, convert, resume))),
        // The lock engine calls the store from finalizers (release), which are
        // uninterruptible: without this, the timeout below could not stop the
        // wait for a connection that never comes back, and the call would hang.
        Effect.interruptible,
        Effect.timeoutFail({
          duration: callTimeout,
          onTimeout: () =>
            new LockKvError({
              operation,
              message: `Redis ${operation} did not complete within ${Duration.format(callTimeout)}`
            })
        })
      )

    const call: Call = (operation, send, convert) =>
      Effect.async((resume) => {
        if (connection.usable()) dispatch(operation, send, convert, resume)
        else resume(afterReady(operation, send, convert))
      })
    return call
  })
