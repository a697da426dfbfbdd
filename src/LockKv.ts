/**
 * The key-value store that locks live in: Redis when configured (shared by every
 * process that points at the same server and namespace), in memory otherwise.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as internalConfig from "./internal/config.js"
import * as errors from "./internal/errors.js"
import * as keys from "./internal/keys.js"
import * as internalMemory from "./internal/memory/store.js"
import * as internalRedis from "./internal/redis/store.js"

/**
 * A store operation failed: the backend could not be reached, refused the
 * connection, timed out or answered with an error. `cause` is sanitized: it keeps
 * the name and message of the underlying error, never its arguments (an ioredis
 * AUTH error carries the password).
 *
 * @since 0.1.0
 * @category errors
 */
export const LockKvError: typeof errors.LockKvError = errors.LockKvError

/**
 * @since 0.1.0
 * @category errors
 */
export type LockKvError = errors.LockKvError

/**
 * Invalid input, rejected before the store is touched (an empty key, NX with XX,
 * a ttl that is not a positive finite duration, a negative wait…).
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidArgument: typeof errors.InvalidArgument = errors.InvalidArgument

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidArgument = errors.InvalidArgument

/**
 * The outcome of a lock acquisition attempt on the store: either the key was
 * free and now holds the caller's token (with the new fencing token), or it is
 * held by someone else, with its remaining time to live when it has one.
 *
 * @since 0.1.0
 * @category models
 */
export type AcquireResult =
  | {
    readonly _tag: "Acquired"
    readonly fence: number
    /** With `replication`: how many replicas acknowledged the write (WAIT's reply). */
    readonly replicas?: number | undefined
  }
  | { readonly _tag: "Held"; readonly remaining: Option.Option<Duration.Duration> }

/**
 * What woke a waiter (see `ReleaseWatcher.next`). `Released`: the key was
 * released (or its reservation freed), try again. `Granted`: the store has
 * already given this waiter the lock, with fencing token `fence`, so no further
 * try is needed. The lock then holds the waiter's token only until its place
 * in the queue would have ended (the `queue` duration of its last `acquire`,
 * ~2 s for `Lock`), so that a waiter that crashed blocks nobody for long: the
 * waiter must extend it to its own ttl (an `acquire` with its token does that
 * too, and returns the same fence).
 *
 * @since 0.1.0
 * @category models
 */
export type Wake =
  | { readonly _tag: "Released" }
  | { readonly _tag: "Granted"; readonly fence: number }

/**
 * A registration for release notifications of one key (see `watchReleases`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReleaseWatcher {
  /**
   * Completes once a release has woken this waiter since `next` last completed,
   * with what woke it. A `Granted` is kept until `next` returns it, never
   * replaced by a later `Released`.
   */
  readonly next: Effect.Effect<Wake>
  /**
   * `next` as a callback, for waiters that race it against a timer without a
   * fiber per race: calls `listener` once with the next wake (at once when one
   * is pending). The returned function cancels; a wake arriving afterwards is
   * kept for the next call.
   */
  readonly onNext: (listener: (wake: Wake) => void) => () => void
  /** Stops listening. Idempotent. */
  readonly close: () => void
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace LockKv {
  /**
   * Options of `set`, with Redis' meaning: `NX` writes only when absent, `XX`
   * only when present, `PX` (milliseconds) or `ttl` (any DurationInput) sets a
   * time to live. Without a TTL the key lives until deleted.
   *
   * @since 0.1.0
   * @category models
   */
  export interface SetOptions {
    readonly NX?: boolean | undefined
    readonly XX?: boolean | undefined
    readonly PX?: number | undefined
    readonly ttl?: Duration.DurationInput | undefined
  }

  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Which backend serves this store. */
    readonly backend: "redis" | "memory"
    /** The key prefix: keys are stored as `<namespace>:<key>`. */
    readonly namespace: string
    /**
     * The store's lifetime: it closes when the store is released. The lock
     * engine runs its background work (renewals, validity deadlines) in it.
     */
    readonly lifetime: Scope.Scope
    /** The value at `key`, if any. */
    readonly get: (key: string) => Effect.Effect<Option.Option<string>, LockKvError | InvalidArgument>
    /** Writes `value`; `true` when written (NX/XX may refuse, as in Redis). */
    readonly set: (
      key: string,
      value: string,
      options?: SetOptions | undefined
    ) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** `true` when a key was removed. */
    readonly del: (key: string) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** Atomically deletes `key` only when its value equals `expected`. */
    readonly compareAndDelete: (key: string, expected: string) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /**
     * Atomically resets the TTL of `key` only when its value equals `expected`.
     * With `replication` (Redis only), a reset that fewer replicas than asked
     * acknowledged fails with `LockKvError` (the TTL was reset on the master).
     */
    readonly compareAndExpire: (
      key: string,
      expected: string,
      ttl: Duration.DurationInput,
      replication?: Replication | undefined
    ) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** The remaining time to live; none when the key is absent or has no TTL. */
    readonly pttl: (key: string) => Effect.Effect<Option.Option<Duration.Duration>, LockKvError | InvalidArgument>

    // -- lock primitives, used by the `Lock` module -----------------------------

    /**
     * One atomic step: when `key` is free (absent, and not reserved for the
     * waiter at the head of its queue, unless that is `token`), store `token`
     * with a TTL of exactly `ttl` and increment the key's fencing counter;
     * otherwise report how long until it may be free. With `queue`, a caller
     * that finds the lock taken joins the key's FIFO of waiters and keeps its
     * place for `queue` after each try, so a release hands the lock to the
     * longest waiter instead of whoever is fastest. One round trip on Redis.
     * With `replication` (Redis only; the memory store refuses it with
     * `InvalidArgument`), `WAIT` follows the script in the same pipeline, on
     * the connection to the key's master, and an `Acquired` result says how
     * many replicas acknowledged it (`replicas`): the caller decides what too
     * few means.
     */
    readonly acquire: (
      key: string,
      token: string,
      ttl: Duration.Duration,
      queue?: Duration.Duration | undefined,
      replication?: Replication | undefined
    ) => Effect.Effect<AcquireResult, LockKvError | InvalidArgument>
    /**
     * Gives up `key` for `token`, atomically: deletes the lock when it holds
     * `token`, or removes `token` from the queue of waiters; then hands the lock
     * on to the next live waiter in a store's queue (Redis: a `Granted` wake with
     * the next fence) or wakes the next waiter (memory). `true` when this call
     * deleted the lock.
     */
    readonly release: (key: string, token: string) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** The last fencing token handed out for `key`, if any. */
    readonly fence: (key: string) => Effect.Effect<Option.Option<number>, LockKvError | InvalidArgument>
    /**
     * Starts listening for releases of `key` as the waiter `token`, until the
     * watcher is closed. `next` completes once a release has woken this waiter
     * since it last completed (a release between registration and waiting is
     * not lost; see `notificationMark` for one before it), with `Granted`
     * when the release handed it the lock.
     * Notifications are a hint: they may be missed, so waiters also wake when
     * the holder's TTL ends, and a waiter that missed a grant finds the lock in
     * its own token at its next queued try.
     */
    readonly watchReleases: (key: string, token: string, mark?: number | undefined) => Effect.Effect<ReleaseWatcher>
    /**
     * A mark of the notifications this store has received so far. A waiter
     * reads it before its first try and registers (`watchReleases(key, token,
     * mark)`) only when that try finds the key held: whatever arrived since
     * the mark then counts as pending (a grant to `token` as that grant, any
     * other as a release), so a notification that overtook the try's reply is
     * not lost, and a try that wins needs no watcher at all.
     */
    readonly notificationMark: () => number

    // -- semaphore primitives, used by the `Semaphore` and `ReadWriteLock` modules --

    /**
     * One atomic step on the counting semaphore `key`, whose holders all use
     * `limit` permits in total: first drops holders whose TTL has passed. When
     * `token` already holds permits (a release granted them while it was not
     * looking, or an earlier try whose reply was lost), resets their TTL to
     * `ttl` and returns their fence. Else, when nobody waits ahead of `token`
     * and `permits` more fit within `limit`, `token` holds them with a TTL of
     * exactly `ttl` and the key's fencing counter is incremented. Otherwise it
     * reports how long until a holder's TTL ends; with `queue`, the caller joins
     * the key's FIFO (or keeps its place for `queue`), and a release grants
     * permits to the waiters at its head, in order, while they fit: the head
     * blocks every later waiter, even one that asks for fewer permits. Fails
     * with `InvalidArgument` (argument `limit`) when the current holders or
     * waiters use another limit. One round trip on Redis.
     */
    readonly acquirePermits: (
      key: string,
      token: string,
      permits: number,
      limit: number,
      ttl: Duration.Duration,
      queue?: Duration.Duration | undefined
    ) => Effect.Effect<AcquireResult, LockKvError | InvalidArgument>
    /**
     * Gives back the permits of `token` (or its place in the queue), then
     * grants permits to the waiters at the head of the queue while they fit
     * (each told with a `Granted` wake, holding its permits until its place in
     * the queue would have ended). `true` when `token` held permits.
     */
    readonly releasePermits: (key: string, token: string) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** Resets the TTL of `token`'s permits to `ttl`; `false` when it holds none (expired, released or deleted). */
    readonly extendPermits: (
      key: string,
      token: string,
      ttl: Duration.Duration
    ) => Effect.Effect<boolean, LockKvError | InvalidArgument>
    /** The permits of `key` held now (holders whose TTL has not passed). */
    readonly permitsInUse: (key: string) => Effect.Effect<number, LockKvError | InvalidArgument>
  }

  /**
   * Replication asked of a write on Redis: `WAIT replicas timeout` right after
   * it, on the same connection. `replicas` from 1 to 100, `timeout` from 1 ms
   * to 2 s (the WAIT holds its connection meanwhile).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Replication {
    readonly replicas: number
    readonly timeout: Duration.Duration
  }

  /**
   * Options of the Redis backend. Secrets are `Redacted` and unwrapped only when
   * handed to the client.
   *
   * @since 0.1.0
   * @category models
   */
  export interface RedisOptions {
    readonly url?: string | Redacted.Redacted<string> | undefined
    readonly host?: string | undefined
    readonly port?: number | undefined
    readonly username?: string | undefined
    readonly password?: Redacted.Redacted<string> | undefined
    readonly db?: number | undefined
    readonly tls?: boolean | undefined
    /** PEM of the CA that signed the server's certificate (TLS). */
    readonly tlsCa?: string | undefined
    /** PEM of a client certificate and its key (mutual TLS). */
    readonly tlsCert?: string | undefined
    readonly tlsKey?: Redacted.Redacted<string> | undefined
    readonly namespace?: string | undefined
    readonly connectTimeout?: Duration.DurationInput | undefined
    /**
     * A Redis Cluster: the addresses of some of its nodes (the client finds the
     * others). Excludes `url`, `host`, `port`, `db` (a cluster has database 0
     * only) and `sentinel`; `username`, `password` and TLS apply to every node.
     */
    readonly cluster?: ClusterOptions | undefined
    /**
     * A primary found through Redis Sentinel (and found again after a
     * failover). Excludes `url`, `host`, `port` and `cluster`; `username`,
     * `password`, `db` and TLS apply to the primary.
     */
    readonly sentinel?: SentinelOptions | undefined
  }

  /**
   * A host and port.
   *
   * @since 0.1.0
   * @category models
   */
  export interface Address {
    readonly host: string
    readonly port: number
  }

  /**
   * See `RedisOptions.cluster`.
   *
   * @since 0.1.0
   * @category models
   */
  export interface ClusterOptions {
    readonly nodes: ReadonlyArray<Address>
  }

  /**
   * See `RedisOptions.sentinel`. `username` and `password` are the sentinels'
   * own credentials (the primary's are `RedisOptions.username`/`password`).
   *
   * @since 0.1.0
   * @category models
   */
  export interface SentinelOptions {
    readonly sentinels: ReadonlyArray<Address>
    /** The name the sentinels monitor the primary under. */
    readonly name: string
    readonly username?: string | undefined
    readonly password?: Redacted.Redacted<string> | undefined
  }

  /**
   * What `LockKv.layer` reads from `Config`: Redis options when Redis is
   * configured, otherwise only the namespace.
   *
   * @since 0.1.0
   * @category models
   */
  export type Settings =
    | { readonly _tag: "Redis"; readonly options: RedisOptions }
    | { readonly _tag: "Memory"; readonly namespace: string }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class LockKv extends Context.Tag("effect-lock/LockKv")<LockKv, LockKv.Service>() {}

/**
 * The default key prefix.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultNamespace: string = keys.defaultNamespace

/**
 * An in-memory store for one process. Expiry reads Effect's `Clock`, so
 * `TestClock` drives it in tests; a scoped fiber sweeps expired keys.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (
  options?: { readonly namespace?: string | undefined }
) => Effect.Effect<LockKv.Service, never, Scope.Scope> = internalMemory.make

/**
 * A Redis-backed store. Connects eagerly: fails with `LockKvError` when the
 * server cannot be reached or refuses the connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRedis: (options: LockKv.RedisOptions) => Effect.Effect<LockKv.Service, LockKvError, Scope.Scope> =
  internalRedis.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<LockKv> = Layer.scoped(LockKv, makeMemory())

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: LockKv.RedisOptions): Layer.Layer<LockKv, LockKvError> =>
  Layer.scoped(LockKv, makeRedis(options))

/**
 * The settings `LockKv.layer` reads: `REDIS_URL` or `REDIS_HOST` (and the other
 * `REDIS_*` names) select Redis; `LOCK_NAMESPACE` sets the prefix.
 *
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<LockKv.Settings> = internalConfig.settings

/**
 * A Redis store built from `Config`-wrapped options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<LockKv.RedisOptions>
): Layer.Layer<LockKv, ConfigError.ConfigError | LockKvError> =>
  Layer.scoped(LockKv, Effect.flatMap(Config.unwrap(config), makeRedis))

/**
 * Builds the store `settings` describe: Redis when configured, memory otherwise.
 * A configured Redis that cannot be reached is an error, never a fallback to
 * memory (that would silently break mutual exclusion across processes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFromSettings = (
  s: LockKv.Settings
): Effect.Effect<LockKv.Service, LockKvError, Scope.Scope> =>
  s._tag === "Redis" ? makeRedis(s.options) : makeMemory({ namespace: s.namespace })

/**
 * The application's store: Redis when configured, memory otherwise. A single
 * module-level value, so providing it once shares one instance (one connection)
 * across the whole layer graph.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<LockKv, ConfigError.ConfigError | LockKvError> = Layer.scoped(
  LockKv,
  Effect.flatMap(settings, makeFromSettings)
)
