import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { AcquireResult, LockKv } from "../../LockKv.js"
import type { InvalidArgument, LockKvError } from "../errors.js"

/**
 * What a held lease is made of in the store: a lock key (`Lock`) or a number
 * of permits of a semaphore (`Semaphore`, `ReadWriteLock`). The engine (the
 * local line, the store's queue, renewal, the validity deadline, the section)
 * is the same for both; only these calls differ.
 */
export interface StoreOps {
  /**
   * Fibers of this process take turns per key before they contend in the
   * store (a lock: only one of them could win anyway), rather than each
   * contending on its own (permits: several may hold at once).
   */
  readonly local: boolean
  /**
   * One try for `token`; with `queue`, a refused try keeps its place in the
   * store's FIFO; with `replication`, WAIT after it (a lock only: `permitOps`
   * are never given one, see permits.ts).
   */
  readonly acquire: (
    store: LockKv.Service,
    key: string,
    token: string,
    ttl: Duration.Duration,
    queue: Duration.Duration | undefined,
    replication: LockKv.Replication | undefined
  ) => Effect.Effect<AcquireResult, LockKvError | InvalidArgument>
  /** Gives back whatever the store holds for `token` (lease or place in the queue); `true` when a lease went. */
  readonly release: (
    store: LockKv.Service,
    key: string,
    token: string
  ) => Effect.Effect<boolean, LockKvError | InvalidArgument>
  /** Resets the TTL of `token`'s lease; `false` when it no longer holds one. */
  readonly extend: (
    store: LockKv.Service,
    key: string,
    token: string,
    ttl: Duration.Duration,
    replication: LockKv.Replication | undefined
  ) => Effect.Effect<boolean, LockKvError | InvalidArgument>
}

/** The lock: one key holding the owner's token. */
export const lockOps: StoreOps = {
  local: true,
  acquire: (store, key, token, ttl, queue, replication) => store.acquire(key, token, ttl, queue, replication),
  release: (store, key, token) => store.release(key, token),
  extend: (store, key, token, ttl, replication) => store.compareAndExpire(key, token, ttl, replication)
}

/** `permits` of the semaphore `key`, whose holders all use `limit`. */
export const permitOps = (permits: number, limit: number): StoreOps => ({
  local: false,
  acquire: (store, key, token, ttl, queue) => store.acquirePermits(key, token, permits, limit, ttl, queue),
  release: (store, key, token) => store.releasePermits(key, token),
  extend: (store, key, token, ttl) => store.extendPermits(key, token, ttl)
})
