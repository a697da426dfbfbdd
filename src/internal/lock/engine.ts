/**
 * The combinators of every lease: each checks its arguments, takes the lease
 * (contend.ts), runs what the caller gave it (a section, section.ts, or a
 * Scope) and `finish`es, which releases whatever the outcome. A lease is a
 * lock key (`Lock`) or permits of a semaphore (`Semaphore`, `ReadWriteLock`):
 * the `Check` of a call gives its settings, whose `ops` make the store calls.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import type { Handle, Options } from "../../Lock.js"
import { LockKv } from "../../LockKv.js"
import { InvalidArgument, type LockKvError } from "../errors.js"
import { type Acquisition, stopWatching, takeLock } from "./contend.js"
import { LockLost, type LockNotAcquired, type ReplicationNotConfirmed } from "./errors.js"
import * as leases from "./leases.js"
import * as metrics from "./metrics.js"
import { guard } from "./section.js"
import { checkLockTtl, checkSettings, type Settings } from "./settings.js"
import * as time from "./time.js"
import { isDefaultTracer, spanIf } from "./tracing.js"

/** An owner token: a UUIDv4 (122 random bits from the OS CSPRNG), never a counter or a timestamp. */
const makeToken = (): string => randomUUID()

/**
 * Checks a call's key and options into its `Settings` (`checkSettings` for a
 * lock), which also say how the lease is held in the store (`Settings.ops`).
 */
export type Check<O> = (key: string, options: O | undefined) => Settings | InvalidArgument

/** Checks the arguments and reads the store, clock and tracer of the caller's fiber: all synchronous. */
const prepare = <O>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  key: string,
  options: O | undefined,
  check: Check<O>,
  oneTry: boolean
): Acquisition | InvalidArgument => {
  const settings = check(key, options)
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
  const release = a.settings.ops.release(a.store, a.settings.key, a.token)
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
const locked = <O, X, E, R, F>(
  key: string,
  options: O | undefined,
  check: Check<O>,
  oneTry: boolean,
  use: (
    a: Acquisition,
    restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>
  ) => Effect.Effect<X, E, R>,
  /** What it gives when the lock is held elsewhere: `LockNotAcquired`, or a value. */
  refused: (error: LockNotAcquired) => Effect.Effect<X, F>
): Effect.Effect<X, E | F | ReplicationNotConfirmed | LockKvError | InvalidArgument, R | LockKv> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.withFiberRuntime((fiber) => {
      const a = prepare(fiber, key, options, check, oneTry)
      if (a instanceof InvalidArgument) return Effect.fail(a)
      return Effect.matchCauseEffect(restore(takeLock(a)), {
        onFailure: (cause): Effect.Effect<X, E | F | ReplicationNotConfirmed | LockKvError | InvalidArgument, R> => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure) && failure.value._tag === "LockNotAcquired") {
            return finish(a, refused(failure.value))
          }
          return finish(
            a,
            Effect.failCause(cause as Cause.Cause<ReplicationNotConfirmed | LockKvError | InvalidArgument>)
          )
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
export const acquireWith = <O, H = Handle>(
  key: string,
  options: O | undefined,
  check: Check<O>,
  toHandle: (handle: Handle) => H = identity as (handle: Handle) => H
): Effect.Effect<H, LockNotAcquired | ReplicationNotConfirmed | LockKvError | InvalidArgument, LockKv | Scope.Scope> =>
  locked(
    key,
    options,
    check,
    false,
    // `Scope.addFinalizer`, not `Effect.addFinalizer`: `finish` needs none of the
    // acquiring fiber's FiberRefs, whose restoring costs more than the lock cycle.
    (a) =>
      Effect.flatMap(Effect.scope, (scope) =>
        Effect.as(
          Scope.addFinalizer(
            scope,
            Effect.suspend(() => finish(a, Effect.void))
          ),
          toHandle(makeHandle(a))
        )),
    Effect.fail
  )

/**
 * Runs `effect` as the section of the held lock (section.ts), then `finish`es
 * with its exit, whatever it is: `LockLost` when the loss of the lock
 * interrupted it.
 */
const runSection = <A, E, R, B>(
  effect: Effect.Effect<A, E, R>,
  a: Acquisition,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>,
  onSuccess: (a: A) => B
): Effect.Effect<B, E | LockLost, R> =>
  Effect.flatMap(guard(effect, a.lease!, restore), (exit) => finish(a, Exit.map(exit, onSuccess)))

/** Runs `effect` while holding `key`; interrupts it and fails with `LockLost` if the lock is lost. */
export const withLease = <O, A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options: O | undefined,
  check: Check<O>
): Effect.Effect<
  A,
  E | LockNotAcquired | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  R | LockKv
> => locked(key, options, check, false, (a, restore) => runSection(effect, a, restore, identity), Effect.fail)

/** One try, never waits: `Option.none()` when the lock is held elsewhere. `wait` and `retry` are checked, then ignored. */
export const tryWithLease = <O, A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options: O | undefined,
  check: Check<O>
): Effect.Effect<
  Option.Option<A>,
  E | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  R | LockKv
> =>
  locked(
    key,
    options,
    check,
    true,
    (a, restore) => runSection(effect, a, restore, Option.some),
    () => Effect.succeed(Option.none<A>())
  )

/** `acquireWith` for a lock. */
export const acquire = (
  key: string,
  options?: Options | undefined
): Effect.Effect<
  Handle,
  LockNotAcquired | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  LockKv | Scope.Scope
> => acquireWith(key, options, checkSettings)

/** `withLease` for a lock. */
export const withLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<
  A,
  E | LockNotAcquired | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  R | LockKv
> => withLease(effect, key, options, checkSettings)

/** `tryWithLease` for a lock. */
export const tryWithLock = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  options?: Options | undefined
): Effect.Effect<
  Option.Option<A>,
  E | LockLost | ReplicationNotConfirmed | LockKvError | InvalidArgument,
  R | LockKv
> => tryWithLease(effect, key, options, checkSettings)
