/**
 * A Promise facade for code that does not use Effect: the original helper's
 * `useLock()`, backed by one `ManagedRuntime` of `LockKv.layer` per process.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as LockKv from "./LockKv.js"

/**
 * The store as Promises: Redis when `REDIS_URL`/`REDIS_HOST` is set, memory
 * otherwise. Promises reject with the `LockKvError` (or `InvalidArgument`,
 * `ConfigError`) itself.
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
  /** Releases the connection. A `useLock()` after `close()` makes a new instance. */
  readonly close: () => Promise<void>
}

const make = (): Kv => {
  const runtime = ManagedRuntime.make(LockKv.layer)
  const run = <A, E>(effect: Effect.Effect<A, E, LockKv.LockKv>): Promise<A> =>
    runtime.runPromiseExit(effect).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      // Reject with the typed error itself, not a FiberFailure wrapper.
      throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
    })
  let closed: Promise<void> | undefined
  const kv: Kv = {
    backend: () => run(Effect.map(LockKv.LockKv, (store) => store.backend)),
    set: (key, value, options) => run(Effect.flatMap(LockKv.LockKv, (store) => store.set(key, value, options))),
    get: (key) =>
      run(Effect.flatMap(LockKv.LockKv, (store) => Effect.map(store.get(key), Option.getOrNull))),
    del: (key) => run(Effect.flatMap(LockKv.LockKv, (store) => Effect.map(store.del(key), (removed) => removed ? 1 : 0))),
    compareAndDelete: (key, expected) =>
      run(Effect.flatMap(LockKv.LockKv, (store) => store.compareAndDelete(key, expected))),
    close: () => {
      if (current === kv) current = undefined
      closed ??= runtime.dispose()
      return closed
    },
    [Symbol.asyncDispose]: () => kv.close()
  }
  return kv
}

let current: Kv | undefined

/**
 * The process-wide lock store: the same instance on every call until `close()`.
 *
 * @example
 * ```ts
 * import { useLock } from "effect-lock/promise"
 *
 * const kv = useLock()
 * if (await kv.set("resource:1:lock", "me", { NX: true, PX: 5000 })) {
 *   try {
 *     // critical section
 *   } finally {
 *     await kv.compareAndDelete("resource:1:lock", "me")
 *   }
 * }
 * await kv.close()
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const useLock = (): Kv => {
  current ??= make()
  return current
}
