/**
 * The Lua scripts of the Redis backend, how they are sent (EVALSHA, as EVAL
 * the first time on each connection and after a NOSCRIPT: `makeScripts`), and
 * the decoders of their replies. Every script touches only keys passed in
 * `KEYS`, which hash to one cluster slot, and reads time only from the server
 * (its TTLs and `TIME`), never the client's clock.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command, type Redis } from "ioredis"
import { createHash } from "node:crypto"
import type * as LockKv from "../../LockKv.js"
import type { LockKvError } from "../errors.js"
import { companionKey } from "../keys.js"
import { unexpected } from "./errors.js"

/**
 * The KEYS of both lock scripts, all in the lock key's cluster slot: the lock,
 * its fence counter, its queue of waiter tokens, their places (zset) and their
 * stores' channels (hash).
 *
 * @internal
 */
export type LockKeys = readonly [lock: string, fence: string, queue: string, places: string, channels: string]

/** @internal */
export const lockKeys = (lock: string): LockKeys => [
  lock,
  companionKey(lock, "fence"),
  companionKey(lock, "queue"),
  companionKey(lock, "places"),
  companionKey(lock, "channels")
]

/** @internal */
export const compareAndDelete = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`

/** @internal */
export const compareAndExpire = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`

/**
 * Shared by the two lock scripts: the server's time in milliseconds (the only
 * clock the scripts read), and dropping waiters whose place in the queue has
 * expired (crashed or gone) from its head.
 */
const queueHelpers = `
local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- head: the queue's first token, as the caller just read it.
local function live_head(queue, places, channels, now, head)
  while head do
    local until_ms = redis.call("ZSCORE", places, head)
    if until_ms and tonumber(until_ms) > now then return head, tonumber(until_ms) end
    redis.call("LPOP", queue)
    redis.call("ZREM", places, head)
    redis.call("HDEL", channels, head)
    head = redis.call("LINDEX", queue, 0)
  end
  return false
end
`

/**
 * KEYS: lock, fence counter, queue (list of waiter tokens), places (zset: token
 * → until when its place is kept), channels (hash: token → the pub/sub channel
 * of the waiter's store). ARGV: token, ttl ms, place ms (0: one try, do not
 * queue), the caller's channel.
 * Takes the lock when it is absent and no other waiter heads the queue. Else,
 * when queuing: if the lock already holds `token` (a release granted it to this
 * waiter, whose message was lost or not read yet), it is acquired too: its TTL
 * is reset to `ttl` and the current fence returned; otherwise the caller joins
 * the queue (or refreshes its place). Then it returns how long until the lock
 * may be free: its PTTL, or the head's place when only reserved.
 * Grants go only to queued waiters, so a one-try call (place 0) keeps the plain
 * meaning (held is held, whoever holds it), like the memory store's.
 * Without waiters (the common case) it is LINDEX + SET NX + INCR; the GET of
 * the own-token check runs only when a queued caller could not set the lock.
 *
 * @internal
 */
export const acquire = queueHelpers + `
local head = redis.call("LINDEX", KEYS[3], 0)
local now, head_until
if head then
  now = now_ms()
  head, head_until = live_head(KEYS[3], KEYS[4], KEYS[5], now, head)
end
if (not head or head == ARGV[1]) and redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  if head then
    redis.call("LPOP", KEYS[3])
    redis.call("ZREM", KEYS[4], ARGV[1])
    redis.call("HDEL", KEYS[5], ARGV[1])
  end
  return { 1, redis.call("INCR", KEYS[2]) }
end
local place = tonumber(ARGV[3])
if place > 0 then
  -- Granted by a release while this waiter was not looking: it holds the lock.
  if redis.call("GET", KEYS[1]) == ARGV[1] then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    if redis.call("ZREM", KEYS[4], ARGV[1]) == 1 then
      redis.call("LREM", KEYS[3], 1, ARGV[1])
      redis.call("HDEL", KEYS[5], ARGV[1])
    end
    return { 1, tonumber(redis.call("GET", KEYS[2]) or "0") }
  end
  now = now or now_ms()
  if redis.call("ZADD", KEYS[4], now + place, ARGV[1]) == 1 then
    redis.call("RPUSH", KEYS[3], ARGV[1])
    redis.call("HSET", KEYS[5], ARGV[1], ARGV[4])
  end
  -- The queue outlives its last waiter by at most one place.
  redis.call("PEXPIRE", KEYS[3], place * 2)
  redis.call("PEXPIRE", KEYS[4], place * 2)
  redis.call("PEXPIRE", KEYS[5], place * 2)
end
local pttl = redis.call("PTTL", KEYS[1])
if pttl == -2 then pttl = head_until - now end
return { 0, pttl }
`

/**
 * KEYS: lock, fence counter, queue, places, channels. ARGV: token, caller key.
 * Gives up the key for `token`: deletes the lock when it holds `token`,
 * otherwise removes `token` from the queue (when it was the head and the lock
 * is free, that frees the reservation). Then, when the lock is free and a live
 * waiter heads the queue, grants it the lock directly: the lock holds the
 * waiter's token for what is left of its place (so a waiter that crashed
 * blocks the key no longer than its place would have), the fence is
 * incremented, the waiter leaves the queue and is told, on its own store's
 * channel (so one process reads it, not every subscriber of the namespace),
 * with the message `<token>|<fence>|<caller key>` (the key last: it may
 * contain "|", tokens cannot). Nobody else waits in Redis, so with an empty
 * queue nothing is published. Returns 1 when the lock was deleted (0 when it
 * did not hold `token`); when it handed the lock to a waiter, `{ 2 or 3, channel,
 * message }` (2 plus that, and the message it published on that channel).
 *
 * @internal
 */
export const release = queueHelpers + `
local released = 0
if redis.call("GET", KEYS[1]) == ARGV[1] then
  released = 1
else
  if redis.call("ZREM", KEYS[4], ARGV[1]) == 0 then return 0 end
  local was_head = redis.call("LINDEX", KEYS[3], 0) == ARGV[1]
  redis.call("LREM", KEYS[3], 1, ARGV[1])
  redis.call("HDEL", KEYS[5], ARGV[1])
  if not was_head or redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
end
local head = redis.call("LINDEX", KEYS[3], 0)
if head then
  local now = now_ms()
  local head_until
  head, head_until = live_head(KEYS[3], KEYS[4], KEYS[5], now, head)
  if head then
    -- Replaces our token, if it is ours: deleted and handed on in one write.
    redis.call("SET", KEYS[1], head, "PX", math.max(1, math.floor(head_until - now)))
    local fence = redis.call("INCR", KEYS[2])
    local channel = redis.call("HGET", KEYS[5], head)
    redis.call("LPOP", KEYS[3])
    redis.call("ZREM", KEYS[4], head)
    redis.call("HDEL", KEYS[5], head)
    -- Without a channel (never without a bug) the waiter still finds the lock at its next try.
    if not channel then return { released + 2, "", "" } end
    local message = head .. "|" .. fence .. "|" .. ARGV[2]
    -- A channel after a NUL is a sharded one, in this key's slot (a cluster's, shardedChannel.ts).
    if string.byte(channel, 1) == 0 then
      redis.call("SPUBLISH", string.sub(channel, 2), message)
    else
      redis.call("PUBLISH", channel, message)
    end
    -- Also to the releaser: when the waiter's store is in its process, it tells it at once.
    return { released + 2, channel, message }
  end
end
if released == 1 then redis.call("DEL", KEYS[1]) end
return released
`

/** A script as sent: its source, its SHA1 (for EVALSHA) and its number of KEYS. @internal */
export interface Script {
  readonly lua: string
  readonly sha: string
  /** The number of KEYS, as the argument string EVAL/EVALSHA take. */
  readonly numberOfKeys: string
}

const script = (lua: string, numberOfKeys: number): Script => ({
  lua,
  sha: createHash("sha1").update(lua).digest("hex"),
  numberOfKeys: String(numberOfKeys)
})

/** KEYS: key. ARGV: expected. 1 when `key` held `expected` and was deleted, else 0. @internal */
export const lockCompareAndDelete: Script = script(compareAndDelete, 1)

/** KEYS: key. ARGV: expected, ttl ms. 1 when `key` held `expected` and its TTL was reset, else 0. @internal */
export const lockCompareAndExpire: Script = script(compareAndExpire, 1)

/**
 * KEYS: `LockKeys`. ARGV: token, ttl ms, place ms, channel. `[1, fence]` when `key` was free and
 * now holds `token`, or, for a queued caller (place > 0), already held `token` (granted by a
 * release: its TTL is then reset to the ttl, `fence` is the current one); `[0, pttl]` when held
 * (pttl -1: no TTL).
 *
 * @internal
 */
export const lockAcquire: Script = script(acquire, 5)

/**
 * KEYS: `LockKeys`. ARGV: token, caller key. 1 when `key` held `token` and was deleted, else 0
 * (then `token` left the queue); the lock then goes to the live waiter at the head of the queue,
 * who is told, and the reply is `[2 + (1 or 0), channel, message]` (see `release`).
 *
 * @internal
 */
export const lockRelease: Script = script(release, 5)

/** ioredis turns the reply's bulk strings into strings (as its own commands do). */
const replyAsStrings = { replyEncoding: "utf8" } as const

/**
 * EVAL or EVALSHA of one of the store's scripts, its arguments all strings
 * already. They are set after construction: ioredis' constructor copies them
 * with `Array.prototype.flat`, which is slow in V8 (about 4 µs for the 11
 * arguments of the acquire script, more than the rest of the store's
 * JavaScript for that command). This is the one liberty taken with ioredis:
 * `args` is a public field, and the constructor does nothing else with them
 * that these commands need (no key prefix is set).
 *
 * Measured on 2026-12-03 (2 cores, load average about 2), working tree ÷
 * baseline with `npm run bench -- --baseline <ref> --only a --contenders
 * effect-lock:withLock --rounds 60` (the uncontended `Lock.withLock` cycle
 * against a real redis-server, both builds in one process, rounds
 * interleaved), two runs each, ops/s ratio then client-CPU-per-op ratio over
 * the whole run:
 *
 * | baseline                                            | ops/s        | CPU/op       |
 * | --------------------------------------------------- | ------------ | ------------ |
 * | the scripts through `defineCommand` (branch         | 1.074, 1.109 | 0.883, 0.878 |
 * | i16-redis-ab-definecommand, 775e8ce)                |              |              |
 * | the code before (main 71e1729: RESP written here    | 0.979, 0.964 | 1.031, 1.054 |
 * | from wire strings cached per key)                   |              |              |
 * | HEAD (A/A: the noise)                               | 1.020, 0.959 | 0.973, 1.056 |
 *
 * So setting the arguments saves about 10 % of a cycle against
 * `defineCommand`: kept. The hand-written RESP and its per-key cache were
 * worth about 3 % (within the A/A noise, under the 5 % asked of any reliance
 * on ioredis' internals): gone. A cache of the KEYS alone measured 1.083 and
 * 1.018 (ops/s), 0.935 and 0.996 (CPU/op): not kept either.
 */
class ScriptCommand extends Command {
  constructor(name: "eval" | "evalsha", args: Array<string>) {
    super(name, [], replyAsStrings)
    this.args = args
  }
}

/**
 * The store's scripts on one client: each sends its script with the given
 * KEYS and ARGV and resolves with the raw reply. A script goes as EVALSHA, or
 * as EVAL (which loads it) the first time on each connection and when
 * `reload` (after a NOSCRIPT: a script flush, a failover to a server that
 * never saw it), as ioredis' `defineCommand` does. With the offline queue off,
 * a script is sent at once or fails at once, never queued.
 *
 * @internal
 */
export interface Scripts {
  readonly compareAndDelete: (reload: boolean, key: string, expected: string) => Promise<unknown>
  readonly compareAndExpire: (reload: boolean, key: string, expected: string, ttlMillis: string) => Promise<unknown>
  readonly acquire: (
    reload: boolean,
    keys: LockKeys,
    token: string,
    ttlMillis: string,
    placeMillis: string,
    channel: string
  ) => Promise<unknown>
  readonly release: (reload: boolean, keys: LockKeys, token: string, callerKey: string) => Promise<unknown>
}

/**
 * `makeScripts` sends through a server's client, or a cluster's: that one has
 * no `stream` (a socket per node), so every script goes as EVALSHA, and the
 * node that answers NOSCRIPT gets it as EVAL (`reload`).
 *
 * @internal
 */
export interface ScriptClient {
  readonly sendCommand: Redis["sendCommand"]
  readonly stream?: unknown
}

/** @internal */
export const makeScripts = (client: ScriptClient): Scripts => {
  const sender = (script: Script) => {
    // The socket the script was last sent on as EVAL: after that, EVALSHA finds it there.
    let loadedOn: unknown = undefined
    // `args[0]` is the slot of the SHA or the source; each call passes a new array.
    return (reload: boolean, args: Array<string>): Promise<unknown> => {
      const stream = client.stream
      if (reload || loadedOn !== stream) {
        loadedOn = stream
        args[0] = script.lua
        return client.sendCommand(new ScriptCommand("eval", args)) as Promise<unknown>
      }
      args[0] = script.sha
      return client.sendCommand(new ScriptCommand("evalsha", args)) as Promise<unknown>
    }
  }
  const cad = sender(lockCompareAndDelete)
  const cae = sender(lockCompareAndExpire)
  const acq = sender(lockAcquire)
  const rel = sender(lockRelease)
  return {
    compareAndDelete: (reload, key, expected) => cad(reload, ["", lockCompareAndDelete.numberOfKeys, key, expected]),
    compareAndExpire: (reload, key, expected, ttlMillis) =>
      cae(reload, ["", lockCompareAndExpire.numberOfKeys, key, expected, ttlMillis]),
    acquire: (reload, keys, token, ttlMillis, placeMillis, channel) =>
      acq(reload, [
        "",
        lockAcquire.numberOfKeys,
        keys[0],
        keys[1],
        keys[2],
        keys[3],
        keys[4],
        token,
        ttlMillis,
        placeMillis,
        channel
      ]),
    release: (reload, keys, token, callerKey) =>
      rel(reload, ["", lockRelease.numberOfKeys, keys[0], keys[1], keys[2], keys[3], keys[4], token, callerKey])
  }
}

// -----------------------------------------------------------------------------
// Replies
// -----------------------------------------------------------------------------

/** A PTTL: the time left, none when the key has no TTL (-1) or does not exist (-2). @internal */
export const toRemaining = (millis: number): Option.Option<Duration.Duration> =>
  millis >= 0 ? Option.some(Duration.millis(millis)) : Option.none()

/** The acquire script's `[1, fence]` or `[0, pttl]`. @internal */
export const toAcquireResult = (reply: unknown): Effect.Effect<LockKv.AcquireResult, LockKvError> =>
  Array.isArray(reply) && reply.length === 2 && typeof reply[1] === "number"
    ? Effect.succeed(
      reply[0] === 1 ? { _tag: "Acquired", fence: reply[1] } : { _tag: "Held", remaining: toRemaining(reply[1]) }
    )
    : Effect.fail(unexpected("acquire", reply))

// Effects are immutable values: the hot path's two outcomes are built once.
const succeedTrue = Effect.succeed(true)
const succeedFalse = Effect.succeed(false)

/** Scripts answering 1 (done) or 0. @internal */
export const isOne = (reply: unknown): Effect.Effect<boolean> => reply === 1 ? succeedTrue : succeedFalse

/**
 * The release script's reply: 1 when it deleted the lock (0 when it did not
 * hold our token), or, when it handed the lock on, `[2 or 3, channel, message]`:
 * `handedOn` is told the channel and message (before the releaser resumes).
 *
 * @internal
 */
export const releaseReply =
  (handedOn: (channel: string, message: string) => void) => (reply: unknown): Effect.Effect<boolean> => {
    if (!Array.isArray(reply)) return reply === 1 ? succeedTrue : succeedFalse
    const [code, channel, message] = reply as ReadonlyArray<unknown>
    if (typeof channel === "string" && typeof message === "string") handedOn(channel, message)
    return code === 3 ? succeedTrue : succeedFalse
  }
