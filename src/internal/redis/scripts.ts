/**
 * The Lua scripts of the Redis backend. Each is registered once per client with
 * `defineCommand` (sent as EVALSHA, falling back to EVAL when the server does
 * not know the script yet). Every script touches only keys passed in `KEYS`,
 * which hash to one cluster slot, and reads time only through the server's own
 * TTLs (`PX`, `PEXPIRE`, `PTTL`), never the client's clock.
 */
import type { Redis } from "ioredis"

/** @internal */
export interface RedisWithScripts extends Redis {
  /** 1 when `key` held `expected` and was deleted, else 0. */
  lockCompareAndDelete(key: string, expected: string): Promise<number>
  /** 1 when `key` held `expected` and its TTL was reset to `ttlMillis`, else 0. */
  lockCompareAndExpire(key: string, expected: string, ttlMillis: number): Promise<number>
  /** `[1, fence]` when `key` was free and now holds `token`; `[0, pttl]` when held (pttl -1: no TTL). */
  lockAcquire(key: string, fenceKey: string, token: string, ttlMillis: number): Promise<[number, number]>
  /** 1 when `key` held `token` and was deleted (and `callerKey` published on `channel`), else 0. */
  lockRelease(key: string, token: string, channel: string, callerKey: string): Promise<number>
}

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

/** @internal */
export const acquire = `
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  return { 1, redis.call("INCR", KEYS[2]) }
end
return { 0, redis.call("PTTL", KEYS[1]) }
`

/** @internal */
export const release = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  redis.call("PUBLISH", ARGV[2], ARGV[3])
  return 1
end
return 0
`

/**
 * Registers the scripts on `client` under names that cannot clash with ioredis'
 * own commands.
 *
 * @internal
 */
export const define = (client: Redis): RedisWithScripts => {
  client.defineCommand("lockCompareAndDelete", { lua: compareAndDelete, numberOfKeys: 1 })
  client.defineCommand("lockCompareAndExpire", { lua: compareAndExpire, numberOfKeys: 1 })
  client.defineCommand("lockAcquire", { lua: acquire, numberOfKeys: 2 })
  client.defineCommand("lockRelease", { lua: release, numberOfKeys: 1 })
  return client as RedisWithScripts
}
