import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { AcquireResult, LockKv } from "../../LockKv.js"
import { InvalidArgument } from "../errors.js"
import {
  checkKey,
  checkPermits,
  checkToken,
  checkTtl,
  checkTtlMillis,
  defaultNamespace,
  limitMismatch,
  validateKey,
  validateSetOptions,
  validateTtl
} from "../keys.js"
import { makeReleaseHub } from "../releaseHub.js"

/**
 * What the store keeps per key: its value and expiry, and the key's fencing
 * counter, in one entry so that a lock cycle reads and writes one map entry.
 * A key that was released or expired keeps its fence in a tombstone (an entry
 * that is never live), as Redis keeps its counters; keys never locked leave
 * nothing behind.
 */
interface Entry {
  readonly value: string
  /** Clock millis at which the value stops existing; undefined = no TTL. */
  readonly expiresAt: number | undefined
  /** The last fencing token of the key (0: never locked). */
  readonly fence: number
}

type State = HashMap.HashMap<string, Entry>

const live = (entry: Entry, now: number): boolean => entry.expiresAt === undefined || entry.expiresAt > now

/** A key's fence without a value: expired since the epoch, so never live. */
const tombstone = (fence: number): Entry => ({ value: "", expiresAt: 0, fence })

/** What stays of `entry` once its value is gone: its fence, if it has one. */
const leftover = (entry: Entry): Entry | undefined =>
  entry.fence === 0 ? undefined : entry.expiresAt === 0 ? entry : tombstone(entry.fence)

/** The state once `key`'s value (in `entry`) is gone. */
const without = (s: State, key: string, entry: Entry): State => {
  const rest = leftover(entry)
  return rest === undefined ? HashMap.remove(s, key) : rest === entry ? s : HashMap.set(s, key, rest)
}

/** One holder of a semaphore's permits. */
interface Holder {
  readonly permits: number
  /** Clock millis at which its permits come back. */
  expiresAt: number
  readonly fence: number
}

/** One waiter in a semaphore's FIFO. */
interface Waiter {
  readonly token: string
  readonly permits: number
  /** Clock millis until which its place is kept (it renews it with every try). */
  placeUntil: number
}

/**
 * A semaphore: its holders, its FIFO of waiters, the limit they all use and
 * its fencing counter. Kept after its last holder (for the fence), like a lock
 * key's tombstone.
 */
interface Sem {
  limit: number
  fence: number
  readonly holders: Map<string, Holder>
  readonly queue: Array<Waiter>
}

/** How often the sweeper drops expired entries that nobody read again. */
const sweepInterval = Duration.seconds(1)

/**
 * An in-memory store: one `Ref` of an immutable HashMap, every operation a single
 * `Ref.modify` plus a Clock read, so it is atomic across fibers and `TestClock`
 * drives expiry.
 */
export const make = (
  options?: { readonly namespace?: string | undefined }
): Effect.Effect<LockKv.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const namespace = options?.namespace ?? defaultNamespace
    const state = yield* Ref.make<State>(HashMap.empty())
    const hub = makeReleaseHub()

    const sweep = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.update(state, (s) =>
        HashMap.filterMap(s, (entry) =>
          live(entry, now) ? Option.some(entry) : Option.fromNullable(leftover(entry)))))
    yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(sweepInterval)).pipe(Effect.delay(sweepInterval)))

    /** Runs `f` atomically on the state with the current clock time. */
    const modify = <A>(f: (s: State, now: number) => readonly [A, State]) =>
      // The calling fiber's Clock (so TestClock drives expiry), read in the same
      // step as the fiber (`Effect.clockWith` wraps this in one more closure).
      Effect.withFiberRuntime<A>((fiber) => {
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        return Ref.modify(state, (s) =>
          f(s, now))
      })

    const entryOf = (s: State, key: string, now: number): Entry | undefined => {
      const entry = Option.getOrUndefined(HashMap.get(s, key))
      return entry !== undefined && live(entry, now) ? entry : undefined
    }

    const get = (key: string) =>
      Effect.flatMap(validateKey(key), () =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(Ref.get(state), (s) =>
            Option.fromNullable(entryOf(s, key, now)?.value))))

    const set = (key: string, value: string, setOptions?: LockKv.SetOptions | undefined) =>
      Effect.flatMap(Effect.zip(validateKey(key), validateSetOptions(setOptions)), ([, normalized]) =>
        modify((s, now): readonly [boolean, State] => {
          const stored = Option.getOrUndefined(HashMap.get(s, key))
          const current = stored !== undefined && live(stored, now) ? stored : undefined
          if (normalized.condition === "NX" && current !== undefined) {
            return [false, s]
          }
          if (normalized.condition === "XX" && current === undefined) {
            return [false, s]
          }
          const expiresAt = normalized.ttlMillis === undefined ? undefined : now + normalized.ttlMillis
          return [true, HashMap.set(s, key, { value: String(value), expiresAt, fence: stored?.fence ?? 0 })]
        }))

    /** Removes `key` when its entry is live and passes `when`; `true` when it did. */
    const removeIf = (
      s: State,
      key: string,
      now: number,
      when: (entry: Entry) => boolean
    ): readonly [boolean, State] => {
      const stored = Option.getOrUndefined(HashMap.get(s, key))
      if (stored === undefined) {
        return [false, s]
      }
      // An expired leftover is dropped eagerly; it does not count as a removal.
      if (!live(stored, now)) {
        return [false, without(s, key, stored)]
      }
      if (!when(stored)) {
        return [false, s]
      }
      return [true, without(s, key, stored)]
    }

    const remove = (key: string, when: (entry: Entry) => boolean) =>
      modify((s, now) =>
        removeIf(s, key, now, when)
      )

    const del = (key: string) =>
      Effect.flatMap(validateKey(key), () =>
        remove(key, () =>
          true))

    // One process, no replicas: asking for some is a mistake, not a no-op.
    const noReplicas = new InvalidArgument({
      argument: "replicas",
      message: "replicas (WAIT) needs the Redis store: the memory store has no replicas"
    })

    // The lock primitives check their (pure) arguments when called rather than
    // when run: one Effect step less per call, on the lock's hot path.
    const compareAndDelete = (key: string, expected: string) => {
      const error = checkKey(key)
      return error === undefined ? remove(key, (entry) => entry.value === expected) : Effect.fail(error)
    }

    const compareAndExpire = (
      key: string,
      expected: string,
      ttl: Duration.DurationInput,
      replication?: LockKv.Replication | undefined
    ) =>
      replication !== undefined ?
        Effect.fail(noReplicas) :
        Effect.flatMap(Effect.zip(validateKey(key), validateTtl(ttl)), ([, ttlDuration]) =>
          modify((s, now): readonly [boolean, State] => {
            const current = entryOf(s, key, now)
            if (current === undefined || current.value !== expected) {
              return [false, s]
            }
            const expiresAt = now + Duration.toMillis(ttlDuration)
            return [true, HashMap.set(s, key, { value: current.value, expiresAt, fence: current.fence })]
          }))

    const pttl = (key: string) =>
      Effect.flatMap(validateKey(key), () =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(Ref.get(state), (s) => {
            const current = entryOf(s, key, now)
            return current === undefined || current.expiresAt === undefined
              ? Option.none()
              : Option.some(Duration.millis(current.expiresAt - now))
          })))

    // One process: the lock engine's local FIFO already orders the waiters of a
    // key, so the memory store needs no queue of its own and ignores `queue`.
    const acquire = (
      key: string,
      token: string,
      ttl: Duration.Duration,
      _queue?: Duration.Duration | undefined,
      replication?: LockKv.Replication | undefined
    ) => {
      if (replication !== undefined) {
        return Effect.fail(noReplicas)
      }
      const checked = checkKey(key) ?? checkToken(token) ?? checkTtl(ttl)
      if (checked instanceof InvalidArgument) {
        return Effect.fail(checked)
      }
      const ttlMillis = Duration.toMillis(checked)
      return modify((s, now): readonly [AcquireResult, State] => {
        const stored = Option.getOrUndefined(HashMap.get(s, key))
        if (stored !== undefined && live(stored, now)) {
          const remaining = stored.expiresAt === undefined
            ? Option.none<Duration.Duration>()
            : Option.some(Duration.millis(stored.expiresAt - now))
          return [{ _tag: "Held", remaining }, s]
        }
        const fence = (stored?.fence ?? 0) + 1
        return [{ _tag: "Acquired", fence }, HashMap.set(s, key, { value: token, expiresAt: now + ttlMillis, fence })]
      })
    }

    const release = (key: string, token: string) => {
      const error = checkKey(key) ?? checkToken(token)
      if (error !== undefined) {
        return Effect.fail(error)
      }
      return modify((s, now) => {
        const result = removeIf(s, key, now, (entry) =>
          entry.value === token)
        // Safe inside the update: the hub only schedules the fibers it wakes,
        // and they run after it.
        if (result[0]) {
          hub.signal(key)
        }
        return result
      })
    }

    const fence = (key: string) =>
      Effect.flatMap(validateKey(key), () =>
        Effect.map(Ref.get(state), (s) => {
          const fence = Option.getOrUndefined(HashMap.get(s, key))?.fence ?? 0
          return fence === 0 ? Option.none() : Option.some(fence)
        }))

    // -- semaphores: the same steps as the Redis scripts (scripts.ts), on plain
    // maps. JavaScript runs one step at a time, so each call is atomic.
    const sems = new Map<string, Sem>()

    const pruneHolders = (sem: Sem, now: number): void => {
      for (const [token, holder] of sem.holders) {
        if (holder.expiresAt <= now) {
          sem.holders.delete(token)
        }
      }
    }
    /** The first waiter whose place is still kept; those before it have gone. */
    const liveHead = (sem: Sem, now: number): Waiter | undefined => {
      while (sem.queue.length > 0 && sem.queue[0]!.placeUntil <= now) {
        sem.queue.shift()
      }
      return sem.queue[0]
    }
    const inUse = (sem: Sem): number => {
      let used = 0
      for (const holder of sem.holders.values()) {
        used += holder.permits
      }
      return used
    }
    /**
     * Grants permits to the waiters at the head of the queue while they fit,
     * each until its place would have ended; tells each but `self`, and gives
     * the fence of `self` when it was granted.
     */
    const grant = (key: string, sem: Sem, now: number, self: string | undefined): number | undefined => {
      let used = inUse(sem)
      let mine: number | undefined
      for (let head = liveHead(sem, now); head !== undefined; head = liveHead(sem, now)) {
        if (used + head.permits > sem.limit) {
          break
        }
        sem.queue.shift()
        const fence = ++sem.fence
        sem.holders.set(head.token, { permits: head.permits, expiresAt: head.placeUntil, fence })
        used += head.permits
        if (head.token === self) {
          mine = fence
        } else hub.signal(key, head.token, { _tag: "Granted", fence })
      }
      return mine
    }
    /** The time until a holder's permits come back (else until the head's place ends). */
    const untilFree = (sem: Sem, now: number): Option.Option<Duration.Duration> => {
      let first = Infinity
      for (const holder of sem.holders.values()) {
        if (holder.expiresAt < first) {
          first = holder.expiresAt
        }
      }
      if (first === Infinity && sem.queue.length > 0) {
        first = sem.queue[0]!.placeUntil
      }
      return first === Infinity ? Option.none() : Option.some(Duration.millis(Math.max(0, first - now)))
    }
    /** Runs `f` on `key`'s semaphore (made on first use) with the time of the calling fiber's Clock. */
    const withSem = <A>(key: string, f: (sem: Sem, now: number) => A) =>
      Effect.withFiberRuntime<A>((fiber) => {
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        let sem = sems.get(key)
        if (sem === undefined) {
          sem = { limit: 0, fence: 0, holders: new Map(), queue: [] }
          sems.set(key, sem)
        }
        pruneHolders(sem, now)
        return Effect.succeed(f(sem, now))
      })

    const acquirePermits = (
      key: string,
      token: string,
      permits: number,
      limit: number,
      ttl: Duration.Duration,
      queue?: Duration.Duration | undefined
    ) => {
      const invalid = checkKey(key) ?? checkToken(token) ?? checkPermits(permits, limit)
      if (invalid !== undefined) {
        return Effect.fail(invalid)
      }
      const ttlMillis = checkTtlMillis(ttl)
      if (ttlMillis instanceof InvalidArgument) {
        return Effect.fail(ttlMillis)
      }
      const placeMillis = queue === undefined ? 0 : checkTtlMillis(queue, "queue")
      if (placeMillis instanceof InvalidArgument) {
        return Effect.fail(placeMillis)
      }
      return Effect.flatten(withSem(key, (sem, now): Effect.Effect<AcquireResult, InvalidArgument> => {
        const mine = sem.holders.get(token)
        if (mine !== undefined) {
          mine.expiresAt = now + ttlMillis
          return Effect.succeed({ _tag: "Acquired", fence: mine.fence })
        }
        const head = liveHead(sem, now)
        if (sem.holders.size === 0 && head === undefined) {
          sem.limit = limit
        } else if (sem.limit !== limit) {
          return Effect.fail(limitMismatch(key, sem.limit, limit))
        }
        if ((head === undefined || head.token === token) && inUse(sem) + permits <= limit) {
          if (head !== undefined) {
            sem.queue.shift()
          }
          const fence = ++sem.fence
          sem.holders.set(token, { permits, expiresAt: now + ttlMillis, fence })
          grant(key, sem, now, undefined)
          return Effect.succeed({ _tag: "Acquired", fence })
        }
        if (placeMillis > 0) {
          const waiter = sem.queue.find((w) =>
            w.token === token
          )
          if (waiter !== undefined) {
            waiter.placeUntil = now + placeMillis
          } else sem.queue.push({ token, permits, placeUntil: now + placeMillis })
        }
        // Holders may have expired since the last release: the head may fit now.
        const granted = grant(key, sem, now, token)
        if (granted !== undefined) {
          const holder = sem.holders.get(token)!
          holder.expiresAt = now + ttlMillis
          return Effect.succeed({ _tag: "Acquired", fence: granted })
        }
        return Effect.succeed({ _tag: "Held", remaining: untilFree(sem, now) })
      }))
    }

    const releasePermits = (key: string, token: string) => {
      const invalid = checkKey(key) ?? checkToken(token)
      if (invalid !== undefined) {
        return Effect.fail(invalid)
      }
      return withSem(key, (sem, now) => {
        const held = sem.holders.delete(token)
        if (!held) {
          const index = sem.queue.findIndex((w) => w.token === token)
          if (index !== -1) {
            sem.queue.splice(index, 1)
          }
        }
        if (sem.limit > 0) {
          grant(key, sem, now, undefined)
        }
        return held
      })
    }

    const extendPermits = (key: string, token: string, ttl: Duration.Duration) => {
      const invalid = checkKey(key) ?? checkToken(token)
      if (invalid !== undefined) {
        return Effect.fail(invalid)
      }
      const ttlMillis = checkTtlMillis(ttl)
      if (ttlMillis instanceof InvalidArgument) {
        return Effect.fail(ttlMillis)
      }
      return withSem(key, (sem, now) => {
        const holder = sem.holders.get(token)
        if (holder === undefined) {
          return false
        }
        holder.expiresAt = now + ttlMillis
        return true
      })
    }

    const permitsInUse = (key: string) => {
      const invalid = checkKey(key)
      if (invalid !== undefined) {
        return Effect.fail(invalid)
      }
      // A look makes no entry: only keys taken keep one (for their fence).
      return Effect.suspend(() => sems.has(key) ? withSem(key, inUse) : Effect.succeed(0))
    }

    return {
      backend: "memory",
      lifetime: yield* Effect.scope,
      namespace,
      get,
      set,
      del,
      compareAndDelete,
      compareAndExpire,
      pttl,
      acquire,
      release,
      fence,
      watchReleases: hub.watch,
      notificationMark: hub.mark,
      acquirePermits,
      releasePermits,
      extendPermits,
      permitsInUse
    } satisfies LockKv.Service
  })
