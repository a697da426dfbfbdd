/**
 * effect-lock: distributed (Redis) and local (in-memory) locks for Effect.
 *
 * @since 0.1.0
 */

/**
 * The locking combinators: `withLock`, `tryWithLock`, `acquire`.
 *
 * @since 0.1.0
 */
export * as Lock from "./Lock.js"

/**
 * The store locks live in: Redis when configured, memory otherwise.
 *
 * @since 0.1.0
 */
export * as LockKv from "./LockKv.js"

/**
 * Counting semaphores: `withPermits`, `tryWithPermits`, `acquire`.
 *
 * @since 0.2.0
 */
export * as Semaphore from "./Semaphore.js"

/**
 * Read-write locks: `withRead`, `withWrite`, their one-try and scoped forms.
 *
 * @since 0.2.0
 */
export * as ReadWriteLock from "./ReadWriteLock.js"
