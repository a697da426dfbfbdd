/**
 * The Redis backend of `LockKv`: one ioredis client for commands and one
 * duplicate for the release channel, both held for the store's lifetime.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { RedisOptions as IORedisOptions } from "ioredis"
import { Command, Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import type { ConnectionOptions as TlsOptions } from "node:tls"
import type * as LockKv from "../../LockKv.js"
import { InvalidArgument, LockKvError } from "../errors.js"
import {
  checkKey,
  checkToken,
  checkTtlMillis,
  companionKey,
  defaultNamespace,
  namespaced,
  releaseChannel,
  validateKey,
  validateSetOptions,
  validateTtl
} from "../keys.js"
import { BoundedMap } from "../boundedMap.js"
import { makeReleaseHub, released } from "../releaseHub.js"
import * as scripts from "./scripts.js"
import type { Script } from "./scripts.js"
import { type ParsedRedisUrl, parseRedisUrl } from "./url.js"

// -----------------------------------------------------------------------------
// Timeouts
//
// A store call must fail within 5 s or succeed; it must never hang. The pieces:
//
// - `enableOfflineQueue: false`: ioredis never queues a command to send it
//   later, possibly long after the caller gave up on it (a late `acquire` would
//   leave a lock nobody owns). Instead each call waits for the connection to be
//   ready itself (`awaitReady`), inside its own deadline, and only then sends.
// - `maxRetriesPerRequest: 0` + `autoResendUnfulfilledCommands: false`: a
//   command in flight when the connection drops is rejected at once (its
//   outcome is unknown, which the lock engine handles) instead of being
//   silently re-sent after the reconnect.
// - A watchdog (`watchStalls`): when commands are pending on the command
//   connection and no reply has come for 3 s (frozen server, half-open TCP),
//   the connection is dropped: every command in flight fails, and the retry
//   strategy reconnects instead of every later command timing out on a dead
//   socket. One timer per connection, in place of ioredis' `commandTimeout` +
//   `socketTimeout`, which arm and clear two timers and a listener for every
//   command: about 15 % of an uncontended lock cycle. The subscriber
//   connection, which is not on that path, keeps ioredis' options.
// - `callTimeout`: an Effect-level backstop around wait-for-ready + command.
// -----------------------------------------------------------------------------

const commandTimeoutMillis = 3_000
const callTimeout = Duration.seconds(4)
const quitTimeout = Duration.seconds(2)
const defaultConnectTimeout = Duration.seconds(5)
const subscriberHeartbeat = Duration.seconds(15)
const maxReconnectDelayMillis = 2_000

interface TlsMaterial {
  readonly ca: string | undefined
  readonly cert: string | undefined
  readonly key: Redacted.Redacted<string> | undefined
}

interface ResolvedOptions {
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: Redacted.Redacted<string> | undefined
  readonly db: number
  readonly tls: TlsMaterial | undefined
  readonly namespace: string
  readonly connectTimeout: Duration.Duration
  /** Strings that must never appear in an error message or a log line. */
  readonly secrets: ReadonlyArray<string>
}

const optionsError = (message: string) => new LockKvError({ operation: "configure", message })

const resolveOptions = (options: LockKv.LockKv.RedisOptions): Effect.Effect<ResolvedOptions, LockKvError> =>
  Effect.gen(function*() {
    const rawUrl = options.url === undefined
      ? undefined
      : Redacted.isRedacted(options.url)
      ? Redacted.value(options.url)
      : options.url
    let url: ParsedRedisUrl | undefined
    if (rawUrl !== undefined && rawUrl.trim() !== "") {
      const parsed = parseRedisUrl(rawUrl)
      if (Either.isLeft(parsed)) return yield* optionsError(`the Redis URL ${parsed.left}`)
      url = parsed.right
    }

    const host = url?.host ?? options.host ?? "127.0.0.1"
    if (host.trim() === "") return yield* optionsError("the Redis host must not be empty")
    const port = url?.port ?? options.port ?? 6379
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      return yield* optionsError("the Redis port must be an integer from 1 to 65535")
    }
    const db = url?.db ?? options.db ?? 0
    if (!Number.isSafeInteger(db) || db < 0) {
      return yield* optionsError("the Redis database must be a whole number, 0 or more")
    }
    // An explicit password overrides one in the URL; the URL's user name wins over `username`.
    const password = options.password ?? (url?.password !== undefined ? Redacted.make(url.password) : undefined)
    const username = url?.username ?? options.username

    const namespace = options.namespace ?? defaultNamespace
    if (typeof namespace !== "string" || namespace === "") {
      return yield* optionsError("the namespace must be a non-empty string")
    }

    let connectTimeout = defaultConnectTimeout
    if (options.connectTimeout !== undefined) {
      const decoded = Option.getOrUndefined(Duration.decodeUnknown(options.connectTimeout))
      if (
        decoded === undefined || !Duration.isFinite(decoded) || !(Duration.toMillis(decoded) > 0) ||
        (typeof options.connectTimeout === "number" && !(options.connectTimeout > 0))
      ) {
        return yield* optionsError("connectTimeout must be a positive finite duration")
      }
      connectTimeout = decoded
    }

    const hasTlsMaterial = options.tlsCa !== undefined || options.tlsCert !== undefined ||
      options.tlsKey !== undefined
    // `rediss://` always means TLS; otherwise `tls`, or the presence of TLS material when `tls` is unset.
    const useTls = url?.tls === true || options.tls === true || (options.tls === undefined && hasTlsMaterial)
    const tls: TlsMaterial | undefined = useTls
      ? { ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey }
      : undefined

    const secrets = [
      rawUrl,
      url?.password,
      password === undefined ? undefined : Redacted.value(password),
      options.tlsKey === undefined ? undefined : Redacted.value(options.tlsKey)
    ].filter((s): s is string => s !== undefined && s !== "")

    return { host, port, username, password, db, tls, namespace, connectTimeout, secrets }
  })

// -----------------------------------------------------------------------------
// Errors: never keep an ioredis error as it is (its `command.args` carry the
// AUTH password); keep a fresh Error with its name and a scrubbed message.
// -----------------------------------------------------------------------------

const credentialsInUrl = /(rediss?:\/\/)[^@\s/]*@/gi

/** @internal */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text.replace(credentialsInUrl, "$1<redacted>@")
  // Longest first, so a secret containing another is removed whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join("<redacted>")
  }
  return out
}

/** @internal */
export const sanitize = (error: unknown, secrets: ReadonlyArray<string>): Error => {
  const name = error instanceof Error && typeof error.name === "string" ? error.name : "Error"
  const message = error instanceof Error
    ? String(error.message)
    : typeof error === "string"
    ? error
    : "unknown error"
  const clean = new Error(scrub(message, secrets))
  clean.name = scrub(name, secrets)
  return clean
}

const describeStall = () =>
  `Redis did not answer within ${commandTimeoutMillis / 1000}s (the command may or may not have run)`

/** How often the watchdog looks at the commands in flight. */
const stallCheckMillis = 250

interface StallWatch {
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
 */
const watchStalls = (client: Redis): Effect.Effect<StallWatch, never, Scope.Scope> =>
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
            client.stream?.destroy(new Error(describeStall()))
          }, stallCheckMillis)
          timer.unref()
          return timer
        }),
        (timer) => Effect.sync(() => clearInterval(timer))
      ),
      watch
    )
  })

/** A short explanation of the well-known ioredis failures. */
const describe = (cause: Error): string => {
  const message = cause.message
  if (cause.name === "MaxRetriesPerRequestError") {
    return "the connection to Redis was lost before the reply (the command may or may not have run)"
  }
  if (message.startsWith("Command timed out")) {
    return `Redis did not answer within ${commandTimeoutMillis / 1000}s (the command may or may not have run)`
  }
  if (message.startsWith("Stream isn't writeable")) return "not connected to Redis"
  if (message.startsWith("Connection is closed")) return "the connection to Redis is closed"
  return message
}

const isAuthFailure = (error: Error | undefined): boolean =>
  error !== undefined && /WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(error.message)

// -----------------------------------------------------------------------------
// Connections
// -----------------------------------------------------------------------------

interface Connection {
  readonly client: Redis
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

const closeClient = (client: Redis): Effect.Effect<void> =>
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

/** The reply to the SELECT ioredis sends on every new connection (ioredis attaches the command to reply errors). */
const isSelectError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "command" in error &&
  typeof error.command === "object" && error.command !== null && "name" in error.command &&
  error.command.name === "select"

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
 */
const acquireConnection = (
  role: string,
  db: number,
  where: string,
  secrets: ReadonlyArray<string>,
  runtime: Runtime.Runtime<never>,
  create: (retryStrategy: (times: number) => number | null) => Redis
): Effect.Effect<Connection, never, Scope.Scope> =>
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
        lastError = sanitize(error, secrets)
        if (isSelectError(error)) {
          selectFailure = new LockKvError({
            operation: "connect",
            message: `Redis at ${where} cannot use database ${db}: ${lastError.message}`,
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
            return Effect.fail(new LockKvError({ operation, message: selectFailure.message, cause: selectFailure.cause }))
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

/** Connects eagerly; a failure says why (unreachable, credentials refused, TLS, no such database). */
const connect = (
  connection: Connection,
  where: string,
  secrets: ReadonlyArray<string>
): Effect.Effect<void, LockKvError> =>
  Effect.tryPromise({
    try: () => connection.client.connect(),
    catch: (error) => {
      // `connect()` rejects with a bare "Connection is closed."; the reason came as an `error` event.
      const cause = connection.lastError() ?? sanitize(error, secrets)
      const message = isAuthFailure(cause)
        ? `Redis at ${where} refused the credentials: ${cause.message}`
        : `cannot connect to Redis at ${where}: ${cause.message}`
      return new LockKvError({ operation: "connect", message, cause })
    }
  }).pipe(
    // Connected, but not in the database asked for: never use it.
    Effect.zipRight(Effect.suspend(() => {
      const failure = connection.selectFailure()
      return failure === undefined ? Effect.void : Effect.fail(failure)
    }))
  )

// -----------------------------------------------------------------------------
// The store
// -----------------------------------------------------------------------------

const invalidValue = (argument: string) =>
  new InvalidArgument({ argument, message: `${argument} must be a string` })

const unexpected = (operation: string, reply: unknown) =>
  new LockKvError({
    operation,
    message: `unexpected reply from Redis to ${operation}: ${JSON.stringify(reply)?.slice(0, 100)}`
  })

const toRemaining = (millis: number): Option.Option<Duration.Duration> =>
  millis >= 0 ? Option.some(Duration.millis(millis)) : Option.none()

/** The acquire script's `[1, fence]` or `[0, pttl]`. */
const toAcquireResult = (reply: unknown): Effect.Effect<LockKv.AcquireResult, LockKvError> =>
  Array.isArray(reply) && reply.length === 2 && typeof reply[1] === "number"
    ? Effect.succeed(
      reply[0] === 1 ? { _tag: "Acquired", fence: reply[1] } : { _tag: "Held", remaining: toRemaining(reply[1]) }
    )
    : Effect.fail(unexpected("acquire", reply))

// Effects are immutable values: the hot path's two outcomes are built once.
const succeedTrue = Effect.succeed(true)
const succeedFalse = Effect.succeed(false)
/** Scripts answering 1 (done) or 0. */
const isOne = (reply: unknown): Effect.Effect<boolean> => reply === 1 ? succeedTrue : succeedFalse

/**
 * The stores of this process, by release channel. When a release hands the
 * lock to a waiter of one of them, the releasing store tells that store at once
 * from the release's reply, rather than leave it to the pub/sub message, which
 * Redis writes after that reply and which then takes another turn of the event
 * loop (or more) to be read.
 */
const storesByChannel = new Map<string, (message: string) => void>()

/**
 * The release script's reply: 1 when it deleted the lock (0 when it did not
 * hold our token), or, when it handed the lock on, `[2 or 3, channel, message]`.
 */
const releasedAndHandedOn = (reply: unknown): Effect.Effect<boolean> => {
  if (!Array.isArray(reply)) return reply === 1 ? succeedTrue : succeedFalse
  const [code, channel, message] = reply as ReadonlyArray<unknown>
  // The waiter, when in this process, is resumed before the releaser, which resumes after this.
  if (typeof channel === "string" && typeof message === "string") storesByChannel.get(channel)?.(message)
  return code === 3 ? succeedTrue : succeedFalse
}
const asIs = <A>(reply: A): Effect.Effect<A> => Effect.succeed(reply)

/** ioredis turns the reply's bulk strings into strings (as its own commands do). */
const replyAsStrings = { replyEncoding: "utf8" } as const

const isNoScript = (error: unknown): boolean =>
  error instanceof Error && typeof error.message === "string" && error.message.startsWith("NOSCRIPT")

/** A RESP bulk string: how Redis' protocol sends one argument. */
const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`

/**
 * EVAL or EVALSHA of one of the store's scripts, with arguments that are all
 * strings already. They are set after construction: ioredis' constructor copies
 * its arguments with `Array.prototype.flat`, which is slow in V8 (about 2 µs for
 * the 11 arguments of the acquire script, as much as the rest of the store's
 * JavaScript for that command), and converts non-strings, which these are not.
 * With `wire` (the command as written, see `scriptSender`), `toWritable` sends
 * that instead of encoding every argument again; ioredis' own `defineCommand`
 * overrides `toWritable` too.
 */
class ScriptCommand extends Command {
  private readonly wire: string | undefined
  constructor(name: "eval" | "evalsha", args: Array<string>, wire: string | undefined) {
    super(name, [], replyAsStrings)
    this.args = args
    this.wire = wire
  }
  override toWritable(socket: object): string | Buffer {
    return this.wire ?? super.toWritable(socket)
  }
}

/**
 * Sends `script` on `client` as EVALSHA, or as EVAL (which loads it) the first
 * time on each connection and when retrying after a NOSCRIPT (a script flush, a
 * failover to a server that never saw it): what ioredis' `defineCommand` does,
 * without its per-call wrapping (argument copies, a promise chained for the
 * NOSCRIPT retry, closures). `args` is `[<slot for the sha or source>, <number
 * of keys>, ...KEYS, ...ARGV]`, all strings; each command gets its own copy.
 * `tail`, when given, is `args` from the number of keys on as RESP bulk strings
 * (`bulk`), mostly cached by the caller: the command is then written as the
 * array header, the command name and script (constant) and `tail`.
 */
const scriptSender = (client: Redis, script: Script) => {
  const evalHead = `$4\r\neval\r\n${bulk(script.lua)}`
  const evalshaHead = `$7\r\nevalsha\r\n${bulk(script.sha)}`
  // The socket the script was last sent on as EVAL: after that, EVALSHA finds it there.
  let loadedOn: unknown = undefined
  return (args: ReadonlyArray<string>, tail: string | undefined, reload: boolean): Promise<unknown> => {
    const own = args.slice()
    const stream = client.stream
    let command: Command
    if (reload || loadedOn !== stream) {
      loadedOn = stream
      own[0] = script.lua
      command = new ScriptCommand(
        "eval",
        own,
        tail === undefined ? undefined : `*${own.length + 1}\r\n${evalHead}${tail}`
      )
    } else {
      own[0] = script.sha
      command = new ScriptCommand(
        "evalsha",
        own,
        tail === undefined ? undefined : `*${own.length + 1}\r\n${evalshaHead}${tail}`
      )
    }
    return client.sendCommand(command) as Promise<unknown>
  }
}

/**
 * What the store keeps of a lock key (see `keysOf`): the five KEYS of its
 * scripts (`lockKeys`), and, as RESP, the number of keys and the KEYS, and the
 * caller's key (the release script's last argument).
 */
interface LockKeyEntry {
  readonly keys: scripts.LockKeys
  readonly keysWire: string
  readonly keyWire: string
}

/**
 * How many lock keys the store keeps (`keysOf`); when full, the oldest entry
 * goes (a key used again is simply rebuilt).
 */
const maxCachedKeys = 1_000

const decimal = /^[1-9][0-9]*$/

/**
 * Reads a message of the release channel (see the release script):
 * `<token>|<fence>|<key>` grants the lock on `key` to the waiter `token`;
 * `<token>||<key>` only wakes that waiter, or every waiter of `key` when the
 * token is empty. Tokens never contain "|", fences are decimal, so the key (last)
 * may contain anything. Anything else is ignored (undefined).
 *
 * @internal
 */
export const parseReleaseMessage = (
  message: string
): { readonly key: string; readonly target: string | undefined; readonly wake: LockKv.Wake } | undefined => {
  const first = message.indexOf("|")
  if (first === -1) return undefined
  const second = message.indexOf("|", first + 1)
  if (second === -1 || second === message.length - 1) return undefined
  const target = first === 0 ? undefined : message.slice(0, first)
  const key = message.slice(second + 1)
  if (second === first + 1) return { key, target, wake: released }
  const digits = message.slice(first + 1, second)
  const fence = Number(digits)
  if (target === undefined || !decimal.test(digits) || !Number.isSafeInteger(fence)) return undefined
  return { key, target, wake: { _tag: "Granted", fence } }
}

/** @internal */
export const make = (
  options: LockKv.LockKv.RedisOptions
): Effect.Effect<LockKv.LockKv.Service, LockKvError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options)
    const { namespace, secrets } = resolved
    const where = `${resolved.host.includes(":") ? `[${resolved.host}]` : resolved.host}:${resolved.port}`
    const runtime = yield* Effect.runtime<never>()
    const connectTimeoutMillis = Math.max(1, Math.ceil(Duration.toMillis(resolved.connectTimeout)))

    const main = yield* acquireConnection("command", resolved.db, where, secrets, runtime, (retryStrategy) => {
      const clientOptions: IORedisOptions = {
        host: resolved.host,
        port: resolved.port,
        db: resolved.db,
        lazyConnect: true,
        connectTimeout: connectTimeoutMillis,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        enableReadyCheck: true,
        connectionName: "effect-lock",
        retryStrategy,
        // After a failover the old primary answers READONLY: reconnect to find the new one.
        reconnectOnError: (error) => error.message.startsWith("READONLY")
      }
      if (resolved.username !== undefined && resolved.password !== undefined) {
        clientOptions.username = resolved.username
      }
      // The only place the password and the TLS key are unwrapped for the client.
      if (resolved.password !== undefined) clientOptions.password = Redacted.value(resolved.password)
      if (resolved.tls !== undefined) {
        const tls: TlsOptions = {}
        if (resolved.tls.ca !== undefined) tls.ca = resolved.tls.ca
        if (resolved.tls.cert !== undefined) tls.cert = resolved.tls.cert
        if (resolved.tls.key !== undefined) tls.key = Redacted.value(resolved.tls.key)
        clientOptions.tls = tls
      }
      return new Redis(clientOptions)
    })
    // Pub/sub ignores the database: the subscriber stays in 0 and sends no SELECT.
    const subscriber = yield* acquireConnection("subscriber", 0, where, secrets, runtime, (retryStrategy) =>
      main.client.duplicate({
        db: 0,
        retryStrategy,
        connectionName: "effect-lock-sub",
        commandTimeout: commandTimeoutMillis,
        socketTimeout: commandTimeoutMillis
      }))

    const hub = makeReleaseHub()
    // This store's own channel: a release tells the waiter it hands the lock to
    // on the channel of that waiter's store, so each message reaches one
    // process, not every subscriber of the namespace.
    const channel = `${releaseChannel(namespace)}:${randomBytes(8).toString("hex")}`
    const deliver = (message: string): void => {
      const parsed = parseReleaseMessage(message)
      if (parsed !== undefined) hub.signal(parsed.key, parsed.target, parsed.wake)
    }
    // Grants told by a releaser of this process (`storesByChannel`), until their
    // pub/sub copy comes; bounded, for a copy that never comes or came first
    // (a grant told twice is harmless: the waiter takes it once).
    const toldInProcess = new BoundedMap<string, true>(1024)
    subscriber.client.on("message", (from: string, message: string) => {
      if (from !== channel || toldInProcess.delete(message)) return
      deliver(message)
    })
    storesByChannel.set(channel, (message) => {
      toldInProcess.set(message, true)
      deliver(message)
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => storesByChannel.delete(channel)))

    yield* Effect.gen(function*() {
      yield* connect(main, where, secrets)
      yield* Effect.tryPromise({
        try: () => main.client.ping(),
        catch: (error) =>
          new LockKvError({
            operation: "connect",
            message: `Redis at ${where} did not answer PING: ${describe(sanitize(error, secrets))}`,
            cause: sanitize(error, secrets)
          })
      })
      yield* connect(subscriber, where, secrets)
      yield* Effect.tryPromise({
        try: () => subscriber.client.subscribe(channel),
        catch: (error) =>
          new LockKvError({
            operation: "connect",
            message: `cannot subscribe to the release channel: ${describe(sanitize(error, secrets))}`,
            cause: sanitize(error, secrets)
          })
      })
    }).pipe(
      Effect.timeoutFail({
        duration: resolved.connectTimeout,
        onTimeout: () =>
          new LockKvError({
            operation: "connect",
            message: `Redis at ${where} did not answer within ${Duration.format(resolved.connectTimeout)}` +
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
      )
    )
    yield* Effect.logDebug(`effect-lock: connected to Redis at ${where}, database ${resolved.db}`)

    // A subscriber sends nothing by itself, so a dead connection would go unnoticed:
    // a periodic PING lets `socketTimeout` detect it and reconnect.
    yield* Effect.tryPromise(() => subscriber.client.ping()).pipe(
      Effect.ignore,
      Effect.repeat(Schedule.spaced(subscriberHeartbeat)),
      Effect.forkScoped
    )

    const client = main.client

    const stalls = yield* watchStalls(client)

    const failed = (operation: string, error: unknown, dropsBefore: number) => {
      const cause = sanitize(error, secrets)
      // Failed because the watchdog dropped the silent connection: say so.
      const why = stalls.drops !== dropsBefore ? describeStall() : describe(cause)
      return Effect.fail(new LockKvError({ operation, message: `Redis ${operation} failed: ${why}`, cause }))
    }

    /**
     * Sends one command and resumes with its converted reply: `run` sends it
     * (with `reload`, again as EVAL after a NOSCRIPT, which means the script did
     * not run), `convert` reads the reply.
     */
    const dispatch = <A>(
      operation: string,
      run: (reload: boolean) => Promise<unknown>,
      convert: (reply: unknown) => Effect.Effect<A, LockKvError>,
      resume: (effect: Effect.Effect<A, LockKvError>) => void
    ): void => {
      const dropsBefore = stalls.drops
      const attempt = (reload: boolean): void => {
        let sent: Promise<unknown>
        try {
          sent = run(reload)
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

    /**
     * One command as an Effect. While connected, it is bounded by the stall
     * watchdog (and fails at once when the connection drops): no timer or fiber
     * per call on the hot path. Otherwise the call first waits for the
     * connection, bounded by `callTimeout`.
     */
    const call = <A>(
      operation: string,
      run: (reload: boolean) => Promise<unknown>,
      convert: (reply: unknown) => Effect.Effect<A, LockKvError>
    ): Effect.Effect<A, LockKvError> =>
      Effect.async<A, LockKvError>((resume) => {
        if (main.usable()) dispatch(operation, run, convert, resume)
        else resume(afterReady(operation, run, convert))
      })

    const afterReady = <A>(
      operation: string,
      run: (reload: boolean) => Promise<unknown>,
      convert: (reply: unknown) => Effect.Effect<A, LockKvError>
    ): Effect.Effect<A, LockKvError> =>
      main.awaitReady(operation).pipe(
        // Ready now: send at once (if the connection is lost again meanwhile, the command fails).
        Effect.zipRight(Effect.async<A, LockKvError>((resume) => dispatch(operation, run, convert, resume))),
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

    const sendCompareAndDelete = scriptSender(client, scripts.lockCompareAndDelete)
    const sendCompareAndExpire = scriptSender(client, scripts.lockCompareAndExpire)
    const sendAcquire = scriptSender(client, scripts.lockAcquire)
    const sendRelease = scriptSender(client, scripts.lockRelease)

    const keysCache = new BoundedMap<string, LockKeyEntry>(maxCachedKeys)
    /**
     * What the lock scripts need of `key`, built once per key rather than for
     * every command, or why `key` is invalid; a key found here was valid.
     */
    const keysOf = (key: string): LockKeyEntry | InvalidArgument => {
      let entry = keysCache.get(key)
      if (entry !== undefined) return entry
      const invalid = checkKey(key)
      if (invalid !== undefined) return invalid
      const keys = scripts.lockKeys(namespaced(namespace, key))
      // Both lock scripts take these five KEYS, so "5" starts the wire form of either.
      entry = { keys, keysWire: bulk(scripts.lockAcquire.numberOfKeys) + keys.map(bulk).join(""), keyWire: bulk(key) }
      keysCache.set(key, entry)
      return entry
    }
    const channelWire = bulk(channel)

    const full = (key: string) => Effect.map(validateKey(key), (k) => namespaced(namespace, k))
    const str = (value: unknown, argument: string) =>
      typeof value === "string" ? Effect.succeed(value) : Effect.fail(invalidValue(argument))
    const lifetime = yield* Effect.scope
    return {
      backend: "redis",
      lifetime,
      namespace,
      get: (key) =>
        Effect.flatMap(
          full(key),
          (k) => call("get", () => client.get(k), (reply) => Effect.succeed(Option.fromNullable(reply as string | null)))
        ),
      set: (key, value, setOptions) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const v = yield* str(value, "value")
          const normalized = yield* validateSetOptions(setOptions)
          const args: Array<string | number> = [k, v]
          if (normalized.ttlMillis !== undefined) args.push("PX", normalized.ttlMillis)
          if (normalized.condition !== undefined) args.push(normalized.condition)
          return yield* call("set", () => client.call("SET", ...args), (reply) => Effect.succeed(reply === "OK"))
        }),
      del: (key) =>
        Effect.flatMap(full(key), (k) => call("del", () => client.del(k), (n) => Effect.succeed((n as number) > 0))),
      compareAndDelete: (key, expected) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const e = yield* str(expected, "expected")
          const args = ["", scripts.lockCompareAndDelete.numberOfKeys, k, e]
          return yield* call("compareAndDelete", (reload) => sendCompareAndDelete(args, undefined, reload), isOne)
        }),
      compareAndExpire: (key, expected, ttl) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const e = yield* str(expected, "expected")
          const millis = Duration.toMillis(yield* validateTtl(ttl))
          const args = ["", scripts.lockCompareAndExpire.numberOfKeys, k, e, String(millis)]
          return yield* call("compareAndExpire", (reload) => sendCompareAndExpire(args, undefined, reload), isOne)
        }),
      pttl: (key) =>
        Effect.flatMap(
          full(key),
          (k) => call("pttl", () => client.pttl(k), (reply) => Effect.succeed(toRemaining(reply as number)))
        ),
      // The hot path of every lock cycle: synchronous checks (pure, so done when
      // the Effect is built), then one command, whose reply is read in its callback.
      acquire: (key, token, ttl, queue) => {
        const entry = keysOf(key)
        if (entry instanceof InvalidArgument) return Effect.fail(entry)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        const millis = checkTtlMillis(ttl)
        if (millis instanceof InvalidArgument) return Effect.fail(millis)
        let place = 0
        if (queue !== undefined) {
          const placeMillis = checkTtlMillis(queue, "queue")
          if (placeMillis instanceof InvalidArgument) return Effect.fail(placeMillis)
          place = placeMillis
        }
        const keys = entry.keys
        const ttlArg = String(millis)
        const placeArg = String(place)
        const args = [
          "",
          scripts.lockAcquire.numberOfKeys,
          keys[0],
          keys[1],
          keys[2],
          keys[3],
          keys[4],
          token,
          ttlArg,
          placeArg,
          channel
        ]
        const tail = entry.keysWire + bulk(token) + bulk(ttlArg) + bulk(placeArg) + channelWire
        return call("acquire", (reload) => sendAcquire(args, tail, reload), toAcquireResult)
      },
      release: (key, token) => {
        const entry = keysOf(key)
        if (entry instanceof InvalidArgument) return Effect.fail(entry)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        const keys = entry.keys
        const args = ["", scripts.lockRelease.numberOfKeys, keys[0], keys[1], keys[2], keys[3], keys[4], token, key]
        const tail = entry.keysWire + bulk(token) + entry.keyWire
        return call("release", (reload) => sendRelease(args, tail, reload), releasedAndHandedOn)
      },
      fence: (key) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const reply = yield* call("fence", () => client.get(companionKey(k, "fence")), asIs)
          if (reply === null) return Option.none()
          const fence = Number(reply)
          if (!Number.isSafeInteger(fence)) return yield* unexpected("fence", reply)
          return Option.some(fence)
        }),
      watchReleases: hub.watch,
      notificationMark: hub.mark
    }
  })
