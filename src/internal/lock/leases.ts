import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type { LockKv } from "../../LockKv.js"
import type { LockKvError } from "../errors.js"
import * as slots from "../slots.js"
import { LockLost } from "./errors.js"
import * as metrics from "./metrics.js"
import type { StoreOps } from "./ops.js"
import { storeState } from "./storeState.js"
import * as time from "./time.js"
import * as timers from "./timers.js"
import { withSpan } from "./tracing.js"

/**
 * The bookkeeping of one held lock. Renewal and the validity deadline of every
 * lock of a store are driven by one manager fiber per store (below), so that
 * taking a lock forks nothing: an uncontended acquire/release costs two store
 * calls and a few map updates.
 */
export interface Lease {
  readonly key: string
  readonly token: string
  /** The TTL every automatic renewal sets. */
  readonly ttlMillis: number
  readonly autoExtend: boolean
  /** Resets the TTL in the store (a lock key, or permits): `false` when no longer ours. */
  readonly extend: StoreOps["extend"]
  /** WAIT after every renewal (`replicas`). */
  readonly replication: LockKv.Replication | undefined
  /** Clock millis until which the lock is trusted: last confirmed send + ttl − margin. */
  validUntil: number
  /** Clock millis at which the last confirmed acquiring/renewing command was sent. */
  lastSent: number
  /**
   * The TTL that command set: `ttlMillis`, or less when the store granted the
   * lock for the rest of a queue place, or what `extend` set. Renewals follow it.
   */
  currentTtlMillis: number
  /** Set while a renewal is in flight. */
  renewing: boolean
  /** The error of the last failed renewal, while no renewal has succeeded since. */
  lastError: LockKvError | undefined
  lastAttempt: number
  /** Released or lost: no renewal, no deadline any more. */
  done: boolean
  /** Set once when the lock is declared lost. */
  lostError: LockLost | undefined
  /** Made on first `awaitLost` only: most locks are never watched for loss. */
  lostSignal: Deferred.Deferred<LockLost> | undefined
  /** Called once when the lock is declared lost (interrupts the protected effect, hands on the local turn). */
  onLost: Array<() => void>
  /** The manager watching it, once tracked (saves a lookup on release). */
  manager: Manager | undefined
  /** Its place in the manager's `leases` (see slots.ts). */
  slot: number
}

/**
 * The validity margin, `marginFraction` of the ttl + `marginFixedMillis`: room
 * for clock drift between this process and the store (the fraction) and for
 * the time a reply takes to be read and acted on (the fixed part).
 */
export const marginFraction = 0.01
export const marginFixedMillis = 30

/** Time a lock is trusted for after the command that set its TTL was sent: ttl − (1 % of ttl + 30 ms). */
export const validityMillis = (ttlMillis: number): number =>
  // Whole milliseconds, rounded down (earlier is safe): clocks compare exactly.
  Math.max(0, Math.floor(ttlMillis - (ttlMillis * marginFraction + marginFixedMillis)))

/**
 * The smallest ttl a lock accepts, in whole milliseconds. A renewal is due at
 * ttl/3; the lock must still be trusted once that renewal has had a full ttl/3
 * to be confirmed: ttl − margin ≥ 2·ttl/3, i.e.
 * ttl ≥ marginFixedMillis / (1 − marginFraction − 2/3), about 93 ms. Below it
 * every lock would be lost at its first renewal, or even before.
 */
export const minimumTtlMillis: number = Math.ceil(marginFixedMillis / (1 - marginFraction - 2 / 3))

export const makeLease = (options: {
  readonly key: string
  readonly token: string
  readonly ttlMillis: number
  readonly autoExtend: boolean
  readonly sentAt: number
  /** The TTL the acquiring command set, when not `ttlMillis`. */
  readonly setTtlMillis?: number | undefined
  readonly extend: StoreOps["extend"]
  readonly replication?: LockKv.Replication | undefined
}): Lease => ({
  key: options.key,
  token: options.token,
  ttlMillis: options.ttlMillis,
  autoExtend: options.autoExtend,
  extend: options.extend,
  replication: options.replication,
  validUntil: options.sentAt + validityMillis(options.setTtlMillis ?? options.ttlMillis),
  lastSent: options.sentAt,
  currentTtlMillis: options.setTtlMillis ?? options.ttlMillis,
  renewing: false,
  lastError: undefined,
  lastAttempt: 0,
  done: false,
  lostError: undefined,
  lostSignal: undefined,
  onLost: [],
  manager: undefined,
  slot: -1
})

/** Succeeds with the `LockLost` once `lease` is declared lost. */
export const awaitLost = (lease: Lease): Effect.Effect<LockLost> =>
  Effect.suspend(() => {
    if (lease.lostError !== undefined) return Effect.succeed(lease.lostError)
    lease.lostSignal ??= Deferred.unsafeMake(FiberId.none)
    return Deferred.await(lease.lostSignal)
  })

/** Declares `lease` lost (once): completes `lost`, records the metric, runs the callbacks. */
const declareLost = (
  backend: LockKv.Service["backend"],
  lease: Lease,
  message: string,
  cause?: unknown
): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (lease.done) return Effect.void
    lease.done = true
    const error = new LockLost({ key: lease.key, message, ...(cause === undefined ? {} : { cause }) })
    lease.lostError = error
    if (lease.lostSignal !== undefined) Deferred.unsafeDone(lease.lostSignal, Effect.succeed(error))
    for (const callback of lease.onLost) callback()
    return metrics.recordLost(backend)
  })

/** Sends one compare-and-expire for `lease`; moves its validity deadline only when confirmed. */
export const renew = (
  store: LockKv.Service,
  lease: Lease,
  ttlMillis: number
): Effect.Effect<void, LockLost | LockKvError> =>
  Effect.gen(function*() {
    const sentAt = yield* time.now
    const ok = yield* lease.extend(store, lease.key, lease.token, Duration.millis(ttlMillis), lease.replication).pipe(
      // A valid key and ttl were checked when the lock was taken.
      Effect.catchTag("InvalidArgument", (e) => Effect.die(e)),
      withSpan("effect-lock.extend", { "lock.key": lease.key })
    )
    if (!ok) {
      yield* declareLost(store.backend, lease, `lock "${lease.key}" was taken or expired`)
      return yield* Effect.flip(awaitLost(lease))
    }
    if (!lease.done) {
      // The command sent last set the key's TTL (one connection keeps the order):
      // its TTL decides, longer or shorter than before.
      if (sentAt >= lease.lastSent) {
        lease.validUntil = sentAt + validityMillis(ttlMillis)
        lease.lastSent = sentAt
        lease.currentTtlMillis = ttlMillis
      }
      lease.lastError = undefined
    }
  })

export interface Manager {
  /** The leases it watches: every lock cycle adds and removes one (see slots.ts). */
  readonly leases: Array<Lease>
  /** Completing it wakes the manager to look at its leases again. */
  wake: Deferred.Deferred<void> | undefined
  /** Clock millis the manager sleeps until (Infinity while idle). */
  sleepingUntil: number
  /**
   * The earliest time a lease released since the last look would have been due.
   * Short sections are released before the manager gets to look at them; it
   * then sleeps until that time anyway (as if they were held), so that the
   * next lease, due later, need not wake it: one wake-up per ttl/3, not one per
   * lock cycle.
   */
  releasedDue: number
  /** How many times the manager looked at its leases (for tests). */
  looks: number
}

/** When the lease next needs the manager: its deadline, or its next renewal. */
const nextDue = (lease: Lease): number => {
  if (!lease.autoExtend || lease.renewing) return lease.validUntil
  // Whole milliseconds: a fractional due time would never be reached exactly by a
  // clock that keeps whole (or truncated) milliseconds, and the manager would spin.
  const renewAt = lease.lastError === undefined
    ? lease.lastSent + Math.floor(lease.currentTtlMillis / 3)
    // After a failed renewal, try again soon: the lock is still valid for a while.
    : lease.lastAttempt + Math.max(1, Math.min(lease.currentTtlMillis / 12, 500))
  return Math.min(renewAt, lease.validUntil)
}

const wakeUp = (manager: Manager) => {
  const wake = manager.wake
  if (wake !== undefined) {
    manager.wake = undefined
    Deferred.unsafeDone(wake, Effect.void)
  }
}

/**
 * The manager fiber of a store: sleeps until the earliest renewal or deadline
 * among its leases (an alarm of the store's timer, timers.ts), renews (each
 * renewal in a fiber of its own, so a slow store delays no other lock) and
 * declares lost the leases whose deadline passed — even while their renewal is
 * still in flight. It ends with the store.
 */
const runManager = (store: LockKv.Service, manager: Manager): Effect.Effect<never> =>
  Effect.gen(function*() {
    yield* timers.ensureStarted(store)
    while (true) {
      const wake = yield* Deferred.make<void>()
      manager.wake = wake
      manager.looks++
      const now = yield* time.now
      let next = Infinity
      // A copy: declaring a lease lost runs callbacks that may remove others.
      for (const lease of manager.leases.slice()) {
        if (lease.slot < 0) continue
        if (lease.done) {
          slots.remove(manager.leases, lease)
          continue
        }
        if (now >= lease.validUntil) {
          slots.remove(manager.leases, lease)
          yield* declareLost(
            store.backend,
            lease,
            `lock "${lease.key}" could not be confirmed before it would expire`,
            lease.lastError
          )
          continue
        }
        if (lease.autoExtend && !lease.renewing && now >= nextDue(lease)) {
          lease.renewing = true
          lease.lastAttempt = now
          yield* Effect.forkIn(
            renew(store, lease, lease.ttlMillis).pipe(
              Effect.catchTag("LockKvError", (error) => Effect.sync(() => (lease.lastError = error))),
              Effect.ignore,
              Effect.ensuring(Effect.sync(() => {
                lease.renewing = false
                wakeUp(manager)
              }))
            ),
            store.lifetime
          )
        }
        next = Math.min(next, nextDue(lease))
      }
      const hint = manager.releasedDue
      manager.releasedDue = Infinity
      if (hint > now && hint < next) next = hint
      manager.sleepingUntil = next
      if (next === Infinity) {
        yield* Deferred.await(wake)
      } else {
        // The store's timer rings when the earliest lease is due.
        const cancelAlarm = timers.setAlarm(store, next, () => wakeUp(manager))
        yield* Effect.ensuring(Deferred.await(wake), Effect.sync(cancelAlarm))
      }
    }
  })

/**
 * Puts `lease` under the store's manager (started on first use in the store's
 * lifetime, from the caller's fiber so that it reads the same Clock). Wakes the manager only when
 * this lease is due before it would wake anyway. Once the manager runs, the
 * work is done when `track` is called (the effect returned is `Effect.void`).
 */
export const track = (store: LockKv.Service, lease: Lease): Effect.Effect<void> => {
  const state = storeState(store)
  const manager = state.manager
  if (manager === undefined) return Effect.suspend(() => startOrAdd(store, lease))
  // The common case is synchronous: no effect to run, no fiber to wake.
  lease.manager = manager
  slots.add(manager.leases, lease)
  if (nextDue(lease) < manager.sleepingUntil) wakeUp(manager)
  return Effect.void
}

const startOrAdd = (store: LockKv.Service, lease: Lease): Effect.Effect<void> => {
  const state = storeState(store)
  if (state.manager !== undefined) return track(store, lease)
  const created: Manager = { leases: [], wake: undefined, sleepingUntil: Infinity, releasedDue: Infinity, looks: 0 }
  lease.manager = created
  slots.add(created.leases, lease)
  state.manager = created
  return Effect.asVoid(Effect.forkIn(runManager(store, created), store.lifetime))
}

/** How many times the store's lease manager has looked at its leases (for tests). */
export const managerLooks = (store: LockKv.Service): number => storeState(store).manager?.looks ?? 0

/** Ends the manager's work on `lease` (released): no renewal, no deadline. */
export const untrack = (lease: Lease): void => {
  const manager = lease.manager
  if (manager !== undefined && slots.remove(manager.leases, lease)) {
    manager.releasedDue = Math.min(manager.releasedDue, nextDue(lease))
  }
  lease.done = true
}
