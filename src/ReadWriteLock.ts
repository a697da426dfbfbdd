/**
 * Distributed read-write locks: any number of readers at once, or one writer.
 * A read-write lock is a semaphore (`Semaphore`) of `maxLimit` permits with a
 * fair FIFO: a reader takes one permit, a writer takes them all. A writer
 * waits for the readers before it to finish and holds back the readers after
 * it, so a stream of readers cannot starve it.
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as engine from "./internal/lock/engine.js"
import { checkPermitSettings, unreplicated } from "./internal/lock/permits.js"
import type { Handle, InvalidArgument, LockLost, LockNotAcquired, Options as LockOptions } from "./Lock.js"
import type { LockKv, LockKvError } from "./LockKv.js"
import { maxLimit } from "./Semaphore.js"

/**
 * The limit of the semaphore behind a read-write lock (`Semaphore.maxLimit`):
 * at most this many readers at once. A `Semaphore` of the same key shares it,
 * and must then give this limit.
 *
 * @since 0.2.0
 * @category constants
 */
export const maxReaders: number = maxLimit

const read = checkPermitSettings(1)
const write = checkPermitSettings(maxReaders)

/**
 * A lock's options (`ttl`, `wait`, `retry`, `autoExtend`: see `Lock.Options`);
 * not `replicas`, which only `Lock` supports (given anyway: `InvalidArgument`).
 *
 * @since 0.2.0
 * @category models
 */
export type Options = Omit<LockOptions, "replicas" | "replicasTimeout">

const withLimit = (options: Options | undefined) => ({ ...options, limit: maxReaders })

/**
 * Holds `key` for reading, with other readers, once no writer holds it or
 * waits before this reader. Released when the Scope closes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const acquireRead = (
  key: string,
  options?: Options | undefined
): Effect.Effect<Handle, LockNotAcquired | LockKvError | InvalidArgument, LockKv | Scope.Scope> =>
  unreplicated(engine.acquireWith(key, withLimit(options), read))

/**
 * Holds `key` for writing, alone. `fence` strictly increases with every
 * acquisition of the key (reads included), across processes: pass it to the
 * protected resource so that it can refuse a superseded writer.
 *
 * @since 0.2.0
 * @category constructors
 */
export const acquireWrite = (
  key: string,
  options?: Options | undefined
): Effect.Effect<Handle, LockNotAcquired | LockKvError | InvalidArgument, LockKv | Scope.Scope> =>
  unreplicated(engine.acquireWith(key, withLimit(options), write))

/**
 * Runs `effect` holding `key` for reading (see `acquireRead`); interrupted
 * with `LockLost` if the lock is lost meanwhile.
 *
 * @since 0.2.0
 * @category combinators
 */
export const withRead: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, options?: Options | undefined) =>
    unreplicated(engine.withLease(effect, key, withLimit(options), read))
)

/**
 * Runs `effect` holding `key` for writing (see `acquireWrite`); interrupted
 * with `LockLost` if the lock is lost meanwhile.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LockKv, ReadWriteLock } from "effect-lock"
 *
 * const readConfig = Effect.log("reading").pipe(ReadWriteLock.withRead("config"))
 * const writeConfig = Effect.log("writing").pipe(ReadWriteLock.withWrite("config"))
 * Effect.runPromise(Effect.provide(Effect.all([readConfig, writeConfig]), LockKv.layerMemory))
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const withWrite: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, options?: Options | undefined) =>
    unreplicated(engine.withLease(effect, key, withLimit(options), write))
)

/**
 * One try for reading, never waits: `Option.none()` when a writer holds or
 * awaits `key`.
 *
 * @since 0.2.0
 * @category combinators
 */
export const tryWithRead: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, options?: Options | undefined) =>
    unreplicated(engine.tryWithLease(effect, key, withLimit(options), read))
)

/**
 * One try for writing, never waits: `Option.none()` when anyone holds or
 * awaits `key`.
 *
 * @since 0.2.0
 * @category combinators
 */
export const tryWithWrite: {
  (
    key: string,
    options?: Options | undefined
  ): <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    options?: Options | undefined
  ): Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(effect: Effect.Effect<A, E, R>, key: string, options?: Options | undefined) =>
    unreplicated(engine.tryWithLease(effect, key, withLimit(options), write))
)
