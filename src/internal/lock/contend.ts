import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { AcquireResult, LockKv, ReleaseWatcher, Wake } from "../../LockKv.js"
import type { InvalidArgument, LockKvError } from "../errors.js"
import { type Backoff, defaultRetry, makeBackoff } from "./backoff.js"
import {
  type LockNotAcquired,
  notAcquired,
  notAcquiredAfterLoss,
  type ReplicationNotConfirmed,
  replicationNotConfirmed
} from "./errors.js"
import { type Lease } from "./leases.js"
import * as leases from "./leases.js"
import * as localQueue from "./localQueue.js"
import * as metrics from "./metrics.js"
import type { Settings } from "./settings.js"
import * as time from "./time.js"
import * as timers from "./timers.js"
import { spanIf } from "./tracing.js"

/**
 * What the store may hold for our token: nothing, possibly the lock or a place
 * in the key's queue (a try was sent), or the lock. Anything but "none" is
 * undone by token when the Scope closes.
 */
type Outcome = "none" | "maybe" | "held"

interface Acquired {
  readonly fence: number
  /** Clock millis at which the winning command was sent. */
  readonly sentAt: number
  /**
   * Set when a release handed us the lock for the rest of our queue place
   * rather than our ttl: it must be extended to the ttl soon.
   */
  readonly grantedForMillis?: number | undefined
}

type Attempt =
  | { readonly _tag: "Acquired"; readonly acquired: Acquired }
  | { readonly _tag: "Held"; readonly remaining: Option.Option<Duration.Duration> }

/**
 * How long a waiter's place in the store's queue is kept after each try. A
 * crashed waiter at the head of the queue delays the others at most this long.
 */
export const queuePlace = Duration.seconds(2)
/** A queued waiter tries (and so keeps its place) at least this often. */
const queuePlaceMillis = Duration.toMillis(queuePlace)
const queueRefreshMillis = queuePlaceMillis / 3

/**
 * One acquisition, from its first try to its release. `withLock`, `tryWithLock`
 * and the scoped `acquire` all run it the same way (engine.ts): `prepare` reads
 * what it needs from the caller's fiber, `takeLock` (interruptible, here) gets
 * the lock, and `finish` (uninterruptible, whatever the outcome) gives back
 * whatever the store may hold for our token and hands the local turn on.
 */
export interface Acquisition {
  readonly store: LockKv.Service
  readonly settings: Settings
  readonly clock: Clock.Clock
  readonly token: string
  /** A real tracer is installed: record spans (with the default tracer they would reach no one). */
  readonly traced: boolean
  readonly startedAt: number
  readonly deadline: number
  turn: localQueue.Turn | undefined
  outcome: Outcome
  lease: Lease | undefined
  fence: number
  heldSince: number
  released: boolean
  /** Clock millis at which the last try was sent. */
  lastTrySentAt: number
  /** Stops the current wait for a wake or an alarm (set while waiting in the store). */
  stopWaking: (() => void) | undefined
  /** Listens for releases while waiting in the store. */
  watcher: ReleaseWatcher | undefined
}

/** Sends one try in the store; with `queue`, a refused try keeps (or takes) a place in the key's queue. */
const sendTry = (a: Acquisition, queue: Duration.Duration | undefined, now = time.monotonicMillis(a.clock)) => {
  a.lastTrySentAt = now
  if (a.outcome === "none") a.outcome = "maybe"
  return a.settings.ops.acquire(a.store, a.settings.key, a.token, a.settings.ttl, queue, a.settings.replication)
}

/** What the try `sendTry` sent last found. */
const readTry = (
  a: Acquisition,
  queue: Duration.Duration | undefined,
  result: AcquireResult
): Attempt | ReplicationNotConfirmed => {
  if (result._tag === "Acquired") {
    a.outcome = "held"
    const asked = a.settings.replication?.replicas
    // Held on the master but not on enough replicas: `finish` undoes it by token.
    if (asked !== undefined && (result.replicas ?? 0) < asked) {
      return replicationNotConfirmed(a.settings.key, result.replicas ?? 0, asked)
    }
    return { _tag: "Acquired", acquired: { fence: result.fence, sentAt: a.lastTrySentAt } }
  }
  // Without a queue a refused try leaves nothing behind; with one, our place stays until we leave.
  if (queue === undefined) a.outcome = "none"
  metrics.recordContention(a.store.backend)
  return { _tag: "Held", remaining: result.remaining }
}

const tryOnce = (
  a: Acquisition,
  queue: Duration.Duration | undefined
): Effect.Effect<Attempt, LockError> =>
  Effect.flatMap(sendTry(a, queue), (result) => {
    const attempt = readTry(a, queue, result)
    return attempt._tag === "ReplicationNotConfirmed" ? Effect.fail(attempt) : Effect.succeed(attempt)
  })

/** What taking a lock may fail with. */
type LockError = LockNotAcquired | ReplicationNotConfirmed | LockKvError | InvalidArgument

const tryLoop = (
  a: Acquisition,
  backoff: Backoff,
  watcher: ReleaseWatcher,
  held: Option.Option<Duration.Duration>
): Effect.Effect<Acquired, LockError> => {
  const { deadline } = a
  let remaining = held
  const next = (): Effect.Effect<Acquired, LockError> => {
    const now = time.monotonicMillis(a.clock)
    if (now >= deadline) return Effect.fail(notAcquired(a.settings.key))
    if (backoff.sync !== undefined) return waitThenTry(now, backoff.sync(now))
    return Effect.flatMap(
      backoff(now),
      (scheduled) =>
        Option.isNone(scheduled) ? Effect.fail(notAcquired(a.settings.key)) : waitThenTry(now, scheduled.value)
    )
  }
  const waitThenTry = (
    now: number,
    scheduled: number
  ): Effect.Effect<Acquired, LockError> => {
    // Never sleep past the holder's TTL (+1 ms so the key is surely gone) or past the deadline.
    const ttlEnd = Option.isSome(remaining) ? Duration.toMillis(remaining.value) + 1 : Infinity
    const delay = Math.max(0, Math.ceil(Math.min(scheduled, ttlEnd, queueRefreshMillis, deadline - now)))
    return Effect.flatMap(wakeOrAlarm(a, watcher, now + delay), (wake) => {
      // With `replicas`, a grant is confirmed by a try (it finds the lock in our
      // token and sends WAIT): the releaser's write was never waited for.
      if (wake?._tag === "Granted" && a.settings.replication === undefined) {
        // The releaser handed the lock over: no try needed. It lives at least
        // until our place would have ended, counted from our last try's send.
        a.outcome = "held"
        return Effect.succeed({ fence: wake.fence, sentAt: a.lastTrySentAt, grantedForMillis: queuePlaceMillis })
      }
      return Effect.flatMap(tryOnce(a, queuePlace), (attempt) => {
        if (attempt._tag === "Acquired") return Effect.succeed(attempt.acquired)
        remaining = attempt.remaining
        return next()
      })
    })
  }
  // `next()` now: this runs as the waiter's effect is built, right where it waits.
  return timers.whenStarted(a.store, next())
}

/**
 * Waits for the next wake of `watcher` (a release, a hand-off), or until the
 * store's Clock reaches `wakeAt` (then `undefined`): one callback each, no
 * fiber. No canceler either: an interrupted wait is stopped by `a.stopWaking`,
 * which the caller runs when it stops trying.
 */
const wakeOrAlarm = (a: Acquisition, watcher: ReleaseWatcher, wakeAt: number): Effect.Effect<Wake | undefined> =>
  Effect.async<Wake | undefined>((resume) => {
    let cancelWatch = () => {}
    const cancelAlarm = timers.setAlarm(a.store, wakeAt, () => {
      cancelWatch()
      resume(Effect.succeed(undefined))
    })
    cancelWatch = watcher.onNext((wake) => {
      cancelAlarm()
      resume(Effect.succeed(wake))
    })
    a.stopWaking = () => {
      cancelAlarm()
      cancelWatch()
    }
  })

/** Starts the lease of a lock just acquired (renewal, validity deadline). */
const establish = (a: Acquisition, acquired: Acquired): Effect.Effect<void, LockNotAcquired> => {
  const { autoExtend, key, ttlMillis } = a.settings
  const heldSince = time.monotonicMillis(a.clock)
  a.heldSince = heldSince
  a.fence = acquired.fence
  metrics.recordAcquired(a.store.backend, heldSince - a.startedAt)
  const lease = leases.makeLease({
    key,
    token: a.token,
    ttlMillis,
    autoExtend,
    sentAt: acquired.sentAt,
    setTtlMillis: acquired.grantedForMillis,
    extend: a.settings.ops.extend,
    replication: a.settings.replication
  })
  // The lock is gone: let the next fiber of this process try.
  lease.onLost.push(a.turn!.pass)
  a.lease = lease
  // The try may have waited for a connection before it was sent, so its send
  // time (read before) can be long past: confirm the lock once more right away
  // rather than let the deadline declare a good lock lost. A granted lock
  // without auto-extension gets its own ttl at once too.
  const late = heldSince - acquired.sentAt > lease.currentTtlMillis / 3
  if (!late && (autoExtend || acquired.grantedForMillis === undefined)) return leases.track(a.store, lease)
  return leases.renew(a.store, lease, ttlMillis).pipe(
    Effect.catchTag("LockLost", () => Effect.fail(notAcquiredAfterLoss(key))),
    // Unconfirmed: the lease's deadline still guards it (and auto-extension retries).
    Effect.catchTag("LockKvError", () => Effect.void),
    Effect.zipRight(Effect.suspend(() => leases.track(a.store, lease)))
  )
}

/**
 * Tries in the store once this fiber has the local turn: once, or until the
 * deadline. Between tries it sleeps the schedule's delay, cut short by a
 * release notification addressed to it, by the end of the holder's TTL, and by
 * the need to keep its place in the queue. It listens only once its first try
 * found the key held; the mark read before that try keeps a notification that
 * overtook the try's reply (see `notificationMark`).
 */
const contend = (
  a: Acquisition,
  backoff: Backoff | undefined,
  now: number
): Effect.Effect<void, LockError> => {
  const waits = a.deadline > now
  const queue = waits ? queuePlace : undefined
  const mark = waits ? a.store.notificationMark() : 0
  return Effect.flatMap(sendTry(a, queue, now), (result) => {
    const first = readTry(a, queue, result)
    if (first._tag === "ReplicationNotConfirmed") return Effect.fail(first)
    if (first._tag === "Acquired") return establish(a, first.acquired)
    if (!waits) return Effect.fail(notAcquired(a.settings.key))
    return Effect.flatMap(a.store.watchReleases(a.settings.key, a.token, mark), (watcher) => {
      // Stopped once acquired, or by `finish` whatever happens (no `ensuring`: it costs five steps).
      a.watcher = watcher
      return Effect.flatMap(
        tryLoop(a, backoff ?? makeBackoff(a.settings.key, a.settings.retry), watcher, first.remaining),
        (acquired) => {
          stopWatching(a)
          return establish(a, acquired)
        }
      )
    })
  })
}

/** Stops listening for wakes and cancels the pending alarm, if any. Idempotent. */
export const stopWatching = (a: Acquisition): void => {
  const stop = a.stopWaking
  a.stopWaking = undefined
  stop?.()
  a.watcher?.close()
}

/** The turn of a fiber that takes no turns (permits: the store's queue orders every waiter). */
const ownTurn: localQueue.Turn = { given: true, pass: () => {} }

/**
 * Gets the lock. Fibers of this process queue in process first (synchronously
 * when nobody else holds or awaits the key), so only one at a time contends in
 * the store. Does not clean up after itself: `finish` does.
 */
export const takeLock = (a: Acquisition): Effect.Effect<void, LockError> => {
  const { key } = a.settings
  const oneTry = a.deadline <= a.startedAt
  const turn = !a.settings.ops.local
    ? ownTurn
    : oneTry
    ? localQueue.tryEnter(a.store, key)
    : localQueue.join(a.store, key)
  if (turn === undefined) {
    // Held by another fiber of this process: a failed try like any other.
    metrics.recordContention(a.store.backend)
    return Effect.fail(notAcquired(key))
  }
  a.turn = turn
  let taking: Effect.Effect<void, LockError>
  if (turn.given) {
    // Still the instant `prepare` read the clock: nothing has run since.
    taking = contend(a, undefined, a.startedAt)
  } else {
    // The default retry is not stepped while waiting in process: `contend` makes its own.
    const localBackoff = a.settings.retry === defaultRetry ? undefined : makeBackoff(key, a.settings.retry)
    taking = Effect.flatMap(localQueue.waitForTurn(a.store, a.clock, turn, a.deadline, localBackoff), (got) => {
      if (!got) {
        metrics.recordContention(a.store.backend)
        return Effect.fail(notAcquired(key))
      }
      return contend(a, localBackoff, time.monotonicMillis(a.clock))
    })
  }
  return spanIf(a.traced, taking, "effect-lock.acquire", { "lock.key": key, "lock.backend": a.store.backend })
}
