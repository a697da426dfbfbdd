/**
 * The release channel of a Redis store: its own pub/sub channel, on which a
 * release tells the waiter it hands the lock to (or wakes waiters), read by
 * the store's subscriber into its release hub; and the in-process shortcut
 * for a waiter whose store lives in the releaser's process.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import type * as LockKv from "../../LockKv.js"
import { BoundedMap } from "../boundedMap.js"
import { releaseChannel } from "../keys.js"
import { makeReleaseHub, released, type ReleaseHub } from "../releaseHub.js"
import type { Client } from "./connection.js"

const decimal = /^[1-9][0-9]*$/

/**
 * Reads a message of the release channel (see the release script):
 * `<token>|<fence>|<key>` grants the lock on `key` to the waiter `token`;
 * `<token>||<key>` only wakes that waiter, or every waiter of `key` when the
 * token is empty. Tokens never contain "|", fences are decimal, so the key (last)
 * may contain anything. Anything else is ignored (undefined).
 *
 * @internal
 */
export const parseReleaseMessage = (
  message: string
): { readonly key: string; readonly target: string | undefined; readonly wake: LockKv.Wake } | undefined => {
  const first = message.indexOf("|")
  if (first === -1) return undefined
  const second = message.indexOf("|", first + 1)
  if (second === -1 || second === message.length - 1) return undefined
  const target = first === 0 ? undefined : message.slice(0, first)
  const key = message.slice(second + 1)
  if (second === first + 1) return { key, target, wake: released }
  const digits = message.slice(first + 1, second)
  const fence = Number(digits)
  if (target === undefined || !decimal.test(digits) || !Number.isSafeInteger(fence)) return undefined
  return { key, target, wake: { _tag: "Granted", fence } }
}

/**
 * The stores of this process, by id (the end of their channels' names). When a release hands the
 * lock to a waiter of one of them, the releasing store tells that store at once
 * from the release's reply, rather than leave it to the pub/sub message, which
 * Redis writes after that reply and which then takes another turn of the event
 * loop (or more) to be read.
 */
const storesById = new Map<string, (message: string) => void>()

/** The hex id that ends each store's channel names. */
const idLength = 16

/**
 * Tells the store of this process that reads `channel`, if any, the message a
 * release published there (see `releaseReply`). The waiter is resumed before
 * the releaser.
 *
 * @internal
 */
export const tellInProcess = (channel: string, message: string): void => {
  // Every channel of a store ends with its id (a sharded one too, see shardedChannel.ts).
  storesById.get(channel.slice(-idLength))?.(message)
}

/** @internal */
export interface ReleaseChannel {
  /** The channel's name (subscribe to it when connecting). */
  readonly name: string
  /** The store's id, which ends `name` (and its sharded channels' names). */
  readonly id: string
  readonly hub: ReleaseHub
  /** Reads a message that came on one of the store's channels. */
  readonly accept: (message: string) => void
}

/**
 * Where a store's waiters are told: the channel a waiter of `lock` (a full
 * key) registers in the key's queue, and `listen`, which keeps the store
 * subscribed to it while one of its waiters watches `lock` (and returns the
 * stop). Without one (on one server), every key uses the store's channel,
 * subscribed for the store's lifetime.
 *
 * @internal
 */
export interface Routing {
  readonly channelFor: (lock: string) => string
  readonly listen: (lock: string) => () => void
}

/**
 * A new release channel for a store in `namespace`, read by `subscriber`
 * (which must still subscribe to it) and registered for the in-process
 * shortcut until the scope closes. Each store has its own channel, so each
 * message reaches one process, not every subscriber of the namespace.
 *
 * @internal
 */
export const makeReleaseChannel = (
  namespace: string,
  subscriber: Client
): Effect.Effect<ReleaseChannel, never, Scope.Scope> =>
  Effect.suspend(() => {
    const hub = makeReleaseHub()
    const id = randomBytes(idLength / 2).toString("hex")
    const name = `${releaseChannel(namespace)}:${id}`
    const deliver = (message: string): void => {
      const parsed = parseReleaseMessage(message)
      if (parsed !== undefined) hub.signal(parsed.key, parsed.target, parsed.wake)
    }
    // Grants told by a releaser of this process (`storesById`), until their
    // pub/sub copy comes; bounded, for a copy that never comes or came first
    // (a grant told twice is harmless: the waiter takes it once).
    const toldInProcess = new BoundedMap<string, true>(1024)
    const accept = (message: string): void => {
      if (!toldInProcess.delete(message)) deliver(message)
    }
    subscriber.on("message", (from: string, message: string) => {
      if (from === name) accept(message)
    })
    return Effect.acquireRelease(
      Effect.sync(() => {
        storesById.set(id, (message) => {
          toldInProcess.set(message, true)
          deliver(message)
        })
        return { name, id, hub, accept }
      }),
      () => Effect.sync(() => storesById.delete(id))
    )
  })
