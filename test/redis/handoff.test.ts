/**
 * Direct hand-off on Redis: a release grants the lock to the live waiter at the
 * head of the queue (lock set to its token for what is left of its place, fence
 * incremented, `<token>|<fence>|<key>` published), so the waiter needs no
 * second try. A try by a granted waiter (its message lost) confirms the grant.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import { Redis } from "ioredis"
import { LockKv } from "../../src/index.js"
import { companionKey, namespaced, releaseChannel } from "../../src/internal/keys.js"
import { parseReleaseMessage } from "../../src/internal/redis/releaseChannel.js"
import { makeReleaseHub } from "../../src/internal/releaseHub.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"

const ttl = Duration.seconds(10)
const longTtl = Duration.seconds(30)
const place = Duration.seconds(2)
const placeMillis = Duration.toMillis(place)

/** A plain ioredis client to look at the server from outside the store. */
const rawClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 })
    client.on("error", () => {})
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
)

/** A store under a fresh namespace, and what it keeps in Redis for a key. */
const setup = Effect.gen(function*() {
  const ns = uniqueNamespace("handoff")
  const kv = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
  const raw = yield* rawClient
  const inRedis = (key: string) =>
    Effect.promise(async () => {
      const k = namespaced(ns, key)
      const [value, pttl, fence, queue, places] = await Promise.all([
        raw.get(k),
        raw.pttl(k),
        raw.get(companionKey(k, "fence")),
        raw.lrange(companionKey(k, "queue"), 0, -1),
        raw.zrange(companionKey(k, "places"), 0, -1)
      ])
      return { value, pttl, fence: fence === null ? null : Number(fence), queue, places }
    })
  return { ns, kv, raw, inRedis }
})

const granted = (fence: number) => Option.some({ _tag: "Granted" as const, fence })

describe("hand-off (redis store)", () => {
  it.scopedLive("a release grants the lock to the live head: its token, the next fence, for what is left of its place", () =>
    Effect.gen(function*() {
      const { inRedis, kv } = yield* setup
      expect(yield* kv.acquire("a", "holder", longTtl, place)).toEqual({ _tag: "Acquired", fence: 1 })
      const w1 = yield* kv.watchReleases("a", "w1")
      const w2 = yield* kv.watchReleases("a", "w2")
      expect((yield* kv.acquire("a", "w1", ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquire("a", "w2", ttl, place))._tag).toBe("Held")

      expect(yield* kv.release("a", "holder")).toBe(true)
      // Granted at once: no further try is needed to know the fence.
      expect(yield* Effect.timeoutOption(w1.next, "2 seconds")).toEqual(granted(2))
      const after = yield* inRedis("a")
      expect(after.value).toBe("w1")
      expect(after.fence).toBe(2)
      // The grant lasts what was left of w1's place, not the holder's ttl nor w1's.
      expect(after.pttl).toBeGreaterThan(0)
      expect(after.pttl).toBeLessThanOrEqual(placeMillis)
      // w1 left the queue; w2 now heads it and was not told anything.
      expect(after.queue).toEqual(["w2"])
      expect(after.places).toEqual(["w2"])
      expect(yield* Effect.timeoutOption(w2.next, "200 millis")).toEqual(Option.none())
      // Nobody else can take it meanwhile.
      expect((yield* kv.acquire("a", "holder", ttl, place))._tag).toBe("Held")
      expect((yield* kv.acquire("a", "newcomer", ttl))._tag).toBe("Held")
    }))

  it.scopedLive("a missed grant message: a try with the granted token is Acquired with that fence, at its own ttl", () =>
    Effect.gen(function*() {
      const { inRedis, kv } = yield* setup
      yield* kv.acquire("m", "holder", longTtl, place)
      yield* kv.acquire("m", "w1", ttl, place)
      yield* kv.acquire("m", "w2", ttl, place)
      // Nobody of this store listens: the grant's message goes nowhere.
      expect(yield* kv.release("m", "holder")).toBe(true)
      const before = yield* inRedis("m")
      expect(before.value).toBe("w1")
      expect(before.pttl).toBeLessThanOrEqual(placeMillis)

      // w2 heads the queue now, so this takes the path where the lock is not even tried.
      expect(yield* kv.acquire("m", "w1", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
      const after = yield* inRedis("m")
      expect(after.value).toBe("w1")
      expect(after.fence).toBe(2)
      expect(after.pttl).toBeGreaterThan(placeMillis)
      expect(after.pttl).toBeLessThanOrEqual(Duration.toMillis(ttl))
      expect(after.queue).toEqual(["w2"])
      expect(after.places).toEqual(["w2"])
      // Again (a reply lost in flight): still the same fence, never a second increment.
      expect(yield* kv.acquire("m", "w1", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
      expect((yield* inRedis("m")).fence).toBe(2)
      // Grants go to queued waiters only: a one-try call keeps its plain meaning (as on the memory store).
      expect((yield* kv.acquire("m", "w1", ttl))._tag).toBe("Held")
      expect((yield* kv.acquire("m", "w2", ttl, place))._tag).toBe("Held")
    }))

  it.scopedLive("a granted waiter still in the queue (re-queued) leaves it when it confirms the grant", () =>
    Effect.gen(function*() {
      const { inRedis, kv, ns, raw } = yield* setup
      yield* kv.acquire("r", "holder", longTtl, place)
      yield* kv.acquire("r", "w1", ttl, place)
      yield* kv.release("r", "holder")
      // Simulate a stray queue entry for the granted token (the scripts never leave one, but a try must cope).
      const k = namespaced(ns, "r")
      yield* Effect.promise(async () => {
        await raw.zadd(companionKey(k, "places"), Date.now() + 60_000, "w1")
        await raw.rpush(companionKey(k, "queue"), "w1")
      })
      expect(yield* kv.acquire("r", "w1", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
      const after = yield* inRedis("r")
      expect(after.queue).toEqual([])
      expect(after.places).toEqual([])
    }))

  it.scopedLive("a crashed waiter that is granted the lock blocks the next one only for what is left of its place", () =>
    Effect.gen(function*() {
      const { inRedis, kv } = yield* setup
      yield* kv.acquire("c", "holder", longTtl, place)
      yield* kv.acquire("c", "dead", longTtl, place)
      yield* kv.acquire("c", "alive", longTtl, place)
      // "dead" refreshes its place once more, then is never heard of again.
      yield* Effect.sleep("300 millis")
      yield* kv.acquire("c", "dead", longTtl, place)
      const aliveWatcher = yield* kv.watchReleases("c", "alive")

      const start = Date.now()
      expect(yield* kv.release("c", "holder")).toBe(true)
      expect((yield* inRedis("c")).value).toBe("dead")
      // "alive" keeps its place by trying; "remaining" never exceeds a place, so a poller wakes in time.
      const alive = yield* Effect.fork(Effect.gen(function*() {
        for (let i = 0; i < 60; i++) {
          const result = yield* kv.acquire("c", "alive", longTtl, place)
          if (result._tag === "Acquired") return { waited: Date.now() - start, fence: result.fence }
          expect(Duration.toMillis(Option.getOrThrow(result.remaining))).toBeLessThanOrEqual(placeMillis)
          yield* Effect.sleep("100 millis")
        }
        return { waited: -1, fence: -1 }
      }))
      const { fence, waited } = yield* Fiber.join(alive)
      // Not before dead's grant ran out (~2 s after its last try), well before the holder's 30 s ttl.
      expect(waited).toBeGreaterThan(1_000)
      expect(waited).toBeLessThan(placeMillis + 800)
      // dead got fence 2 (unused), alive the next one.
      expect(fence).toBe(3)
      // The expiry of a grant announces nothing.
      expect(yield* Effect.timeoutOption(aliveWatcher.next, "100 millis")).toEqual(Option.none())
    }))

  it.scopedLive("keys containing \"|\" (and digits between bars) are granted to the right watcher only", () =>
    Effect.gen(function*() {
      const { kv, ns, raw } = yield* setup
      const key = "x|5|y|"
      yield* kv.acquire(key, "holder", longTtl, place)
      expect((yield* kv.acquire(key, "w", ttl, place))._tag).toBe("Held")
      const right = yield* kv.watchReleases(key, "w")
      // Same token on the keys a careless parser would read from the message.
      const decoys = yield* Effect.forEach(["y|", "5|y|", "x", "|5|y|", "y"], (k) => kv.watchReleases(k, "w"))
      const messages: Array<string> = []
      // Each store listens on a channel of its own under the namespace's release channel.
      raw.on("pmessage", (_pattern: string, channel: string, message: string) => {
        if (channel.startsWith(`${releaseChannel(ns)}:`)) messages.push(message)
      })
      yield* Effect.promise(() => raw.psubscribe(`${releaseChannel(ns)}:*`))

      expect(yield* kv.release(key, "holder")).toBe(true)
      expect(yield* Effect.timeoutOption(right.next, "2 seconds")).toEqual(granted(2))
      for (const decoy of decoys) expect(yield* Effect.timeoutOption(decoy.next, "50 millis")).toEqual(Option.none())
      expect(messages).toEqual([`w|2|${key}`])
      expect(yield* kv.acquire(key, "w", ttl, place)).toEqual({ _tag: "Acquired", fence: 2 })
    }))

  it.scopedLive("a granted waiter that gives up releases by token, and the grant passes on", () =>
    Effect.gen(function*() {
      const { inRedis, kv } = yield* setup
      yield* kv.acquire("g", "holder", longTtl, place)
      yield* kv.acquire("g", "w1", ttl, place)
      yield* kv.acquire("g", "w2", ttl, place)
      const w2 = yield* kv.watchReleases("g", "w2")
      yield* kv.release("g", "holder")
      expect((yield* inRedis("g")).value).toBe("w1")
      // w1 gives up (say, its wait ran out just as the grant came): its release deletes the granted lock.
      expect(yield* kv.release("g", "w1")).toBe(true)
      expect(yield* Effect.timeoutOption(w2.next, "2 seconds")).toEqual(granted(3))
      const after = yield* inRedis("g")
      expect(after.value).toBe("w2")
      expect(after.fence).toBe(3)
      expect(after.queue).toEqual([])
      // w1 is gone for good: its release again is a no-op, its try a newcomer's.
      expect(yield* kv.release("g", "w1")).toBe(false)
      expect((yield* kv.acquire("g", "w1", ttl))._tag).toBe("Held")
      expect(yield* kv.acquire("g", "w2", ttl, place)).toEqual({ _tag: "Acquired", fence: 3 })
    }))

  it.scopedLive("the head leaving while the lock is free (expired) grants the lock to the next waiter", () =>
    Effect.gen(function*() {
      const { inRedis, kv } = yield* setup
      // The holder crashes: its lock expires, w1 heads the queue of a free lock.
      yield* kv.acquire("e", "holder", Duration.millis(150), place)
      yield* kv.acquire("e", "w1", ttl, place)
      yield* kv.acquire("e", "w2", ttl, place)
      yield* Effect.sleep("250 millis")
      expect((yield* inRedis("e")).value).toBeNull()
      const w2 = yield* kv.watchReleases("e", "w2")
      // w1 gives up before it tried again.
      expect(yield* kv.release("e", "w1")).toBe(false)
      expect(yield* Effect.timeoutOption(w2.next, "2 seconds")).toEqual(granted(2))
      expect((yield* inRedis("e")).value).toBe("w2")
    }))

  it.scopedLive("malformed messages on the channel are ignored; a plain wake still wakes", () =>
    Effect.gen(function*() {
      const { kv, ns, raw } = yield* setup
      const w = yield* kv.watchReleases("k", "w")
      // The store's own channel (the only one under the namespace's release channel here).
      const [channel] = (yield* Effect.promise(() => raw.pubsub("CHANNELS", `${releaseChannel(ns)}:*`))) as Array<
        string
      >
      expect(channel).toMatch(new RegExp(`^${releaseChannel(ns)}:[0-9a-f]{16}$`))
      const publish = (message: string) => Effect.promise(() => raw.publish(channel!, message))
      for (const message of ["", "k", "w|k", "w|", "w||", "|1|k", "w|x|k", "w|-1|k", "w|0|k", "w|1.5|k", "w|1e3|k"]) {
        yield* publish(message)
      }
      expect(yield* Effect.timeoutOption(w.next, "200 millis")).toEqual(Option.none())
      yield* publish("w||k")
      expect(yield* Effect.timeoutOption(w.next, "2 seconds")).toEqual(Option.some({ _tag: "Released" }))
      yield* publish("||k")
      expect(yield* Effect.timeoutOption(w.next, "2 seconds")).toEqual(Option.some({ _tag: "Released" }))
      yield* publish("w|7|k")
      expect(yield* Effect.timeoutOption(w.next, "2 seconds")).toEqual(granted(7))
    }))
})

describe("hand-off between two stores of one process", () => {
  it.scopedLive("the releasing store tells the waiter's store at once, without its pub/sub message", () =>
    Effect.gen(function*() {
      const ns = uniqueNamespace("inproc")
      const holder = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const waiter = yield* LockKv.makeRedis({ url: redisUrl(), namespace: ns })
      const raw = yield* rawClient
      expect((yield* holder.acquire("k", "holder", longTtl, place))._tag).toBe("Acquired")
      // The waiter queues (its first try finds the key held) and listens.
      const mark = waiter.notificationMark()
      expect((yield* waiter.acquire("k", "w", longTtl, place))._tag).toBe("Held")
      const watch = yield* waiter.watchReleases("k", "w", mark)
      // Both stores' subscribers are cut off: the grant's pub/sub message is lost.
      expect(Number(yield* Effect.promise(() => raw.client("KILL", "TYPE", "pubsub")))).toBeGreaterThanOrEqual(2)
      expect(yield* holder.release("k", "holder")).toBe(true)
      // Told in-process from the release's reply; without that it would wait for
      // its next try (a queued waiter tries again within a third of its place).
      expect(yield* Effect.timeoutOption(watch.next, "100 millis")).toEqual(granted(2))
      watch.close()
      expect(yield* Effect.promise(() => raw.get(namespaced(ns, "k")))).toBe("w")
    }))
})

describe("release messages", () => {
  it("parses grants and plain wakes; the key may hold anything", () => {
    expect(parseReleaseMessage("t|3|k")).toEqual({ key: "k", target: "t", wake: { _tag: "Granted", fence: 3 } })
    expect(parseReleaseMessage("t|12|a|7|b|")).toEqual({
      key: "a|7|b|",
      target: "t",
      wake: { _tag: "Granted", fence: 12 }
    })
    expect(parseReleaseMessage("t||a|b")).toEqual({ key: "a|b", target: "t", wake: { _tag: "Released" } })
    expect(parseReleaseMessage("||k")).toEqual({ key: "k", target: undefined, wake: { _tag: "Released" } })
    for (const bad of ["", "t", "t|k", "t|3|", "t||", "|3|k", "t|03|k", "t|+3|k", "t| 3|k", "t|9007199254740993|k"]) {
      expect(parseReleaseMessage(bad), bad).toBeUndefined()
    }
  })
})

describe("release hub", () => {
  it.live("a Granted is latched: never lost to a later Released", () =>
    Effect.gen(function*() {
      const hub = makeReleaseHub()
      const w = yield* hub.watch("k", "t")
      // Released, then Granted, then Released (to every watcher) before `next`: the grant wins.
      hub.signal("k", "t")
      hub.signal("k", "t", { _tag: "Granted", fence: 4 })
      hub.signal("k")
      expect(yield* w.next).toEqual({ _tag: "Granted", fence: 4 })
      // Consumed: nothing pending.
      expect(yield* Effect.timeoutOption(w.next, "20 millis")).toEqual(Option.none())
    }))

  it.live("a mark read before a try keeps what arrived before the watcher: its grant, or any release", () =>
    Effect.gen(function*() {
      const hub = makeReleaseHub()
      // The grant overtook the try's reply: the watcher registered after it gets it.
      const beforeGrant = hub.mark()
      hub.signal("k", "t", { _tag: "Granted", fence: 5 })
      // A grant to the same token for another key is not this watcher's.
      hub.signal("other", "u", { _tag: "Granted", fence: 6 })
      const granted = yield* hub.watch("k", "t", beforeGrant)
      expect(yield* granted.next).toEqual({ _tag: "Granted", fence: 5 })
      const foreign = yield* hub.watch("k", "u")
      expect(yield* Effect.timeoutOption(foreign.next, "20 millis")).toEqual(Option.none())
      // A release since the mark (of any key: the hub cannot tell) is pending.
      const beforeRelease = hub.mark()
      hub.signal("elsewhere")
      const released = yield* hub.watch("k", "r", beforeRelease)
      expect(yield* released.next).toEqual({ _tag: "Released" })
      // Nothing since the mark: nothing pending.
      const quiet = yield* hub.watch("k", "q", hub.mark())
      expect(yield* Effect.timeoutOption(quiet.next, "20 millis")).toEqual(Option.none())
    }))

  it.live("a wake that arrives after a wait was interrupted is kept for the next call", () =>
    Effect.gen(function*() {
      const hub = makeReleaseHub()
      const w = yield* hub.watch("k", "t")
      expect(yield* Effect.timeoutOption(w.next, "20 millis")).toEqual(Option.none())
      hub.signal("k", "t", { _tag: "Granted", fence: 9 })
      expect(yield* Effect.timeoutOption(w.next, "20 millis")).toEqual(granted(9))
      // A later grant (larger fence) replaces an unread one; a smaller one does not.
      hub.signal("k", "t", { _tag: "Granted", fence: 11 })
      hub.signal("k", "t", { _tag: "Granted", fence: 10 })
      expect(yield* w.next).toEqual({ _tag: "Granted", fence: 11 })
      // A waiting `next` gets the first wake directly; the releases after it, unread,
      // collapse into one for the next call.
      const waiting = yield* Effect.fork(w.next)
      yield* Effect.sleep("10 millis")
      hub.signal("k")
      hub.signal("k")
      hub.signal("k")
      expect(yield* Fiber.join(waiting)).toEqual({ _tag: "Released" })
      expect(yield* w.next).toEqual({ _tag: "Released" })
      expect(yield* Effect.timeoutOption(w.next, "20 millis")).toEqual(Option.none())
      // A Granted without a target, or for another token or key, wakes nobody.
      hub.signal("k", undefined, { _tag: "Granted", fence: 12 })
      hub.signal("k", "other", { _tag: "Granted", fence: 12 })
      hub.signal("other", "t", { _tag: "Granted", fence: 12 })
      expect(yield* Effect.timeoutOption(w.next, "20 millis")).toEqual(Option.none())
      w.close()
      hub.signal("k", "t", { _tag: "Granted", fence: 13 })
      expect(hub.watchedKeys()).toBe(0)
    }))
})
