import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

/**
 * In-process fan-out of release notifications to the fibers waiting on a key.
 * Each watcher holds a sliding queue of capacity one: a release that happens
 * between registration and waiting is kept, repeated releases collapse into one.
 */
export interface ReleaseHub {
  readonly watch: (key: string, token: string) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /**
   * Wakes the watcher `target` of `key`, or every watcher of `key` when there is
   * no target. Synchronous, so a Redis message callback can call it.
   */
  readonly signal: (key: string, target?: string | undefined) => void
  readonly watchedKeys: () => number
}

export const makeReleaseHub = (): ReleaseHub => {
  const watchers = new Map<string, Map<string, Queue.Queue<void>>>()
  const watch = (key: string, token: string) =>
    Effect.acquireRelease(
      Effect.map(Queue.sliding<void>(1), (queue) => {
        let byToken = watchers.get(key)
        if (byToken === undefined) {
          byToken = new Map()
          watchers.set(key, byToken)
        }
        byToken.set(token, queue)
        return queue
      }),
      (queue) =>
        Effect.suspend(() => {
          const byToken = watchers.get(key)
          if (byToken !== undefined && byToken.get(token) === queue) {
            byToken.delete(token)
            if (byToken.size === 0) watchers.delete(key)
          }
          return Queue.shutdown(queue)
        })
    ).pipe(Effect.map((queue) => Queue.take(queue)))
  const signal = (key: string, target?: string | undefined) => {
    const byToken = watchers.get(key)
    if (byToken === undefined) return
    if (target === undefined) {
      for (const queue of byToken.values()) queue.unsafeOffer(undefined)
    } else {
      byToken.get(target)?.unsafeOffer(undefined)
    }
  }
  return { watch, signal, watchedKeys: () => watchers.size }
}
