import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"

/**
 * In-process fan-out of release notifications to the fibers waiting on a key.
 * Each watcher holds a sliding queue of capacity one: a release that happens
 * between registration and waiting is kept, repeated releases collapse into one.
 */
export interface ReleaseHub {
  readonly watch: (key: string) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** Wakes every watcher of `key`. Synchronous, so a Redis message callback can call it. */
  readonly signal: (key: string) => void
  readonly watchedKeys: () => number
}

export const makeReleaseHub = (): ReleaseHub => {
  const watchers = new Map<string, Set<Queue.Queue<void>>>()
  const watch = (key: string) =>
    Effect.acquireRelease(
      Effect.map(Queue.sliding<void>(1), (queue) => {
        let set = watchers.get(key)
        if (set === undefined) {
          set = new Set()
          watchers.set(key, set)
        }
        set.add(queue)
        return queue
      }),
      (queue) =>
        Effect.suspend(() => {
          const set = watchers.get(key)
          if (set !== undefined) {
            set.delete(queue)
            if (set.size === 0) watchers.delete(key)
          }
          return Queue.shutdown(queue)
        })
    ).pipe(Effect.map((queue) => Queue.take(queue)))
  const signal = (key: string) => {
    const set = watchers.get(key)
    if (set === undefined) return
    for (const queue of set) queue.unsafeOffer(undefined)
  }
  return { watch, signal, watchedKeys: () => watchers.size }
}
