/**
 * `WAIT` after a lock write: the write, then `WAIT n timeout` on the same
 * connection in the same pipeline (WAIT counts the replicas that have
 * acknowledged every write this connection made before it, so a WAIT on
 * another connection, or after a reconnect, would prove nothing). It narrows
 * the window in which a failover can lose an acknowledged lock; it does not
 * close it (an acknowledged write can still be lost, and a replica that did
 * not acknowledge can still be promoted): fencing remains the guarantee.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { Command } from "ioredis"
import type * as LockKv from "../../LockKv.js"
import { InvalidArgument, LockKvError } from "../errors.js"
import { unexpected } from "./errors.js"
import type { ScriptClient } from "./scripts.js"

/** WAIT holds its connection (every command behind it waits): at most this long. @internal */
export const maxReplicationTimeoutMillis = 2_000
const maxReplicas = 100

/**
 * Checks a `Replication` from raw input: `replicas` a whole number from 1 to
 * 100, `timeout` a duration from 1 ms to 2 s (WAIT's 0 would wait forever).
 * Returns the timeout in whole milliseconds.
 *
 * @internal
 */
export const checkReplication = (
  replication: unknown,
  argument = "replication"
): { readonly replicas: number; readonly timeoutMillis: number } | InvalidArgument => {
  if (typeof replication !== "object" || replication === null) {
    return new InvalidArgument({ argument, message: `${argument} must be { replicas, timeout }` })
  }
  const { replicas, timeout } = replication as { readonly replicas?: unknown; readonly timeout?: unknown }
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 1 || replicas > maxReplicas) {
    return new InvalidArgument({
      argument: "replicas",
      message: `replicas must be a whole number from 1 to ${maxReplicas} (got ${String(replicas)})`
    })
  }
  const millis = Duration.isDuration(timeout) ? Math.ceil(Duration.toMillis(timeout)) : Number.NaN
  if (!(millis >= 1 && millis <= maxReplicationTimeoutMillis)) {
    return new InvalidArgument({
      argument: "replicasTimeout",
      message: `replicasTimeout must be from 1 ms to ${maxReplicationTimeoutMillis} ms: WAIT holds the connection ` +
        "meanwhile, and 0 would wait forever"
    })
  }
  return { replicas, timeoutMillis: millis }
}

/**
 * `write` (already sent on `node`), then WAIT on `node`, sent at once: one
 * pipeline. Resolves with `[the write's reply, the number of replicas that
 * acknowledged]`; rejects as soon as either fails.
 *
 * @internal
 */
export const withWait = (
  node: ScriptClient,
  write: Promise<unknown>,
  replication: { readonly replicas: number; readonly timeoutMillis: number }
): Promise<unknown> =>
  Promise.all([
    write,
    node.sendCommand(new Command("wait", [String(replication.replicas), String(replication.timeoutMillis)]))
  ])

/** Splits `withWait`'s reply. */
const split = (operation: string, reply: unknown): readonly [unknown, number] | LockKvError =>
  Array.isArray(reply) && reply.length === 2 && typeof reply[1] === "number"
    ? [reply[0], reply[1]]
    : unexpected(operation, reply)

/** The acquire script's reply read by `convert`, with the replicas that acknowledged it. @internal */
export const acquiredWithReplicas = (
  convert: (reply: unknown) => Effect.Effect<LockKv.AcquireResult, LockKvError>
) =>
(reply: unknown): Effect.Effect<LockKv.AcquireResult, LockKvError> => {
  const parts = split("acquire", reply)
  if (parts instanceof LockKvError) return Effect.fail(parts)
  const [written, acked] = parts
  return Effect.map(
    convert(written),
    (result) => result._tag === "Acquired" ? { _tag: "Acquired", fence: result.fence, replicas: acked } : result
  )
}

/**
 * A compare-and-expire's reply with its WAIT: `true` only when it reset the
 * TTL and enough replicas acknowledged it; a reset they did not acknowledge
 * fails (it cannot be counted on after a failover).
 *
 * @internal
 */
export const expiredWithReplicas =
  (asked: number, timeoutMillis: number) => (reply: unknown): Effect.Effect<boolean, LockKvError> => {
    const parts = split("compareAndExpire", reply)
    if (parts instanceof LockKvError) return Effect.fail(parts)
    const [written, acked] = parts
    if (written !== 1) return Effect.succeed(false)
    if (acked >= asked) return Effect.succeed(true)
    return Effect.fail(
      new LockKvError({
        operation: "compareAndExpire",
        message:
          `Redis compareAndExpire: ${acked} of ${asked} replicas acknowledged the new TTL within ${timeoutMillis} ms`
      })
    )
  }
