import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import type { Options } from "../../Lock.js"
import type * as LockKv from "../../LockKv.js"
import { InvalidArgument } from "../errors.js"
import { checkDuration, checkKey, type DurationRule } from "../keys.js"
import { defaultRetry } from "./backoff.js"
import type { LockNotAcquired } from "./errors.js"
import * as leases from "./leases.js"
import { lockOps, type StoreOps } from "./ops.js"

/** A lock call's key and options, checked. */
export interface Settings {
  readonly key: string
  readonly ttl: Duration.Duration
  readonly ttlMillis: number
  /** Infinity for `Duration.infinity`: then it tries until the retry schedule ends. */
  readonly waitMillis: number
  readonly retry: Schedule.Schedule<unknown, LockNotAcquired>
  readonly autoExtend: boolean
  /** How the lease is taken, kept and given back in the store: a lock key, or permits. */
  readonly ops: StoreOps
  /** `replicas` > 0: WAIT after every acquisition and renewal (Redis only). */
  readonly replication: LockKv.LockKv.Replication | undefined
}

const defaultTtl = Duration.seconds(30)
const defaultWait = Duration.seconds(10)
const defaultTtlMillis = Duration.toMillis(defaultTtl)
const defaultWaitMillis = Duration.toMillis(defaultWait)

/**
 * A lock's ttl: a store TTL, and at least `leases.minimumTtlMillis`. A smaller
 * ttl is a valid store TTL, but a lock with it would always be lost.
 */
const lockTtl: DurationRule = {
  argument: "ttl",
  minimum: {
    millis: leases.minimumTtlMillis,
    why: `a lock is trusted for ttl − (${leases.marginFraction * 100} % of ttl + ${leases.marginFixedMillis} ms) ` +
      "after each renewal, which must leave its renewal, due at ttl/3, a full ttl/3 to be confirmed"
  }
}

const lockWait: DurationRule = { argument: "wait", wait: true }

const defaultReplicasTimeout = Duration.millis(500)

/**
 * `replicas` (a whole number, 0 = off) and `replicasTimeout`; the store checks
 * the ranges it can serve (Redis: 1 to 100 replicas, at most 2 s; memory: none).
 */
const checkReplicas = (options: Options): LockKv.LockKv.Replication | undefined | InvalidArgument => {
  const { replicas, replicasTimeout } = options
  const timeout = replicasTimeout === undefined
    ? defaultReplicasTimeout
    : checkDuration(replicasTimeout, { argument: "replicasTimeout" })
  if (timeout instanceof InvalidArgument) return timeout
  if (replicas === undefined || replicas === 0) return undefined
  if (typeof replicas !== "number" || !Number.isSafeInteger(replicas) || replicas < 0) {
    return new InvalidArgument({
      argument: "replicas",
      message: `replicas must be a whole number, 0 or more (got ${String(replicas)})`
    })
  }
  return { replicas, timeout }
}

/** Checks a lock's ttl from raw input (the options, `Handle.extend`). */
export const checkLockTtl = (ttl: unknown): Duration.Duration | InvalidArgument => checkDuration(ttl, lockTtl)

/**
 * Checks the caller's key and options, synchronously: this runs on every lock
 * cycle, and the common call (no options) allocates nothing but the result.
 */
export const checkSettings = (key: string, options: Options | undefined): Settings | InvalidArgument => {
  const keyError = checkKey(key)
  if (keyError !== undefined) return keyError
  if (options === undefined) {
    return {
      key,
      ttl: defaultTtl,
      ttlMillis: defaultTtlMillis,
      waitMillis: defaultWaitMillis,
      retry: defaultRetry,
      autoExtend: true,
      ops: lockOps,
      replication: undefined
    }
  }
  const retry = options.retry ?? defaultRetry
  if (!Schedule.isSchedule(retry)) {
    return new InvalidArgument({ argument: "retry", message: "retry must be a Schedule" })
  }
  const ttl = options.ttl === undefined ? defaultTtl : checkLockTtl(options.ttl)
  if (ttl instanceof InvalidArgument) return ttl
  const wait = options.wait === undefined ? defaultWait : checkDuration(options.wait, lockWait)
  if (wait instanceof InvalidArgument) return wait
  const replication = checkReplicas(options)
  if (replication instanceof InvalidArgument) return replication
  return {
    key,
    ttl,
    ttlMillis: Duration.toMillis(ttl),
    waitMillis: Duration.toMillis(wait),
    retry,
    autoExtend: options.autoExtend ?? true,
    ops: lockOps,
    replication
  }
}
