/**
 * Release notices on a Redis Cluster through sharded pub/sub (Redis 7:
 * SSUBSCRIBE / SPUBLISH). A plain PUBLISH is forwarded over the cluster bus
 * to every node; a sharded one stays within the shard of its channel's slot.
 * So a waiter's channel is per key, in the key's slot
 * (`companionKey(lock, "released:<store id>")`), and the store subscribes to
 * it (SSUBSCRIBE, on ioredis' subscriber for that shard) only while one of its
 * waiters watches the key: ref-counted, unsubscribed a while after the last
 * one leaves (a busy key is not subscribed and unsubscribed on every wait).
 *
 * The queue keeps the channel with a leading NUL (which no namespace starts
 * with), which tells the release script to SPUBLISH rather than PUBLISH.
 * A waiter subscribes once its first try has found the key held: a release in
 * between is not heard, and the waiter finds the lock (granted to its token)
 * at its next try, at most ~0.7 s later. Pub/sub is a hint either way.
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { Cluster } from "ioredis"
import { companionKey } from "../keys.js"
import type { ReleaseChannel, Routing } from "./releaseChannel.js"

/** How long a key stays subscribed after its last waiter left. */
const lingerMillis = 2_000

interface Subscription {
  count: number
  timer: ReturnType<typeof setTimeout> | undefined
}

/** The marker the release script reads: SPUBLISH to the rest of the name. @internal */
export const shardedMarker = "\u0000"

/**
 * Whether `subscriber` (a cluster client made with `shardedSubscribers`) can
 * SSUBSCRIBE: Redis 7 and an ioredis that routes it. Any error (an older
 * server, an ACL without it) means no.
 *
 * @internal
 */
export const probeSharded = (subscriber: Cluster, channel: ReleaseChannel): Effect.Effect<boolean> =>
  Effect.tryPromise(async () => {
    const probe = companionKey(`${channel.name}:probe`, `released:${channel.id}`)
    await subscriber.ssubscribe(probe)
    await subscriber.sunsubscribe(probe)
  }).pipe(
    Effect.timeout("2 seconds"),
    Effect.as(true),
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logDebug("effect-lock: sharded pub/sub unavailable, release notices use PUBLISH", String(error)),
        false
      )
    )
  )

/**
 * The sharded routing of `channel`'s store on `subscriber`, its subscriptions
 * dropped when the scope closes.
 *
 * @internal
 */
export const shardedRouting = (
  subscriber: Cluster,
  channel: ReleaseChannel
): Effect.Effect<Routing, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const subscriptions = new Map<string, Subscription>()
    const suffix = `released:${channel.id}`
    const name = (lock: string) => companionKey(lock, suffix)
    const failed = (what: string) => (error: unknown) =>
      Runtime.runFork(runtime)(
        Effect.logDebug(`effect-lock: ${what} failed (release notices are a hint)`, String(error))
      )
    subscriber.on("smessage", (from: string, message: string) => {
      if (subscriptions.has(from)) channel.accept(message)
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const subscription of subscriptions.values()) clearTimeout(subscription.timer)
        subscriptions.clear()
      })
    )
    const drop = (channelName: string) => {
      subscriptions.delete(channelName)
      subscriber.sunsubscribe(channelName).catch(failed("SUNSUBSCRIBE"))
    }
    return {
      channelFor: (lock) => shardedMarker + name(lock),
      listen: (lock) => {
        const channelName = name(lock)
        let subscription = subscriptions.get(channelName)
        if (subscription === undefined) {
          subscription = { count: 0, timer: undefined }
          subscriptions.set(channelName, subscription)
          subscriber.ssubscribe(channelName).catch(failed("SSUBSCRIBE"))
        }
        const held = subscription
        held.count++
        if (held.timer !== undefined) {
          clearTimeout(held.timer)
          held.timer = undefined
        }
        let stopped = false
        return () => {
          if (stopped) return
          stopped = true
          if (--held.count > 0 || subscriptions.get(channelName) !== held) return
          held.timer = setTimeout(() => {
            if (held.count === 0 && subscriptions.get(channelName) === held) drop(channelName)
          }, lingerMillis)
          held.timer.unref()
        }
      }
    }
  })
