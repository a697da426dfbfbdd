/**
 * Locks on top of a `LockKv` store: owner tokens, atomic safe release, fencing
 * tokens, automatic extension while held, and interruption of the protected
 * effect when the lock is lost.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as errors from "./internal/errors.js"
import * as engine from "./internal/lock/engine.js"
import * as lockErrors from "./internal/lock/errors.js"
import * as leases from "./internal/lock/leases.js"
import * as metrics from "./internal/lock/metrics.js"
import type { LockKv, LockKvError } from "./LockKv.js"

/**
 * `wait` ran out (or the retry schedule ended) while the lock was held elsewhere.
 * `key` is the caller's key, without the namespace.
 *
 * @since 0.1.0
 * @category errors
 */
export const LockNotAcquired: typeof lockErrors.LockNotAcquired = lockErrors.LockNotAcquired

/**
 * @since 0.1.0
 * @category errors
 */
export type LockNotAcquired = lockErrors.LockNotAcquired

/**
 * A held lock was found taken or gone, or could not be confirmed before it would
 * expire. The protected effect has been interrupted; `cause` holds the store
 * error, if one was the reason.
 *
 * @since 0.1.0
 * @category errors
 */
export const LockLost: typeof lockErrors.LockLost = lockErrors.LockLost

/**
 * @since 0.1.0
 * @category errors
 */
export type LockLost = lockErrors.LockLost

/**
 * With `replicas`: fewer replicas than asked acknowledged the acquisition
 * within `replicasTimeout` (`acked` of `asked`). The acquisition has been
 * undone (released by token).
 *
 * @since 0.1.0
 * @category errors
 */
export const ReplicationNotConfirmed: typeof lockErrors.ReplicationNotConfirmed = lockErrors.ReplicationNotConfirmed

/**
 * @since 0.1.0
 * @category errors
 */
export type ReplicationNotConfirmed = lockErrors.ReplicationNotConfirmed

/**
 * Invalid input (empty key, a ttl that is not a positive finite duration or is
 * below `minimumTtl`, a negative or NaN wait), rejected before the store is
 * touched.
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
 * The smallest `ttl` a lock accepts: 93 ms. A lock is trusted for
 * ttl − (1 % of ttl + 30 ms) after the command that set its TTL was sent, and
 * that must leave its renewal, due at ttl/3, a full ttl/3 to be confirmed
 * (ttl − margin ≥ 2·ttl/3). A smaller ttl fails with `InvalidArgument` (the
 * store's own `set` accepts any positive TTL).
 *
 * @since 0.1.0
 * @category constants
 */
export const minimumTtl: Duration.Duration = Duration.millis(leases.minimumTtlMillis)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Time to live of the key; every acquisition and renewal sets exactly this.
   * Default 30 seconds; at least `minimumTtl` (93 ms).
   */
  readonly ttl?: Duration.DurationInput | undefined
  /** How long to keep trying. Default 10 seconds; `0` makes one try. */
  readonly wait?: Duration.DurationInput | undefined
  /**
   * The delays between tries; its input is the failed try. Release notifications
   * and the end of the holder's TTL cut a delay short. Default: exponential
   * backoff from 50 ms with jitter, capped at 1 s.
   */
  readonly retry?: Schedule.Schedule<unknown, LockNotAcquired> | undefined
  /** Renew the TTL every ttl/3 while held. Default true. */
  readonly autoExtend?: boolean | undefined
  /**
   * Redis only: after every acquisition and renewal, `WAIT replicas
   * replicasTimeout` in the same pipeline, on the key's master. An acquisition
   * that fewer replicas acknowledged is undone and fails with
   * `ReplicationNotConfirmed`; such a renewal counts as failed (retried; the
   * lock is lost if none is confirmed in time). Narrows the window in which a
   * failover loses the lock; does not close it: fencing is the guarantee.
   * Default 0 (off); 1 to 100; `InvalidArgument` on the memory store.
   */
  readonly replicas?: number | undefined
  /** How long WAIT waits for the replicas: 1 ms to 2 s, default 500 ms. */
  readonly replicasTimeout?: Duration.DurationInput | undefined
}

/**
 * A held lock.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle {
  /** The caller's key, without the namespace. */
  readonly key: string
  /** The random, unguessable owner id stored as the key's value. */
  readonly token: string
  /**
   * The fencing token: strictly increases with every acquisition of this key,
   * across processes. Pass it to the protected resource so that it can reject
   * writes from a holder that has been superseded.
   */
  readonly fence: number
  /**
   * Resets the TTL (default: the acquisition's ttl, else at least `minimumTtl`);
   * fails with `LockLost` if the lock is no longer ours.
   */
  readonly extend: (ttl?: Duration.DurationInput) => Effect.Effect<void, LockLost | LockKvError | InvalidArgument>
  /** Releases now; `false` when the lock had already expired or been taken (a no-op). */
  readonly release: Effect.Effect<boolean, LockKvError>
  /** Succeeds with the `LockLost` once loss is detected. */
  readonly lost: Effect.Effect<LockLost>
}

/**
 * Acquires `key`, waiting up to `wait`. The lock is released when the Scope
 * closes, on success, failure and interruption alike.
 *
 * @since 0.1.0
 * @category constructors
 */
export const acquire: (
  key: string,
  options?: Options | undefined
) => Effect.Effect<
  Handle,
  LockNotAcquired | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  LockKv | Scope.Scope
> = engine.acquire

/**
 * Runs `effect` while holding `key`, waiting up to `wait` for it. If the lock is
 * lost while `effect` runs, `effect` is interrupted and the result is `LockLost`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Lock, LockKv } from "effect-lock"
 *
 * const program = Effect.log("only one at a time").pipe(
 *   Lock.withLock("reports:daily", { ttl: "10 seconds" })
 * )
 * Effect.runPromise(Effect.provide(program, LockKv.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLock: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    A,
    E | LockNotAcquired | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
    R | LockKv
  >
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<
    A,
    E | LockNotAcquired | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
    R | LockKv
  >
} = dual((args) => Effect.isEffect(args[0]), engine.withLock)

/**
 * Makes one try for `key` and never waits: `Option.none()` when the lock is held
 * elsewhere, otherwise the result of `effect`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryWithLock: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    Option.Option<A>,
    E | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
    R | LockKv
  >
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<Option.Option<A>, E | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument, R | LockKv>
} = dual((args) => Effect.isEffect(args[0]), engine.tryWithLock)

/**
 * The names of the metrics the library records, each tagged with `backend`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metricNames: typeof metrics.names = metrics.names

/**
 * The metrics themselves, to read them (`Metric.value`) or export them; tag with
 * `Metric.tagged("backend", "redis" | "memory")` to select a backend.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockMetrics = {
  acquisitions: metrics.acquisitions,
  contention: metrics.contention,
  lost: metrics.lost,
  waitTime: metrics.waitTime,
  holdTime: metrics.holdTime
}
