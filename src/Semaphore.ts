/**
 * Distributed counting semaphores on top of a `LockKv` store: `limit` permits
 * per key, shared by every process that uses the store. Each holder's permits
 * belong to its own token and have a TTL (a crashed holder's permits come back
 * when it ends), renewed while held; waiters are served in arrival order.
 *
 * @since 0.2.0
 */
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { maxPermitLimit } from "./internal/keys.js"
import * as engine from "./internal/lock/engine.js"
import { checkPermitSettings, unreplicated } from "./internal/lock/permits.js"
import type {
  Handle as LockHandle,
  InvalidArgument,
  LockLost,
  LockNotAcquired,
  Options as LockOptions
} from "./Lock.js"
import type { LockKv, LockKvError } from "./LockKv.js"

/**
 * The largest `limit` a semaphore accepts (2^30).
 *
 * @since 0.2.0
 * @category constants
 */
export const maxLimit: number = maxPermitLimit

/**
 * A lock's options (`ttl`, `wait`, `retry`, `autoExtend`: see `Lock.Options`;
 * not `replicas`, which only `Lock` supports: given anyway, it is refused with
 * `InvalidArgument`)
 * and the semaphore's `limit`: the permits it has in all, a whole number from
 * 1 to `maxLimit`. Every user of a key must give the same limit: a call whose
 * limit differs from the one the key's current holders or waiters use fails
 * with `InvalidArgument` (argument `limit`), naming both.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends Omit<LockOptions, "replicas" | "replicasTimeout"> {
  readonly limit: number
}

/**
 * Permits held: a lock handle (`token`, `fence`, `extend`, `release`, `lost`)
 * for `permits` of the semaphore `key`. `fence` strictly increases with every
 * acquisition of permits of the key, across processes.
 *
 * @since 0.2.0
 * @category models
 */
export interface Handle extends LockHandle {
  readonly permits: number
  readonly limit: number
}

/**
 * Acquires `permits` (1..limit) of the semaphore `key`, waiting up to `wait`
 * in the key's FIFO. They are given back when the Scope closes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const acquire = (
  key: string,
  permits: number,
  options: Options
): Effect.Effect<Handle, LockNotAcquired | LockKvError | InvalidArgument, LockKv | Scope.Scope> =>
  unreplicated(engine.acquireWith(key, options, checkPermitSettings(permits), (handle) => ({
    ...handle,
    permits,
    limit: options.limit
  })))

/**
 * Runs `effect` while holding `permits` (1..limit) of the semaphore `key`,
 * waiting up to `wait` for them. Waiters are served first come, first served:
 * one waiting for many permits holds back those that came after it, even when
 * they ask for fewer. If the permits are lost while `effect` runs, `effect` is
 * interrupted and the result is `LockLost`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LockKv, Semaphore } from "effect-lock"
 *
 * // At most 3 exports at a time, across every process.
 * const program = Effect.log("exporting").pipe(
 *   Semaphore.withPermits("exports", 1, { limit: 3, ttl: "30 seconds" })
 * )
 * Effect.runPromise(Effect.provide(program, LockKv.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const withPermits: {
  (
    key: string,
    permits: number,
    options: Options
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    permits: number,
    options: Options
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  4,
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, permits: number, options: Options) =>
    unreplicated(engine.withLease(effect, key, options, checkPermitSettings(permits)))
)

/**
 * Makes one try for `permits` of `key` and never waits: `Option.none()` when
 * they are not free now (or others wait for them: no barging), otherwise the
 * result of `effect`.
 *
 * @since 0.2.0
 * @category combinators
 */
export const tryWithPermits: {
  (
    key: string,
    permits: number,
    options: Options
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    permits: number,
    options: Options
  ): Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  4,
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, permits: number, options: Options) =>
    unreplicated(engine.tryWithLease(effect, key, options, checkPermitSettings(permits)))
)
