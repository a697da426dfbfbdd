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
