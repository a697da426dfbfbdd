import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import type { Handle, Options } from "../../Lock.js"
import type { AcquireResult, LockKv as LockKvNs, ReleaseWatcher, Wake } from "../../LockKv.js"
import { LockKv } from "../../LockKv.js"
import { BoundedMap } from "../boundedMap.js"
import { InvalidArgument, type LockKvError } from "../errors.js"
import { checkKey, checkTtl } from "../keys.js"
import { LockLost, LockNotAcquired } from "./errors.js"
import { type Lease } from "./leases.js"
import * as leases from "./leases.js"
import * as localQueue from "./localQueue.js"
import * as metrics from "./metrics.js"
import { isDefaultTracer, spanIf } from "./tracing.js"
import * as time from "./time.js"
import * as timers from "./timers.js"

interface Settings {
  readonly key: string
  readonly ttl: Duration.Duration
  readonly ttlMillis: number
  /** Infinity for `Duration.infinity`: then it tries until the retry schedule ends. */
  readonly waitMillis: number
  readonly retry: Schedule.Schedule<unknown, LockNotAcquired>
  readonly autoExtend: boolean
}

export const defaultTtl = Duration.seconds(30)
export const defaultWait = Duration.seconds(10)

/**
 * Polling is only the fallback: waiters also wake on a release notification
 * addressed to them and when the holder's TTL ends, so the first retry can wait.
 * Exponential from 50 ms, jittered, capped at 1 s.
 */
export const defaultRetry: Schedule.Schedule<unknown, LockNotAcquired> = Schedule.exponential("50 millis", 2).pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.jittered
)

const defaults = {
  ttl: defaultTtl,
  ttlMillis: Duration.toMillis(defaultTtl),
  waitMillis: Duration.toMillis(defaultWait),
  retry: defaultRetry,
  autoExtend: true
}

/** Checks the raw `wait` input: `Duration.decode` turns negative and NaN inputs into zero quietly. */
const checkWait = (wait: unknown): Duration.Duration | InvalidArgument => {
  const invalid = (why: string) =>
    new InvalidArgument({ argument: "wait", message: `wait must be a duration of zero or more (${why})` })
  if (wait === undefined) return defaultWait
  if (typeof wait === "number" && !(wait >= 0)) return invalid(`got ${String(wait)}`)
  if (typeof wait === "bigint" && wait < 0n) return invalid(`got ${String(wait)}`)
  if (typeof wait === "string" && /^\s*-/.test(wait)) return invalid(`got ${JSON.stringify(wait)}`)
  if (Array.isArray(wait)) {
    const [seconds, nanos] = wait as ReadonlyArray<unknown>
    if (typeof seconds !== "number" || typeof nanos !== "number" || !(seconds * 1e9 + nanos >= 0)) {
      return invalid(`got [${String(seconds)}, ${String(nanos)}]`)
    }
  }
  try {
    const decoded = Duration.decode(wait as Duration.DurationInput)
    if (Number.isNaN(Duration.toMillis(decoded))) return invalid("got NaN")
    return decoded
  } catch {
    return invalid(`cannot read ${JSON.stringify(String(wait))}`)
  }
}

/**
 * `checkTtl`, plus the lock's own floor (`leases.minimumTtlMillis`): a smaller
 * ttl is a valid store TTL, but a lock with it would always be lost.
 */
export const checkLockTtl = (ttl: unknown): Duration.Duration | InvalidArgument => {
  const checked = checkTtl(ttl)
  if (checked instanceof InvalidArgument) return checked
  const millis = Duration.toMillis(checked)
  if (millis >= leases.minimumTtlMillis) return checked
  return new InvalidArgument({
    argument: "ttl",
    message: `ttl must be at least ${leases.minimumTtlMillis} ms (got ${millis} ms): a lock is trusted for ` +
      `ttl − (${leases.marginFraction * 100} % of ttl + ${leases.marginFixedMillis} ms) after each renewal, ` +
      "which must leave its renewal, due at ttl/3, a full ttl/3 to be confirmed"
  })
}

/** The settings of calls without options, per key (immutable, so shared; at most 1024 keys, oldest dropped). */
const defaultsByKey = new BoundedMap<string, Settings>(1024)

const defaultSettings = (key: string): Settings | InvalidArgument => {
  const cached = defaultsByKey.get(key)
  if (cached !== undefined) return cached
  const keyError = checkKey(key)
  if (keyError !== undefined) return keyError
  const settings: Settings = {
    key,
    ttl: defaults.ttl,
    ttlMillis: defaults.ttlMillis,
    waitMillis: defaults.waitMillis,
    retry: defaults.retry,
    autoExtend: defaults.autoExtend
  }
  defaultsByKey.set(key, settings)
  return settings
}

/**
 * Checks the caller's key and options, synchronously: this runs on every lock
 * cycle, and the common call (no options) allocates nothing but the result.
 */
const checkSettings = (key: string, options: Options | undefined): Settings | InvalidArgument => {
  if (options === undefined) return defaultSettings(key)
  const retry = options.retry ?? defaultRetry
  if (!Schedule.isSchedule(retry)) return new InvalidArgument({ argument: "retry", message: "retry must be a Schedule" })
  const keyError = checkKey(key)
  if (keyError !== undefined) return keyError
  const ttl = options.ttl === undefined ? defaultTtl : checkLockTtl(options.ttl)
  if (ttl instanceof InvalidArgument) return ttl
  const wait = checkWait(options.wait)
  if (wait instanceof InvalidArgument) return wait
  return {
    key,
    ttl,
    ttlMillis: Duration.toMillis(ttl),
    waitMillis: Duration.toMillis(wait),
    retry,
    autoExtend: options.autoExtend ?? true
  }
}

/** An owner token: a UUIDv4 (122 random bits from the OS CSPRNG), never a counter or a timestamp. */
export const makeToken = (): string => randomUUID()

const notAcquired = (key: string) => new LockNotAcquired({ key, message: `lock "${key}" is held elsewhere` })

/** The lock was taken, but had expired or been taken over by the time its reply arrived. */
const notAcquiredAfterLoss = (key: string) =>
  new LockNotAcquired({ key, message: `lock "${key}" expired before its acquisition could be confirmed` })

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
 * The caller's retry schedule, stepped by hand: each call is one failed try and
 * gives the delay before the next, or `None` once the schedule is done.
 */
/**
 * The delay before the next try, or none once the schedule is done (one call
 * per failed try). `sync`, when present, gives the same without an Effect.
 */
export type Backoff = ((now: number) => Effect.Effect<Option.Option<number>>) & {
  readonly sync?: ((now: number) => number) | undefined
}

export const makeBackoff = (key: string, schedule: Schedule.Schedule<unknown, LockNotAcquired>): Backoff => {
  if (schedule === defaultRetry) return defaultBackoff()
  let state: unknown = schedule.initial
  let input: LockNotAcquired | undefined
  return (now: number): Effect.Effect<Option.Option<number>> =>
    Effect.map(schedule.step(now, input ??= notAcquired(key), state), ([next, , decision]) => {
      if (ScheduleDecision.isDone(decision)) return Option.none()
      state = next
      return Option.some(Math.max(0, Intervals.start(decision.intervals) - now))
    })
}

/**
 * `defaultRetry` computed directly: 50 ms · 2ⁿ, at most 1 s, times a jitter in
 * [0.8, 1.2). Every contended acquisition steps its backoff at least once, and
 * stepping the Schedule (with the failed try as its input, an error whose
 * construction alone is a few µs) costs more than the rest of a local hand-off.
 */
const defaultBackoff = (): Backoff => {
  let step = 0
  const sync = (_now: number): number => {
    const delay = Math.min(50 * 2 ** step, 1_000) * (0.8 + 0.4 * Math.random())
    step = Math.min(step + 1, 20)
    return delay
  }
  return Object.assign((now: number) => Effect.succeed(Option.some(sync(now))), { sync })
}

/**
 * One acquisition, from its first try to its release. `withLock`, `tryWithLock`
 * and the scoped `acquire` all run it the same way: `prepare` reads what it needs
 * from the caller's fiber, `takeLock` (interruptible) gets the lock, and
 * `finish` (uninterruptible, whatever the outcome) gives back whatever the store
 * may hold for our token and hands the local turn on.
 */
interface Acquisition {
  readonly store: LockKvNs.Service
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

/** Checks the arguments and reads the store, clock and tracer of the caller's fiber: all synchronous. */
const prepare = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  key: string,
  options: Options | undefined,
  oneTry: boolean
): Acquisition | InvalidArgument => {
  const settings = checkSettings(key, options)
  if (settings instanceof InvalidArgument) return settings
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  const startedAt = time.monotonicMillis(clock)
  return {
    store: Context.unsafeGet(fiber.currentContext, LockKv),
    settings,
    clock,
    token: makeToken(),
    traced: !isDefaultTracer(fiber.currentTracer),
    startedAt,
    deadline: oneTry ? startedAt : startedAt + settings.waitMillis,
    turn: undefined,
    outcome: "none",
    lease: undefined,
    fence: 0,
    heldSince: 0,
    released: false,
    lastTrySentAt: startedAt,
    stopWaking: undefined,
    watcher: undefined
  }
}

/** Sends one try in the store; with `queue`, a refused try keeps (or takes) a place in the key's queue. */
const sendTry = (a: Acquisition, queue: Duration.Duration | undefined, now = time.monotonicMillis(a.clock)) => {
  a.lastTrySentAt = now
  if (a.outcome === "none") a.outcome = "maybe"
  return a.store.acquire(a.settings.key, a.token, a.settings.ttl, queue)
}

/** What the try `sendTry` sent last found. */
const readTry = (a: Acquisition, queue: Duration.Duration | undefined, result: AcquireResult): Attempt => {
  if (result._tag === "Acquired") {
    a.outcome = "held"
    return { _tag: "Acquired", acquired: { fence: result.fence, sentAt: a.lastTrySentAt } }
  }
  // Without a queue a refused try leaves nothing behind; with one, our place stays until we leave.
  if (queue === undefined) a.outcome = "none"
  metrics.recordContention(a.store.backend)
  return { _tag: "Held", remaining: result.remaining }
}

const tryOnce = (a: Acquisition, queue: Duration.Duration | undefined): Effect.Effect<Attempt, LockKvError | InvalidArgument> =>
  Effect.map(sendTry(a, queue), (result) => readTry(a, queue, result))

const tryLoop = (
  a: Acquisition,
  backoff: Backoff,
  watcher: ReleaseWatcher,
  held: Option.Option<Duration.Duration>
): Effect.Effect<Acquired, LockNotAcquired | LockKvError | InvalidArgument> => {
  const { deadline } = a
  let remaining = held
  const next = (): Effect.Effect<Acquired, LockNotAcquired | LockKvError | InvalidArgument> => {
    const now = time.monotonicMillis(a.clock)
    if (now >= deadline) return Effect.fail(notAcquired(a.settings.key))
    if (backoff.sync !== undefined) return waitThenTry(now, backoff.sync(now))
    return Effect.flatMap(backoff(now), (scheduled) =>
      Option.isNone(scheduled) ? Effect.fail(notAcquired(a.settings.key)) : waitThenTry(now, scheduled.value))
  }
  const waitThenTry = (
    now: number,
    scheduled: number
  ): Effect.Effect<Acquired, LockNotAcquired | LockKvError | InvalidArgument> => {
    // Never sleep past the holder's TTL (+1 ms so the key is surely gone) or past the deadline.
    const ttlEnd = Option.isSome(remaining) ? Duration.toMillis(remaining.value) + 1 : Infinity
    const delay = Math.max(0, Math.ceil(Math.min(scheduled, ttlEnd, queueRefreshMillis, deadline - now)))
    return Effect.flatMap(wakeOrAlarm(a, watcher, now + delay), (wake) => {
      if (wake?._tag === "Granted") {
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
  const { key, ttlMillis, autoExtend } = a.settings
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
    setTtlMillis: acquired.grantedForMillis
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
): Effect.Effect<void, LockNotAcquired | LockKvError | InvalidArgument> => {
  const waits = a.deadline > now
  const queue = waits ? queuePlace : undefined
  const mark = waits ? a.store.notificationMark() : 0
  return Effect.flatMap(sendTry(a, queue, now), (result) => {
    const first = readTry(a, queue, result)
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
const stopWatching = (a: Acquisition): void => {
  const stop = a.stopWaking
  a.stopWaking = undefined
  stop?.()
  a.watcher?.close()
}

/**
 * Gets the lock. Fibers of this process queue in process first (synchronously
 * when nobody else holds or awaits the key), so only one at a time contends in
 * the store. Does not clean up after itself: `finish` does.
 */
const takeLock = (a: Acquisition): Effect.Effect<void, LockNotAcquired | LockKvError | InvalidArgument> => {
  const { key } = a.settings
  const oneTry = a.deadline <= a.startedAt
  const turn = oneTry ? localQueue.tryEnter(a.store, key) : localQueue.join(a.store, key)
  if (turn === undefined) {
    // Held by another fiber of this process: a failed try like any other.
    metrics.recordContention(a.store.backend)
    return Effect.fail(notAcquired(key))
  }
  a.turn = turn
  let taking: Effect.Effect<void, LockNotAcquired | LockKvError | InvalidArgument>
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

/**
 * Deletes only our own token (or our place in the queue), so it is safe whatever
 * happened meanwhile. Idempotent: `undefined` when there is nothing of ours to
 * delete (any more), else the store call (`true` when it deleted the lock).
 */
const releaseOnce = (a: Acquisition): Effect.Effect<boolean, LockKvError | InvalidArgument> | undefined => {
  if (a.released) return undefined
  a.released = true
  if (a.lease !== undefined) {
    leases.untrack(a.lease)
    metrics.recordHoldTime(a.store.backend, time.monotonicMillis(a.clock) - a.heldSince)
  }
  if (a.outcome === "none") return undefined
  const release = a.store.release(a.settings.key, a.token)
  return spanIf(a.traced, release, "effect-lock.release", { "lock.key": a.settings.key })
}

/**
 * Releases (or undoes a try whose outcome is unknown), hands the local turn
 * on, then goes on with `then`; run uninterruptibly, after the section. A
 * failed release never fails the section: the key then expires by its TTL.
 * Call it when the release is due: it marks the lock released at once.
 */
const finish = <X, EX>(a: Acquisition, then: Effect.Effect<X, EX>): Effect.Effect<X, EX> => {
  if (a.watcher !== undefined) stopWatching(a)
  const release = releaseOnce(a)
  if (release === undefined) {
    a.turn?.pass()
    return then
  }
  return Effect.matchCauseEffect(release, {
    onFailure: (cause) => {
      a.turn?.pass()
      const failure = Cause.failureOption(cause)
      return Option.isSome(failure)
        ? Effect.zipRight(
          Effect.logDebug("effect-lock: release failed; the key will expire by its TTL", failure.value.message),
          then
        )
        : Effect.failCause(cause as Cause.Cause<never>)
    },
    onSuccess: () => {
      a.turn?.pass()
      return then
    }
  })
}

const makeHandle = (a: Acquisition): Handle => {
  const lease = a.lease!
  const { key } = a.settings
  return {
    key,
    token: a.token,
    fence: a.fence,
    lost: leases.awaitLost(lease),
    extend: (ttl) =>
      Effect.suspend((): Effect.Effect<void, LockLost | LockKvError | InvalidArgument> => {
        if (lease.lostError !== undefined) return Effect.fail(lease.lostError)
        if (a.released) return Effect.fail(new LockLost({ key, message: `lock "${key}" was released` }))
        if (ttl === undefined) return leases.renew(a.store, lease, lease.ttlMillis)
        const checked = checkLockTtl(ttl)
        if (checked instanceof InvalidArgument) return Effect.fail(checked)
        return leases.renew(a.store, lease, Duration.toMillis(checked))
      }),
    // Released early: the next fiber of this process may go at once.
    release: Effect.suspend(() => releaseOnce(a) ?? Effect.succeed(false)).pipe(
      // Checked when the lock was taken: cannot happen.
      Effect.catchTag("InvalidArgument", () => Effect.succeed(false)),
      Effect.ensuring(Effect.sync(() => a.turn?.pass()))
    )
  }
}

/**
 * Takes the lock, then runs `use` (uninterruptible, like the release of
 * `acquireUseRelease`); on failure or interruption of the taking, `finish`
 * undoes it. Everything before the first store call runs in one step.
 */
const locked = <X, E, R, F>(
  key: string,
  options: Options | undefined,
  oneTry: boolean,
  use: (
    a: Acquisition,
    restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
  ) => Effect.Effect<X, E, R>,
  /** What it gives when the lock is held elsewhere: `LockNotAcquired`, or a value. */
  refused: (error: LockNotAcquired) => Effect.Effect<X, F>
): Effect.Effect<X, E | F | LockKvError | InvalidArgument, R | LockKv> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime((fiber) => {
      const a = prepare(fiber, key, options, oneTry)
      if (a instanceof InvalidArgument) return Effect.fail(a)
      return Effect.matchCauseEffect(restore(takeLock(a)), {
        onFailure: (cause): Effect.Effect<X, E | F | LockKvError | InvalidArgument, R> => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && failure.value._tag === "LockNotAcquired") {
            return finish(a, refused(failure.value))
          }
          return finish(a, Effect.failCause(cause as Cause.Cause<LockKvError | InvalidArgument>))
        },
        onSuccess: () => use(a, restore)
      })
    })
  )

/**
 * Acquires `key` in the current Scope: the lock is released when the Scope closes,
 * whatever its exit. While held, the store's lease manager renews it (when
 * `autoExtend`) and declares it lost when no renewal is confirmed within its
 * validity (see leases.ts).
 */
export const acquire = (
  key: string,
  options?: Options | undefined
): Effect.Effect<Handle, LockNotAcquired | LockKvError | InvalidArgument, LockKv | Scope.Scope> =>
  locked(
    key,
    options,
    false,
    // `Scope.addFinalizer`, not `Effect.addFinalizer`: `finish` needs none of the
    // acquiring fiber's FiberRefs, whose restoring costs more than the lock cycle.
    (a) => Effect.flatMap(Effect.scope, (scope) => Effect.as(Scope.addFinalizer(scope, Effect.suspend(() => finish(a, Effect.void))), makeHandle(a))),
    Effect.fail
  )

/**
 * A section whose lock is lost is interrupted by an interruptor of its own
 * (sections nest: each must take back only its own). The section runs in the
 * caller's fiber, so a loss interrupts that fiber; once the section has ended,
 * that interruptor (and only it) is taken out of the fiber's
 * `FiberRef.interruptedCause` again, and the caller goes on with `LockLost`.
 */
let lossInterrupts = 0
const makeLossInterruptor = (): FiberId.FiberId => FiberId.make(-1, ++lossInterrupts)

const withoutInterruptor = (id: FiberId.FiberId) => (cause: Cause.Cause<never>): Cause.Cause<never> => {
  const all = Cause.interruptors(cause)
  const others = HashSet.remove(all, id)
  if (HashSet.size(others) === HashSet.size(all)) return cause
  // The cause holds interruptions only (that is all the runtime puts there).
  let rest: Cause.Cause<never> = Cause.empty
  for (const other of others) rest = Cause.sequential(rest, Cause.interrupt(other))
  return rest
}

/** `FiberRuntime.getChildren`, which the public `RuntimeFiber` type does not show. */
interface WithChildren {
  readonly getChildren?: () => ReadonlySet<unknown>
}

/**
 * Interrupting a fiber interrupts its children too: a caller that forked
 * fibers before the section (they are not the section's) must not lose them
 * with the lock, so its section runs in a fiber of its own.
 */
const mayHaveChildren = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => {
  const getChildren = (fiber as unknown as WithChildren).getChildren
  return typeof getChildren !== "function" || getChildren.call(fiber).size > 0
}

/**
 * Runs `effect` under the held lock `a`, then `finish`es (uninterruptibly,
 * whatever its exit); a loss interrupts it and the result is then `LockLost`.
 * It runs in the caller's fiber, like `withPermits`: forks stay the caller's,
 * FiberRefs it sets stay set, and no fiber is started per lock. Only a caller
 * with children of its own gets a fiber for the section (see `mayHaveChildren`).
 */
const runThenFinish = <A, E, R, B>(
  effect: Effect.Effect<A, E, R>,
  a: Acquisition,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>,
  onSuccess: (a: A) => B
): Effect.Effect<B, E | LockLost, R> =>
  Effect.withFiberRuntime((fiber) => {
    const lease = a.lease!
    if (lease.lostError !== undefined) return finish(a, Effect.fail(lease.lostError))
    if (mayHaveChildren(fiber)) {
      return Effect.flatMap(runInChild(effect, lease, restore), (exit): Effect.Effect<B, E | LockLost> =>
        finish(a, Exit.isSuccess(exit) ? Effect.succeed(onSuccess(exit.value)) : Effect.failCause(exit.cause)))
    }
    let running = true
    let interruptor: FiberId.FiberId | undefined
    lease.onLost.push(() => {
      if (!running) return
      interruptor = makeLossInterruptor()
      fiber.unsafeInterruptAsFork(interruptor)
    })
    const after = <X, EX>(then: Effect.Effect<X, EX>): Effect.Effect<X, EX> => {
      running = false
      if (interruptor === undefined) return finish(a, then)
      // The interruption reached the fiber before this step (a running fiber
      // reads its messages before each step): take it out again.
      return Effect.zipRight(FiberRef.update(FiberRef.interruptedCause, withoutInterruptor(interruptor)), finish(a, then))
    }
    return Effect.matchCauseEffect(restore(effect), {
      onFailure: (cause) =>
        after(Effect.failCause<E | LockLost>(
          lease.lostError !== undefined && Cause.isInterrupted(cause) ? Cause.fail(lease.lostError) : cause
        )),
      onSuccess: (value) => after(Effect.succeed(onSuccess(value)))
    })
  })

const settle = <A, E>(exit: Exit.Exit<A, E>, lease: Lease): Exit.Exit<A, E | LockLost> =>
  lease.lostError !== undefined && Exit.isInterrupted(exit) ? Exit.fail(lease.lostError) : exit

/**
 * The section in a fiber of its own, interrupted when the lock is lost. It
 * starts on the caller's stack (`immediate`) with the caller's context and
 * FiberRefs; the caller, if interrupted while waiting, interrupts it and waits
 * for its finalizers before the lock is released.
 */
const runInChild = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  lease: Lease,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
): Effect.Effect<Exit.Exit<A, E | LockLost>, never, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) => {
    const child = Runtime.runFork(runtime)(restore(effect), { immediate: true })
    const done = child.unsafePoll()
    if (done !== null) return Effect.succeed(settle(done, lease))
    return restore(Effect.async<Exit.Exit<A, E | LockLost>>((resume) => {
      const interrupt = () => child.unsafeInterruptAsFork(child.id())
      // `done` before release can only mean lost: then at once.
      if (lease.done) interrupt()
      else lease.onLost.push(interrupt)
      child.addObserver((exit) => resume(Effect.succeed(settle(exit, lease))))
      return Effect.asVoid(Fiber.interrupt(child))
    })).pipe(Effect.catchAllCause((cause) => Effect.succeed(Exit.failCause(cause as Cause.Cause<never>))))
  })

/** Runs `effect` while holding `key`; interrupts it and fails with `LockLost` if the lock is lost. */
export const withLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv> =>
  locked(key, options, false, (a, restore) => runThenFinish(effect, a, restore, identity), Effect.fail)

/** One try, never waits: `Option.none()` when the lock is held elsewhere. `wait` and `retry` are checked, then ignored. */
export const tryWithLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv> =>
  locked(
    key,
    options,
    true,
    (a, restore) => runThenFinish(effect, a, restore, Option.some),
    () => Effect.succeed(Option.none<A>())
  )
