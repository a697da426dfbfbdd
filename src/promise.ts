/**
 * A Promise facade for code that does not use Effect: the original helper's
 * `useLock()`. Every call returns a handle of its own on one shared store per
 * process (one `LockKv.layer`, one Redis connection), which is closed when the
 * last open handle is closed.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as EffectConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as LockKv from "./LockKv.js"

/**
 * The configuration is invalid (`REDIS_PORT=abc`, an empty `REDIS_URL`…), as
 * an `Error`: `message` names the variable, never a secret value, and `cause`
 * is the `ConfigError` that `LockKv.layer` failed with.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly message: string
  readonly cause: EffectConfigError.ConfigError
}> {}

/**
 * A handle on the process-wide store, with Promises: Redis when
 * `REDIS_URL`/`REDIS_HOST` is set, memory otherwise. Promises reject with an
 * `Error` that has a `_tag`: the `LockKvError` or `InvalidArgument` itself, a
 * `ConfigError` (above), or Effect's `InterruptedException`/`UnknownException`
 * for what should never happen.
 *
 * @since 0.1.0
 * @category models
 */
export interface Kv extends AsyncDisposable {
  /** `"redis"` or `"memory"`; resolves once the store is connected. */
  readonly backend: () => Promise<"redis" | "memory">
  /** `true` when written (`NX`: only when absent, `XX`: only when present, `PX`: TTL in ms). */
  readonly set: (key: string, value: string, options?: LockKv.LockKv.SetOptions) => Promise<boolean>
  /** The value, or `null` when absent. */
  readonly get: (key: string) => Promise<string | null>
  /** The number of keys removed (0 or 1). */
  readonly del: (key: string) => Promise<number>
  /** Atomically deletes `key` only when it holds `expected`: the safe way to release. */
  readonly compareAndDelete: (key: string, expected: string) => Promise<boolean>
  /**
   * Closes this handle (idempotent; also `Symbol.asyncDispose`). The shared
   * store is closed, once the calls under way have ended, when this was the
   * last open handle; a `useLock()` after that makes a new one. Calls on a
   * closed handle reject with a `LockKvError`.
   */
  readonly close: () => Promise<void>
}

type StoreExit = Exit.Exit<LockKv.LockKv.Service, EffectConfigError.ConfigError | LockKv.LockKvError>

/** The shared store and the handles on it. */
interface Instance {
  /** Open handles: the store is closed when the last one closes. */
  handles: number
  /** The build under way or done; unset when a build fails, so that the next call tries again. */
  store: Promise<StoreExit> | undefined
  /** The scope of the built store. */
  scope: Scope.CloseableScope | undefined
  /** Calls under way: closing waits for them, so none runs on a closed store. */
  readonly inFlight: Set<Promise<unknown>>
  closing: boolean
}

let current: Instance | undefined

/** The store, built on first use. A failed build is not kept (a Redis that was down may be up at the next call). */
const build = (instance: Instance): Promise<StoreExit> => {
  if (instance.store !== undefined) return instance.store
  const scope = Effect.runSync(Scope.make())
  const attempt: Promise<StoreExit> = Effect.runPromiseExit(
    Effect.map(Layer.buildWithScope(LockKv.layer, scope), Context.get(LockKv.LockKv))
  ).then((exit) => {
    if (Exit.isSuccess(exit)) {
      instance.scope = scope
      return exit
    }
    if (instance.store === attempt) instance.store = undefined
    return Effect.runPromise(Scope.close(scope, exit)).then(() => exit)
  })
  instance.store = attempt
  return attempt
}

/** Every rejection is an `Error` with a `_tag`; a `ConfigError` (a plain object) is wrapped. */
const toError = (cause: Cause.Cause<unknown>): Error => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (EffectConfigError.isConfigError(error)) {
      return new ConfigError({ message: `invalid configuration: ${String(error)}`, cause: error })
    }
    if (error instanceof Error) return error
    return new Cause.UnknownException(error, "effect-lock/promise: unexpected failure")
  }
  // Defects and interruptions: `squash` gives the defect, or an InterruptedException.
  const squashed = Cause.squash(cause)
  return squashed instanceof Error
    ? squashed
    : new Cause.UnknownException(squashed, "effect-lock/promise: unexpected defect")
}

const closedError = (operation: string) =>
  new LockKv.LockKvError({
    operation,
    message: `${operation} on a closed useLock() handle: call useLock() for a new one`
  })

/** Closes the store once the calls under way have ended (each is bounded: the connect timeout, a call's 5 s). */
const dispose = async (instance: Instance): Promise<void> => {
  instance.closing = true
  if (current === instance) current = undefined
  while (instance.inFlight.size > 0) await Promise.allSettled(instance.inFlight)
  if (instance.store !== undefined) await instance.store
  if (instance.scope !== undefined) await Effect.runPromise(Scope.close(instance.scope, Exit.void))
}

const makeHandle = (instance: Instance): Kv => {
  let closed: Promise<void> | undefined
  const run = <A>(
    operation: string,
    use: (store: LockKv.LockKv.Service) => Effect.Effect<A, LockKv.LockKvError | LockKv.InvalidArgument>
  ): Promise<A> => {
    if (closed !== undefined || instance.closing) return Promise.reject(closedError(operation))
    const call = build(instance)
      .then((built) => {
        if (Exit.isFailure(built)) throw toError(built.cause)
        // Suspended: a throw while building the call (a throwing getter in untyped input) is a defect, not a bare throw.
        return Effect.runPromiseExit(Effect.suspend(() => use(built.value)))
      })
      .then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        throw toError(exit.cause)
      })
    instance.inFlight.add(call)
    const settled = () => {
      instance.inFlight.delete(call)
    }
    call.then(settled, settled)
    return call
  }
  const kv: Kv = {
    backend: () => run("backend", (store) => Effect.succeed(store.backend)),
    set: (key, value, options) => run("set", (store) => store.set(key, value, options)),
    get: (key) => run("get", (store) => Effect.map(store.get(key), Option.getOrNull)),
    del: (key) => run("del", (store) => Effect.map(store.del(key), (removed) => removed ? 1 : 0)),
    compareAndDelete: (key, expected) => run("compareAndDelete", (store) => store.compareAndDelete(key, expected)),
    close: () => {
      if (closed === undefined) {
        instance.handles--
        closed = instance.handles === 0 ? dispose(instance) : Promise.resolve()
      }
      return closed
    },
    [Symbol.asyncDispose]: () => kv.close()
  }
  return kv
}

/**
 * A handle on the process-wide lock store. Every call returns a new handle,
 * and all the open handles share one instance (one store, one Redis
 * connection); closing a handle (`close()`, or `await using`) releases only
 * that handle, and the instance is closed with the last open one. A
 * `useLock()` after that makes a new instance.
 *
 * @example
 * ```ts
 * import { useLock } from "effect-lock/promise"
 *
 * await using kv = useLock()
 * if (await kv.set("resource:1:lock", "me", { NX: true, PX: 5000 })) {
 *   try {
 *     // critical section
 *   } finally {
 *     await kv.compareAndDelete("resource:1:lock", "me")
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const useLock = (): Kv => {
  if (current === undefined) {
    current = { handles: 0, store: undefined, scope: undefined, inFlight: new Set(), closing: false }
  }
  current.handles++
  return makeHandle(current)
}
