import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import type { Handle, Options } from "../../Lock.js"
import type { LockKv as LockKvNs, ReleaseWatcher } from "../../LockKv.js"
import { LockKv } from "../../LockKv.js"
import { InvalidArgument, type LockKvError } from "../errors.js"
import { validateKey, validateTtl } from "../keys.js"
import { LockLost, LockNotAcquired } from "./errors.js"
import { type Lease } from "./leases.js"
import * as leases from "./leases.js"
import * as localQueue from "./localQueue.js"
import * as metrics from "./metrics.js"
import { withSpan } from "./tracing.js"
import * as time from "./time.js"

interface Settings {
  readonly key: string
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration
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

const validateWait = (wait: unknown): Effect.Effect<Duration.Duration, InvalidArgument> => {
  const invalid = (why: string) =>
    Effect.fail(new InvalidArgument({ argument: "wait", message: `wait must be a duration of zero or more (${why})` }))
  if (wait === undefined) return Effect.succeed(defaultWait)
  // `Duration.decode` turns negative and NaN inputs into zero quietly: check the raw input first.
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
    return Effect.succeed(decoded)
  } catch {
    return invalid(`cannot read ${JSON.stringify(String(wait))}`)
  }
}

const validate = (key: string, options: Options | undefined): Effect.Effect<Settings, InvalidArgument> =>
  Effect.gen(function*() {
    const retry = options?.retry ?? defaultRetry
    if (!Schedule.isSchedule(retry)) {
      return yield* new InvalidArgument({ argument: "retry", message: "retry must be a Schedule" })
    }
    return {
      key: yield* validateKey(key),
      ttl: options?.ttl === undefined ? defaultTtl : yield* validateTtl(options.ttl),
      wait: yield* validateWait(options?.wait),
      retry,
      autoExtend: options?.autoExtend ?? true
    }
  })

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
const queueRefreshMillis = Duration.toMillis(queuePlace) / 3

/**
 * The caller's retry schedule, stepped by hand: each call is one failed try and
 * gives the delay before the next, or `None` once the schedule is done.
 */
const makeBackoff = (key: string, schedule: Schedule.Schedule<unknown, LockNotAcquired>) => {
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
 * Tries until acquired, the deadline passes or the retry schedule ends. Between
 * tries it sleeps the schedule's delay, cut short by a release notification
 * addressed to it, by the end of the holder's TTL, and by the need to keep its
 * place in the queue.
 */
const acquireLoop = (
  store: LockKvNs.Service,
  settings: Settings,
  token: string,
  deadline: number,
  backoff: (now: number) => Effect.Effect<Option.Option<number>>,
  outcome: { current: Outcome }
): Effect.Effect<Acquired, LockNotAcquired | LockKvError | InvalidArgument> =>
  Effect.gen(function*() {
    const { key, ttl } = settings
    const now0 = yield* time.now
    const waits = deadline > now0
    const queue = waits ? queuePlace : undefined
    const tryOnce: Effect.Effect<Attempt, LockKvError | InvalidArgument> = Effect.gen(function*() {
      const sentAt = yield* time.now
      if (outcome.current === "none") outcome.current = "maybe"
      const result = yield* store.acquire(key, token, ttl, queue)
      if (result._tag === "Acquired") {
        outcome.current = "held"
        return { _tag: "Acquired", acquired: { fence: result.fence, sentAt } }
      }
      // Without a queue a refused try leaves nothing behind; with one, our place stays until we leave.
      if (!waits) outcome.current = "none"
      yield* metrics.recordContention(store.backend)
      return { _tag: "Held", remaining: result.remaining }
    })

    // Listen before the first try, so that a release right after it is not missed.
    const watcher = waits ? yield* store.watchReleases(key, token) : undefined
    return yield* tryLoop(settings, deadline, backoff, tryOnce, watcher).pipe(
      Effect.ensuring(Effect.sync(() => watcher?.close()))
    )
  })

/** The tries of `acquireLoop`, while `watcher` (if any) listens for releases. */
const tryLoop = (
  settings: Settings,
  deadline: number,
  backoff: (now: number) => Effect.Effect<Option.Option<number>>,
  tryOnce: Effect.Effect<Attempt, LockKvError | InvalidArgument>,
  watcher: ReleaseWatcher | undefined
): Effect.Effect<Acquired, LockNotAcquired | LockKvError | InvalidArgument> =>
  Effect.gen(function*() {
    const { key } = settings
    const first = yield* tryOnce
    if (first._tag === "Acquired") return first.acquired
    if (watcher === undefined) return yield* notAcquired(key)

    let remaining = first.remaining
    while (true) {
      const now = yield* time.now
      if (now >= deadline) return yield* notAcquired(key)
      const next = yield* backoff(now)
      if (Option.isNone(next)) return yield* notAcquired(key)
      const scheduled = next.value
      // Never sleep past the holder's TTL (+1 ms so the key is surely gone) or past the deadline.
      const ttlEnd = Option.match(remaining, { onNone: () => Infinity, onSome: (d) => Duration.toMillis(d) + 1 })
      const delay = Math.max(0, Math.ceil(Math.min(scheduled, ttlEnd, queueRefreshMillis, deadline - now)))
      yield* Effect.raceFirst(Effect.sleep(Duration.millis(delay)), watcher.next)
      const attempt = yield* tryOnce
      if (attempt._tag === "Acquired") return attempt.acquired
      remaining = attempt.remaining
    }
  })

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
  Effect.gen(function*() {
    const settings = yield* validate(key, options)
    const store = yield* LockKv
    const scope = yield* Effect.scope
    const token = makeToken()
    const outcome: { current: Outcome } = { current: "none" }
    const clock = yield* Effect.clock
    const waitStart = time.monotonicMillis(clock)
    const deadline = waitStart + Duration.toMillis(settings.wait)

    // Fibers of this process queue here first: one at a time contends in the store.
    const backoff = makeBackoff(key, settings.retry)
    const turn = yield* localQueue.enter(store, key, deadline, backoff)
    if (Option.isNone(turn)) {
      // Held by another fiber of this process: a failed try like any other.
      yield* metrics.recordContention(store.backend)
      return yield* notAcquired(key)
    }
    const passTurn = Effect.sync(turn.value.pass)

    let lease: Lease | undefined
    let released = false
    // Deletes only our own token (or our place in the queue), so it is safe whatever happened meanwhile.
    const releaseStore: Effect.Effect<boolean, LockKvError> = Effect.suspend(() => {
      if (released) return Effect.succeed(false)
      released = true
      if (lease !== undefined) leases.untrack(store, lease)
      if (outcome.current === "none") return Effect.succeed(false)
      if (lease !== undefined) metrics.recordHoldTime(store.backend, time.monotonicMillis(clock) - heldSince)
      return store.release(key, token).pipe(
        Effect.catchTag("InvalidArgument", () => Effect.succeed(false)),
        withSpan("effect-lock.release", { "lock.key": key })
      )
    })
    // Registered before the first try: an attempt whose outcome is unknown
    // (interrupted or failed in flight) is undone by token when the Scope closes.
    // A failed release never fails the section: the key then expires by its TTL.
    yield* Scope.addFinalizer(
      scope,
      releaseStore.pipe(
        Effect.catchAll((error) =>
          Effect.logDebug("effect-lock: release failed; the key will expire by its TTL", error.message)
        ),
        Effect.ensuring(passTurn)
      )
    )

    const acquired = yield* acquireLoop(store, settings, token, deadline, backoff, outcome).pipe(
      withSpan("effect-lock.acquire", { "lock.key": key, "lock.backend": store.backend })
    )
    const heldSince = time.monotonicMillis(clock)
    metrics.recordAcquired(store.backend, heldSince - waitStart)

    const held = leases.makeLease({
      key,
      token,
      ttlMillis: Duration.toMillis(settings.ttl),
      autoExtend: settings.autoExtend,
      sentAt: acquired.sentAt
    })
    // The lock is gone: let the next fiber of this process try.
    held.onLost.push(turn.value.pass)
    lease = held
    // The try may have waited for a connection before it was sent, so its send
    // time (read before) can be long past: confirm the lock once more right away
    // rather than let the deadline declare a good lock lost.
    if (heldSince - acquired.sentAt > held.ttlMillis / 3) {
      yield* leases.renew(store, held, held.ttlMillis).pipe(
        Effect.catchTag("LockLost", () => Effect.fail(notAcquiredAfterLoss(key))),
        Effect.catchTag("LockKvError", () => Effect.void)
      )
    }
    yield* leases.track(store, held)

    const handle: Handle = {
      key,
      token,
      fence: acquired.fence,
      lost: leases.awaitLost(held),
      extend: (ttl) =>
        Effect.gen(function*() {
          if (held.lostError !== undefined) return yield* held.lostError
          if (released) return yield* new LockLost({ key, message: `lock "${key}" was released` })
          const millis = ttl === undefined ? held.ttlMillis : Duration.toMillis(yield* validateTtl(ttl))
          yield* leases.renew(store, held, millis)
        }),
      release: releaseStore
    }
    handles.set(handle, held)
    return handle
  })

/** The lease behind each handle, for `withLock` to interrupt its effect on loss. */
const handles = new WeakMap<Handle, Lease>()

/**
 * Runs `effect` under a held lock, in a child fiber that the lease interrupts
 * when the lock is lost; the result is then `LockLost`.
 */
const runHeld = <A, E, R>(effect: Effect.Effect<A, E, R>, handle: Handle): Effect.Effect<A, E | LockLost, R> =>
  Effect.gen(function*() {
    const lease = handles.get(handle)!
    const fiber = yield* Effect.fork(effect)
    yield* Effect.sync(() => {
      const interrupt = () => fiber.unsafeInterruptAsFork(fiber.id())
      // Still inside the scope, `done` can only mean lost: then at once.
      if (lease.done) interrupt()
      else lease.onLost.push(interrupt)
    })
    const exit = yield* Fiber.await(fiber)
    if (lease.lostError !== undefined && Exit.isInterrupted(exit)) return yield* lease.lostError
    return yield* exit
  })

/** Runs `effect` while holding `key`; interrupts it and fails with `LockLost` if the lock is lost. */
export const withLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<A, E | LockNotAcquired | LockLost | LockKvError | InvalidArgument, R | LockKv> =>
  Effect.scoped(Effect.flatMap(acquire(key, options), (handle) => runHeld(effect, handle)))

/** One try, never waits: `Option.none()` when the lock is held elsewhere. `wait` and `retry` are checked, then ignored. */
export const tryWithLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<Option.Option<A>, E | LockLost | LockKvError | InvalidArgument, R | LockKv> =>
  Effect.zipRight(
    validate(key, options),
    Effect.scoped(
      acquire(key, { ...options, wait: 0, retry: undefined }).pipe(
        Effect.map(Option.some),
        Effect.catchTag("LockNotAcquired", () => Effect.succeed(Option.none<Handle>())),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(Option.none<A>()),
          onSome: (handle) => Effect.map(runHeld(effect, handle), Option.some)
        }))
      )
    )
  )
