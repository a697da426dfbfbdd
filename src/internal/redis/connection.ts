/**
 * The Redis store's connections: ioredis clients held in a Scope, connected
 * eagerly within the connect timeout, usable only once ready in the database
 * asked for, closed with a bounded QUIT. How each command is bounded in time
 * is in `call.ts`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import { LockKvError } from "../errors.js"
import { describe, isAuthFailure, isSelectError, sanitize } from "./errors.js"
import type { ResolvedOptions } from "./options.js"

/**
 * How long a command may wait for its reply: the stall watchdog's limit on the
 * command connection (`call.ts`), ioredis' `commandTimeout` on the subscriber.
 *
 * @internal
 */
export const commandTimeoutMillis = 3_000
const quitTimeout = Duration.seconds(2)
const subscriberHeartbeat = Duration.seconds(15)
const maxReconnectDelayMillis = 2_000

/** A client of one server (standalone, or the primary named by Sentinel) or of a Redis Cluster. @internal */
export type Client = Redis | Cluster

/** @internal */
export interface Connection<C extends Client = Redis> {
  readonly client: C
  /** The last error the connection emitted (sanitized), to explain a failed connect. */
  readonly lastError: () => Error | undefined
  /**
   * Ready, and in the database asked for: commands may be sent. Not the same as
   * `client.status === "ready"`, which ioredis also reports after a failed SELECT.
   */
  readonly usable: () => boolean
  /** Why the current connection could not select its database, if it could not. */
  readonly selectFailure: () => LockKvError | undefined
  readonly awaitReady: (operation: string) => Effect.Effect<void, LockKvError>
}

const closeClient = (client: Client): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (client.status === "wait" || client.status === "end") {
      return Effect.sync(() => client.disconnect())
    }
    return Effect.tryPromise(() => client.quit()).pipe(
      // Runs as a scope finalizer (uninterruptible): let the timeout stop it.
      Effect.interruptible,
      Effect.timeout(quitTimeout),
      Effect.ignore,
      // Whether QUIT was answered or not: drop the socket and any reconnect timer.
      Effect.zipRight(Effect.sync(() => client.disconnect()))
    )
  })

/**
 * Creates a client (with `create`) held until the scope closes. An `error`
 * listener is attached before anything can emit, so ioredis never reports an
 * unhandled error event.
 *
 * The database: ioredis sends `SELECT db` on every new connection, before its
 * ready check, but when SELECT fails it only emits an `error` and goes on to
 * `ready`, so commands would run in database 0. Here a connection counts as
 * usable only once `ready` has come without a failed SELECT (the SELECT reply
 * precedes the ready check's, so its error is known by then); otherwise the
 * connection is dropped and retried, and calls fail at once with the reason.
 * (A cluster client sends no SELECT: it has database 0 only.)
 *
 * @internal
 */
export const acquireConnection = <C extends Client>(
  role: string,
  db: number,
  resolved: ResolvedOptions,
  runtime: Runtime.Runtime<never>,
  create: (retryStrategy: (times: number) => number | null) => C
): Effect.Effect<Connection<C>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let readyOnce = false
      let lastError: Error | undefined
      let usable = false
      let selectFailure: LockKvError | undefined
      // Connections in a row that came up in the wrong database: ioredis restarts
      // its retry count at every `ready`, so the backoff would never grow.
      let failedSelects = 0
      // Reconnect with capped exponential backoff once the connection has been
      // ready; while first connecting, give up at once so the build fails fast.
      const retryStrategy = (times: number): number | null => {
        if (!readyOnce) return null
        const attempt = times + failedSelects
        const base = Math.min(100 * 2 ** Math.min(attempt - 1, 5), maxReconnectDelayMillis)
        return Math.round(base * (0.8 + Math.random() * 0.4))
      }
      const client = create(retryStrategy)
      const readyLatch = Effect.unsafeMakeLatch(false)
      const log = (message: string) => {
        try {
          Runtime.runSync(runtime)(Effect.logDebug(message).pipe(Effect.annotateLogs("redisConnection", role)))
        } catch {
          // logging must never break the connection
        }
      }
      client.on("error", (error: unknown) => {
        lastError = sanitize(error, resolved.secrets)
        if (isSelectError(error)) {
          selectFailure = new LockKvError({
            operation: "connect",
            message: `Redis at ${resolved.where} cannot use database ${db}: ${lastError.message}`,
            cause: lastError
          })
        }
        log(`effect-lock: Redis ${role} connection error: ${lastError.name}: ${lastError.message}`)
      })
      // A new connection: its SELECT is still to come.
      client.on("connect", () => {
        usable = false
        selectFailure = undefined
        readyLatch.unsafeClose()
      })
      client.on("ready", () => {
        if (selectFailure !== undefined) {
          failedSelects++
          log(`effect-lock: Redis ${role} connection is not in database ${db}; dropping it`)
          // Drop it before anything is sent on it; once it has been usable, try again later.
          client.disconnect(readyOnce)
          // Wake the waiters: they fail at once with the reason.
          readyLatch.unsafeOpen()
          return
        }
        failedSelects = 0
        readyOnce = true
        usable = true
        readyLatch.unsafeOpen()
      })
      const onNotReady = () => {
        // A late event of an older connection: the current one is up (its `ready` decides).
        if (client.status === "ready") return
        usable = false
        if (selectFailure === undefined) readyLatch.unsafeClose()
      }
      client.on("close", onNotReady)
      client.on("reconnecting", () => {
        onNotReady()
        log(`effect-lock: Redis ${role} connection lost, reconnecting`)
      })
      // Wake the waiters so they see the final status and fail.
      client.on("end", () => {
        usable = false
        readyLatch.unsafeOpen()
      })

      const isUsable = () => usable && client.status === "ready"
      const awaitReady = (operation: string): Effect.Effect<void, LockKvError> => {
        const loop: Effect.Effect<void, LockKvError> = Effect.suspend(() => {
          if (isUsable()) return Effect.void
          if (selectFailure !== undefined) {
            return Effect.fail(
              new LockKvError({ operation, message: selectFailure.message, cause: selectFailure.cause })
            )
          }
          if (client.status === "end") {
            return Effect.fail(new LockKvError({ operation, message: "the connection to Redis is closed" }))
          }
          // Events arrive a tick after the status changes: re-check after a short pause.
          return readyLatch.await.pipe(Effect.zipRight(Effect.sleep(Duration.millis(5))), Effect.zipRight(loop))
        })
        return loop
      }
      return {
        client,
        lastError: () => lastError,
        usable: isUsable,
        selectFailure: () => selectFailure,
        awaitReady
      }
    }),
    ({ client }) => closeClient(client)
  )

/**
 * The store's two connections, not connected yet (see `connect`): one for
 * commands, made by `create` (given the retry strategy to use), and a
 * duplicate for the release channel. Pub/sub ignores the database: the
 * subscriber stays in 0 and sends no SELECT.
 *
 * @internal
 */
export const acquireConnections = (
  resolved: ResolvedOptions,
  create: (retryStrategy: (times: number) => number | null) => Redis
): Effect.Effect<{ readonly main: Connection; readonly subscriber: Connection }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const main = yield* acquireConnection("command", resolved.db, resolved, runtime, create)
    const subscriber = yield* acquireConnection(
      "subscriber",
      0,
      resolved,
      runtime,
      (retryStrategy) =>
        main.client.duplicate({
          db: 0,
          retryStrategy,
          connectionName: "effect-lock-sub",
          commandTimeout: commandTimeoutMillis,
          socketTimeout: commandTimeoutMillis
        })
    )
    return { main, subscriber }
  })

/** Connects eagerly; a failure says why (unreachable, credentials refused, TLS, no such database). */
const connectOne = (connection: Connection<Client>, resolved: ResolvedOptions): Effect.Effect<void, LockKvError> =>
  Effect.tryPromise({
    try: () => connection.client.connect(),
    catch: (error) => {
      // `connect()` rejects with a bare "Connection is closed."; the reason came as an `error` event.
      const cause = connection.lastError() ?? sanitize(error, resolved.secrets)
      const message = isAuthFailure(cause)
        ? `Redis at ${resolved.where} refused the credentials: ${cause.message}`
        : `cannot connect to Redis at ${resolved.where}: ${cause.message}`
      return new LockKvError({ operation: "connect", message, cause })
    }
  }).pipe(
    // Connected, but not in the database asked for: never use it.
    Effect.zipRight(Effect.suspend(() => {
      const failure = connection.selectFailure()
      return failure === undefined ? Effect.void : Effect.fail(failure)
    }))
  )

/** A connect-time command (PING, SUBSCRIBE) whose failure says what could not be done. */
const connectStep = (
  resolved: ResolvedOptions,
  what: string,
  run: () => Promise<unknown>
): Effect.Effect<void, LockKvError> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => {
      const cause = sanitize(error, resolved.secrets)
      return new LockKvError({
        operation: "connect",
        message: `${what}: ${describe(cause, commandTimeoutMillis)}`,
        cause
      })
    }
  })

/**
 * Connects both connections and subscribes to `channel`, all within the
 * connect timeout; on failure both clients are stopped at once. Then keeps the
 * subscriber alive: it sends nothing by itself, so a dead connection would go
 * unnoticed; a periodic PING lets its `socketTimeout` detect it and reconnect.
 *
 * @internal
 */
export const connect = (
  main: Connection<Client>,
  subscriber: Connection<Client>,
  channel: string,
  resolved: ResolvedOptions
): Effect.Effect<void, LockKvError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* connectOne(main, resolved)
    yield* connectStep(resolved, `Redis at ${resolved.where} did not answer PING`, () => main.client.ping())
    yield* connectOne(subscriber, resolved)
    yield* connectStep(resolved, "cannot subscribe to the release channel", () => subscriber.client.subscribe(channel))
  }).pipe(
    Effect.timeoutFail({
      duration: resolved.connectTimeout,
      onTimeout: () =>
        new LockKvError({
          operation: "connect",
          message: `Redis at ${resolved.where} did not answer within ${Duration.format(resolved.connectTimeout)}` +
            (resolved.tls !== undefined ? " (does it serve TLS on that port?)" : ""),
          ...(main.lastError() !== undefined ? { cause: main.lastError() } : {})
        })
    }),
    // Stop the clients at once (no reconnect timer, no socket), not only when the scope closes.
    Effect.onError(() =>
      Effect.sync(() => {
        main.client.disconnect()
        subscriber.client.disconnect()
      })
    ),
    Effect.zipRight(
      Effect.tryPromise(() => subscriber.client.ping()).pipe(
        Effect.ignore,
        Effect.repeat(Schedule.spaced(subscriberHeartbeat)),
        Effect.forkScoped
      )
    ),
    Effect.asVoid
  )
