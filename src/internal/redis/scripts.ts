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

/**
 * The KEYS of the semaphore scripts for the semaphore key `key`, all in its
 * cluster slot: holders (zset: token → when its permits come back, server
 * millis), permits (hash: token → "<permits>:<fence>"), the limit the
 * holders use, the fence counter, and the FIFO of waiters: queue (list of
 * tokens), places (zset: token → until when its place is kept), waiters
 * (hash: token → "<permits> <channel>"). Named apart from a lock's companion
 * keys, so a lock and a semaphore of one name never meet.
 *
 * @internal
 */
export type PermitKeys = readonly [
  holders: string,
  permits: string,
  limit: string,
  fence: string,
  queue: string,
  places: string,
  waiters: string
]

/** @internal */
export const permitKeys = (key: string): PermitKeys => [
  companionKey(key, "sem.holders"),
  companionKey(key, "sem.permits"),
  companionKey(key, "sem.limit"),
  companionKey(key, "sem.fence"),
  companionKey(key, "sem.queue"),
  companionKey(key, "sem.places"),
  companionKey(key, "sem.waiters")
]

/**
 * Shared by the semaphore scripts: the server's time, dropping holders whose
 * TTL has passed, the permits in use, and `grant`, which hands permits to the
 * live waiters at the head of the queue while they fit (in order: the head
 * blocks the rest), each until its place would have ended, with a new fence,
 * told on its store's channel with `<token>|<fence>|<caller key>` (as a lock's
 * release tells its waiter). `keep` sets the TTL of the holders' keys to the
 * last holder's expiry (and the limit's to the queue's too), so nothing
 * outlives its last holder or waiter but the fence counter.
 */
const permitHelpers = `
local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(now)
  local gone = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now)
  for _, token in ipairs(gone) do redis.call("HDEL", KEYS[2], token) end
  if #gone > 0 then redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now) end
end
local function in_use()
  local used = 0
  for _, v in ipairs(redis.call("HVALS", KEYS[2])) do used = used + tonumber(string.match(v, "^%d+")) end
  return used
end
local function live_head(now)
  local head = redis.call("LINDEX", KEYS[5], 0)
  while head do
    local until_ms = redis.call("ZSCORE", KEYS[6], head)
    if until_ms and tonumber(until_ms) > now then return head, tonumber(until_ms) end
    redis.call("LPOP", KEYS[5])
    redis.call("ZREM", KEYS[6], head)
    redis.call("HDEL", KEYS[7], head)
    head = redis.call("LINDEX", KEYS[5], 0)
  end
  return false
end
-- told: channel, message pairs (for the caller's in-process shortcut); returns the fence of self if granted.
-- At most 1000 grants a call (the reply must stay unpackable): the next head's own try grants on.
local function grant(now, limit, self, caller_key, told)
  local used = in_use()
  local mine = false
  for _ = 1, 1000 do
    local head, head_until = live_head(now)
    if not head then break end
    local want = redis.call("HGET", KEYS[7], head) or "0 "
    local n = tonumber(string.match(want, "^%d+"))
    if n == 0 or used + n > limit then break end
    local fence = redis.call("INCR", KEYS[4])
    redis.call("ZADD", KEYS[1], head_until, head)
    redis.call("HSET", KEYS[2], head, n .. ":" .. fence)
    used = used + n
    redis.call("LPOP", KEYS[5])
    redis.call("ZREM", KEYS[6], head)
    redis.call("HDEL", KEYS[7], head)
    if head == self then
      mine = fence
    else
      local channel = string.match(want, "^%d+ (.*)$")
      local message = head .. "|" .. fence .. "|" .. caller_key
      -- As the lock's release: after a NUL, a sharded channel in this key's slot.
      if string.byte(channel, 1) == 0 then
        redis.call("SPUBLISH", string.sub(channel, 2), message)
      else
        redis.call("PUBLISH", channel, message)
      end
      told[#told + 1] = channel
      told[#told + 1] = message
    end
  end
  return mine
end
local function keep(now)
  local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
  local horizon = 0
  if last[2] then horizon = tonumber(last[2]) - now end
  if horizon > 0 then
    redis.call("PEXPIRE", KEYS[1], horizon)
    redis.call("PEXPIRE", KEYS[2], horizon)
  end
  local queued = redis.call("PTTL", KEYS[5])
  if queued > horizon then horizon = queued end
  if horizon > 0 then redis.call("PEXPIRE", KEYS[3], horizon) else redis.call("DEL", KEYS[3]) end
end
`

/**
 * KEYS: `PermitKeys`. ARGV: token, permits, limit, ttl ms, place ms (0: one
 * try), the caller's channel, the caller's key. See `LockKv.acquirePermits`.
 * Replies `{ 1, fence, told... }` when `token` holds its permits,
 * `{ 0, ms until a holder's TTL ends (-1: none), told... }` when refused,
 * `{ -1, limit in use }` on a limit mismatch; `told` = the channel, message
 * pairs of the grants it made to other waiters.
 *
 * @internal
 */
export const acquirePermits = permitHelpers + `
local now = now_ms()
prune(now)
local token, n, limit, ttl, place = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local mine = redis.call("HGET", KEYS[2], token)
if mine then
  -- Granted while the waiter was not looking, or a retry of a try whose reply was lost.
  redis.call("ZADD", KEYS[1], now + ttl, token)
  keep(now)
  return { 1, tonumber(string.match(mine, ":(%d+)$")) }
end
local head = live_head(now)
-- Every holder and waiter uses one limit: the first one's, until none is left.
local stored = redis.call("GET", KEYS[3])
if not stored or (not head and redis.call("EXISTS", KEYS[1]) == 0) then
  redis.call("SET", KEYS[3], limit)
elseif tonumber(stored) ~= limit then
  return { -1, tonumber(stored) }
end
local told = {}
if (not head or head == token) and in_use() + n <= limit then
  if head then
    redis.call("LPOP", KEYS[5])
    redis.call("ZREM", KEYS[6], token)
    redis.call("HDEL", KEYS[7], token)
  end
  local fence = redis.call("INCR", KEYS[4])
  redis.call("ZADD", KEYS[1], now + ttl, token)
  redis.call("HSET", KEYS[2], token, n .. ":" .. fence)
  if head then grant(now, limit, false, ARGV[7], told) end
  keep(now)
  return { 1, fence, unpack(told) }
end
if place > 0 then
  if redis.call("ZADD", KEYS[6], now + place, token) == 1 then
    redis.call("RPUSH", KEYS[5], token)
    redis.call("HSET", KEYS[7], token, n .. " " .. ARGV[6])
  end
  -- The queue outlives its last waiter by at most one place.
  redis.call("PEXPIRE", KEYS[5], place * 2)
  redis.call("PEXPIRE", KEYS[6], place * 2)
  redis.call("PEXPIRE", KEYS[7], place * 2)
end
-- Holders may have expired since the last release: the head may fit now.
local granted = grant(now, limit, token, ARGV[7], told)
if granted then
  redis.call("ZADD", KEYS[1], now + ttl, token)
  keep(now)
  return { 1, granted, unpack(told) }
end
keep(now)
local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
local remaining = -1
if first[2] then remaining = tonumber(first[2]) - now end
return { 0, remaining, unpack(told) }
`

/**
 * KEYS: `PermitKeys`. ARGV: token, the caller's key. Gives back the permits
 * of `token` or its place in the queue, then grants to the head of the queue.
 * Replies `{ 1 or 0 (held permits), told... }`.
 *
 * @internal
 */
export const releasePermits = permitHelpers + `
local now = now_ms()
prune(now)
local released = 0
if redis.call("HDEL", KEYS[2], ARGV[1]) == 1 then
  redis.call("ZREM", KEYS[1], ARGV[1])
  released = 1
elseif redis.call("ZREM", KEYS[6], ARGV[1]) == 1 then
  redis.call("LREM", KEYS[5], 1, ARGV[1])
  redis.call("HDEL", KEYS[7], ARGV[1])
end
local told = {}
local limit = redis.call("GET", KEYS[3])
if limit then
  grant(now, tonumber(limit), false, ARGV[2], told)
  keep(now)
end
return { released, unpack(told) }
`

/**
 * KEYS: `PermitKeys`. ARGV: token, ttl ms. 1 when `token` held permits and
 * their TTL was reset, else 0.
 *
 * @internal
 */
export const extendPermits = permitHelpers + `
local now = now_ms()
prune(now)
if redis.call("HEXISTS", KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
keep(now)
return 1
`

/**
 * KEYS: `PermitKeys` (the first two). The permits held now.
 *
 * @internal
 */
export const permitsInUse = permitHelpers + `
local now = now_ms()
local used = 0
for _, token in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. now, "+inf")) do
  local v = redis.call("HGET", KEYS[2], token)
  if v then used = used + tonumber(string.match(v, "^%d+")) end
end
return used
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

/** @internal */
export const semAcquire: Script = script(acquirePermits, 7)
/** @internal */
export const semRelease: Script = script(releasePermits, 7)
/** @internal */
export const semExtend: Script = script(extendPermits, 7)
/** @internal */
export const semInUse: Script = script(permitsInUse, 7)

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
 * | the scripts through `defineCommand`                 | 1.074, 1.109 | 0.883, 0.878 |
 * | (bench/ab/scripts-define-command.patch)             | 1.158 (*)    | 0.891 (*)    |
 * | the code before (main 71e1729: RESP written here    | 0.979, 0.964 | 1.031, 1.054 |
 * | from wire strings cached per key)                   |              |              |
 * | HEAD (A/A: the noise)                               | 1.020, 0.959 | 0.973, 1.056 |
 *
 * (*) Re-run at f4f8293 with `--baseline HEAD --baseline-patch
 * bench/ab/scripts-define-command.patch --rounds 40` (load average about 4).
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
  /** The semaphore scripts: KEYS, then ARGV as the script takes them. */
  readonly permits: (
    reload: boolean,
    which: "acquire" | "release" | "extend" | "inUse",
    keys: PermitKeys,
    argv: ReadonlyArray<string>
  ) => Promise<unknown>
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
  const sem = {
    acquire: sender(semAcquire),
    release: sender(semRelease),
    extend: sender(semExtend),
    inUse: sender(semInUse)
  }
  return {
    permits: (reload, which, keys, argv) => sem[which](reload, ["", "7", ...keys, ...argv]),
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

/**
 * The semaphore acquire script's reply: `[1, fence, told...]`, `[0, ms,
 * told...]` or `[-1, limit]` (a `Mismatch`). `handedOn` is told each
 * grant the script made (see `releaseReply`).
 *
 * @internal
 */
export const toPermitsResult = (handedOn: (channel: string, message: string) => void) =>
(
  reply: unknown
): Effect.Effect<LockKv.AcquireResult | { readonly _tag: "Mismatch"; readonly limit: number }, LockKvError> => {
  if (!Array.isArray(reply) || reply.length < 2 || typeof reply[1] !== "number") {
    return Effect.fail(unexpected("acquirePermits", reply))
  }
  tellGrants(handedOn, reply, 2)
  if (reply[0] === -1) return Effect.succeed({ _tag: "Mismatch", limit: reply[1] })
  return Effect.succeed(
    reply[0] === 1 ? { _tag: "Acquired", fence: reply[1] } : { _tag: "Held", remaining: toRemaining(reply[1]) }
  )
}

/** The semaphore release script's `[0 or 1, told...]`. @internal */
export const permitsReleaseReply =
  (handedOn: (channel: string, message: string) => void) => (reply: unknown): Effect.Effect<boolean, LockKvError> => {
    if (!Array.isArray(reply) || reply.length < 1) return Effect.fail(unexpected("releasePermits", reply))
    tellGrants(handedOn, reply, 1)
    return reply[0] === 1 ? succeedTrue : succeedFalse
  }

const tellGrants = (
  handedOn: (channel: string, message: string) => void,
  reply: ReadonlyArray<unknown>,
  from: number
): void => {
  for (let i = from; i + 1 < reply.length; i += 2) {
    const channel = reply[i]
    const message = reply[i + 1]
    if (typeof channel === "string" && typeof message === "string") handedOn(channel, message)
  }
}
