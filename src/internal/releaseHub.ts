import * as Effect from "effect/Effect"
import type { ReleaseWatcher, Wake } from "../LockKv.js"
import { BoundedMap } from "./boundedMap.js"

/**
 * In-process fan-out of release notifications to the fibers waiting on a key.
 * A watcher latches: a wake that arrives between registration and waiting is
 * kept, repeated releases collapse into one, and a `Granted` is never lost nor
 * replaced by a later `Released` (only by a later grant with a larger fence)
 * until `next` returns it. Registering is a few map operations, so a lock can
 * register before its first try at no real cost.
 */
export interface ReleaseHub {
  /** See `LockKv.Service.watchReleases`. */
  readonly watch: (key: string, token: string, mark?: number | undefined) => Effect.Effect<ReleaseWatcher>
  /** See `LockKv.Service.notificationMark`. */
  readonly mark: () => number
  /**
   * Wakes the watcher `target` of `key` with `wake` (default `Released`), or
   * every watcher of `key` when there is no target (a `Granted` needs a target:
   * it is ignored without one). Synchronous, so a Redis message callback can
   * call it.
   */
  readonly signal: (key: string, target?: string | undefined, wake?: Wake | undefined) => void
  readonly watchedKeys: () => number
}

/** The wake of a plain release; one shared value. */
export const released: Wake = { _tag: "Released" }

interface Latch {
  /** The wake not yet handed to a caller. */
  pending: Wake | undefined
  /** Set while a caller waits: called once, with the wake, when one arrives. */
  listener: ((wake: Wake) => void) | undefined
}

const merge = (pending: Wake | undefined, wake: Wake): Wake =>
  pending === undefined || (wake._tag === "Granted" && (pending._tag === "Released" || wake.fence > pending.fence))
    ? wake
    : pending

const fire = (latch: Latch, wake: Wake) => {
  latch.pending = merge(latch.pending, wake)
  const listener = latch.listener
  if (listener !== undefined) {
    latch.listener = undefined
    const taken = latch.pending
    latch.pending = undefined
    listener(taken)
  }
}

/** How many grants without a watcher yet are kept (the oldest is dropped first). */
const maxUnclaimed = 1024

export const makeReleaseHub = (): ReleaseHub => {
  const watchers = new Map<string, Map<string, Latch>>()
  /** Notifications received so far, any key: what a mark counts. */
  let received = 0
  /**
   * Grants that found no watcher: a waiter registers only once its try's reply
   * said "held", and the grant may overtake that reply (another connection).
   * Bounded: a grant never claimed is a hint lost, found again at the next try.
   */
  const unclaimed = new BoundedMap<string, { readonly key: string; readonly wake: Wake }>(maxUnclaimed)
  const watch = (key: string, token: string, mark?: number | undefined) =>
    Effect.sync((): ReleaseWatcher => {
      const latch: Latch = { pending: undefined, listener: undefined }
      const grant = unclaimed.get(token)
      if (grant !== undefined && grant.key === key) {
        unclaimed.delete(token)
        latch.pending = grant.wake
      } else if (mark !== undefined && mark !== received) {
        // Something was released since the caller's try: it may have been this key.
        latch.pending = released
      }
      let byToken = watchers.get(key)
      if (byToken === undefined) {
        byToken = new Map()
        watchers.set(key, byToken)
      }
      byToken.set(token, latch)
      // A wake is taken from the latch only when it is handed to a listener: a
      // wait cancelled meanwhile (say, by a timer that came first) leaves any
      // wake that arrives afterwards for the next call.
      const onNext = (listener: (wake: Wake) => void): () => void => {
        const wake = latch.pending
        if (wake !== undefined) {
          latch.pending = undefined
          listener(wake)
          return () => {}
        }
        latch.listener = listener
        return () => {
          if (latch.listener === listener) latch.listener = undefined
        }
      }
      const next: Effect.Effect<Wake> = Effect.async<Wake>((resume) => {
        const cancel = onNext((wake) => resume(Effect.succeed(wake)))
        return Effect.sync(cancel)
      })
      return {
        next,
        onNext,
        close: () => {
          latch.listener = undefined
          const current = watchers.get(key)
          if (current !== undefined && current.get(token) === latch) {
            current.delete(token)
            if (current.size === 0) watchers.delete(key)
          }
        }
      }
    })
  const signal = (key: string, target?: string | undefined, wake: Wake = released) => {
    received++
    const byToken = watchers.get(key)
    if (target === undefined) {
      if (wake._tag === "Granted" || byToken === undefined) return
      for (const latch of byToken.values()) fire(latch, wake)
      return
    }
    const latch = byToken?.get(target)
    if (latch !== undefined) return fire(latch, wake)
    if (wake._tag !== "Granted") return
    unclaimed.set(target, { key, wake })
  }
  return { watch, mark: () => received, signal, watchedKeys: () => watchers.size }
}
