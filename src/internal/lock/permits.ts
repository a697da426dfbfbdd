import type * as Effect from "effect/Effect"
import type { Options } from "../../Semaphore.js"
import { InvalidArgument } from "../errors.js"
import { checkPermits } from "../keys.js"
import type { Check } from "./engine.js"
import type { ReplicationNotConfirmed } from "./errors.js"
import { permitOps } from "./ops.js"
import { checkSettings } from "./settings.js"

/**
 * Checks a call for `permits` of a semaphore: its key and options as a lock's,
 * its limit and permits; its lease is then those permits (`permitOps`).
 */
export const checkPermitSettings = (permits: number): Check<Options> => (key, options) => {
  if (typeof options !== "object" || options === null) {
    return new InvalidArgument({ argument: "options", message: "options with a limit are required" })
  }
  const invalid = checkPermits(permits, options.limit)
  if (invalid !== undefined) return invalid
  const settings = checkSettings(key, options)
  if (settings instanceof InvalidArgument) return settings
  if (settings.replication !== undefined) {
    // WAIT after the permit scripts is not built (it would be as for a lock: wait.ts).
    return new InvalidArgument({
      argument: "replicas",
      message: "replicas is supported by Lock only, not by Semaphore or ReadWriteLock"
    })
  }
  return { ...settings, ops: permitOps(permits, options.limit) }
}

/**
 * The engine's combinators as permits see them: `checkPermitSettings` refuses
 * `replicas`, so a permit call never fails with `ReplicationNotConfirmed`.
 */
export const unreplicated = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, ReplicationNotConfirmed>, R> =>
  effect as Effect.Effect<A, Exclude<E, ReplicationNotConfirmed>, R>
