import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type { ReleaseWatcher } from "../LockKv.js"

/**
 * In-process fan-out of release notifications to the fibers waiting on a key.
 * A watcher latches: a release that arrives between registration and waiting
 * is kept, repeated releases collapse into one. Registering is a few map
 * operations, so a lock can register before its first try at no real cost.
 */
export interface ReleaseHub {
  readonly watch: (key: string, token: string) => Effect.Effect<ReleaseWatcher>
  /**
   * Wakes the watcher `target` of `key`, or every watcher of `key` when there is
   * no target. Synchronous, so a Redis message callback can call it.
   */
  readonly signal: (key: string, target?: string | undefined) => void
  readonly watchedKeys: () => number
}

interface Latch {
  signaled: boolean
  waiting: Deferred.Deferred<void> | undefined
}

const fire = (latch: Latch) => {
  const waiting = latch.waiting
  if (waiting === undefined) {
    latch.signaled = true
  } else {
    latch.waiting = undefined
    Deferred.unsafeDone(waiting, Effect.void)
  }
}

export const makeReleaseHub = (): ReleaseHub => {
  const watchers = new Map<string, Map<string, Latch>>()
  const watch = (key: string, token: string) =>
    Effect.sync((): ReleaseWatcher => {
      const latch: Latch = { signaled: false, waiting: undefined }
      let byToken = watchers.get(key)
      if (byToken === undefined) {
        byToken = new Map()
        watchers.set(key, byToken)
      }
      byToken.set(token, latch)
      return {
        next: Effect.suspend(() => {
          if (latch.signaled) {
            latch.signaled = false
            return Effect.void
          }
          latch.waiting ??= Deferred.unsafeMake(FiberId.none)
          return Deferred.await(latch.waiting)
        }),
        close: () => {
          const current = watchers.get(key)
          if (current !== undefined && current.get(token) === latch) {
            current.delete(token)
            if (current.size === 0) watchers.delete(key)
          }
        }
      }
    })
  const signal = (key: string, target?: string | undefined) => {
    const byToken = watchers.get(key)
    if (byToken === undefined) return
    if (target === undefined) {
      for (const latch of byToken.values()) fire(latch)
    } else {
      const latch = byToken.get(target)
      if (latch !== undefined) fire(latch)
    }
  }
  return { watch, signal, watchedKeys: () => watchers.size }
}
