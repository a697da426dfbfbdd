import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { InvalidArgument } from "./errors.js"

/** Longest key accepted, in UTF-16 code units: far above any sane lock name, far below Redis' 512 MB. */
export const maxKeyLength = 1024

/**
 * Separates a hash-tagged key from the suffix of its companion keys. Keys may
 * not contain it, so no key can name another key's companion (see `companionKey`).
 */
const companionSeparator = "\u0000"

/** With the `u` flag a surrogate pair is one code point: this matches only unpaired halves. */
const loneSurrogate = /[\uD800-\uDFFF]/u

/**
 * Rejects keys that cannot name a lock: empty, too long, not a string, holding a
 * NUL character, or not well-formed Unicode. Synchronous (the error, or
 * `undefined` when valid) for the lock's hot path; `validateKey` wraps it.
 */
export const checkKey = (key: unknown, argument = "key"): InvalidArgument | undefined => {
  if (typeof key !== "string") return new InvalidArgument({ argument, message: `${argument} must be a string` })
  if (key.length === 0) return new InvalidArgument({ argument, message: `${argument} must not be empty` })
  if (key.length > maxKeyLength) {
    return new InvalidArgument({ argument, message: `${argument} is longer than ${maxKeyLength} characters` })
  }
  if (key.includes(companionSeparator)) {
    return new InvalidArgument({ argument, message: `${argument} must not contain a NUL character` })
  }
  // Redis stores UTF-8: a lone surrogate would become U+FFFD, so distinct keys would share one lock.
  if (loneSurrogate.test(key)) {
    return new InvalidArgument({
      argument,
      message: `${argument} must be well-formed Unicode (it has a lone surrogate)`
    })
  }
  return undefined
}

export const validateKey = (key: unknown, argument = "key"): Effect.Effect<string, InvalidArgument> => {
  const error = checkKey(key, argument)
  return error === undefined ? Effect.succeed(key as string) : Effect.fail(error)
}

/**
 * What a duration argument must be. A TTL (the default) is positive and
 * finite, in whole milliseconds (Redis' PX), at most `Number.MAX_SAFE_INTEGER`;
 * a wait may be zero or `Duration.infinity`. `minimum` is a floor of the caller
 * (the lock's ttl), with the reason it gives.
 */
export interface DurationRule {
  readonly argument: string
  readonly wait?: boolean | undefined
  readonly minimum?: { readonly millis: number; readonly why: string } | undefined
}

/**
 * The one check of a ttl or wait from raw input (`DurationInput`, or whatever
 * an untyped caller passes). `Duration.decode` turns -1, NaN and negative
 * strings or pairs into zero quietly, so those are caught before decoding.
 */
export const checkDuration = (input: unknown, rule: DurationRule): Duration.Duration | InvalidArgument => {
  const { argument, wait = false } = rule
  const invalid = (why: string) =>
    new InvalidArgument({
      argument,
      message: `${argument} must be ${wait ? "a duration of zero or more" : "a positive finite duration"} (${why})`
    })
  let decoded: Duration.Duration
  if (typeof input === "number") {
    // `!(x >= 0)` and `!(x > 0)` also catch NaN.
    if (wait ? !(input >= 0) : !(Number.isFinite(input) && input > 0)) return invalid(`got ${String(input)}`)
    decoded = Duration.millis(input)
  } else {
    if (typeof input === "bigint" && (wait ? input < 0n : input <= 0n)) return invalid(`got ${String(input)}`)
    if (wait && typeof input === "string" && /^\s*-/.test(input)) return invalid(`got ${JSON.stringify(input)}`)
    if (wait && Array.isArray(input)) {
      const [seconds, nanos] = input as ReadonlyArray<unknown>
      if (typeof seconds !== "number" || typeof nanos !== "number" || !(seconds * 1e9 + nanos >= 0)) {
        return invalid(`got [${String(seconds)}, ${String(nanos)}]`)
      }
    }
    try {
      decoded = Duration.decode(input as Duration.DurationInput)
    } catch {
      return invalid(`cannot read ${JSON.stringify(String(input))}`)
    }
  }
  const millis = Duration.toMillis(decoded)
  if (wait) return Number.isNaN(millis) ? invalid("got NaN") : decoded
  if (millis === Infinity) return invalid("got infinity")
  if (!(millis > 0)) return invalid("got zero or less")
  // Redis refuses a PX it cannot add to its clock, and larger numbers lose precision anyway.
  if (millis > Number.MAX_SAFE_INTEGER) return invalid(`got more than ${Number.MAX_SAFE_INTEGER} ms`)
  // Redis PX takes whole milliseconds; round up so a sub-millisecond ttl stays positive.
  const whole = Math.ceil(millis)
  if (rule.minimum !== undefined && whole < rule.minimum.millis) {
    return new InvalidArgument({
      argument,
      message: `${argument} must be at least ${rule.minimum.millis} ms (got ${whole} ms): ${rule.minimum.why}`
    })
  }
  return Duration.millis(whole)
}

/** A store TTL (`checkDuration` with the TTL rule). */
export const checkTtl = (ttl: unknown, argument = "ttl"): Duration.Duration | InvalidArgument =>
  checkDuration(ttl, { argument })

/**
 * `checkTtl` in whole milliseconds, for the store's hot path: a `Duration` or a
 * number that is plainly valid is read without decoding or allocating; anything
 * else goes through `checkTtl` (same result, same errors).
 */
export const checkTtlMillis = (ttl: unknown, argument = "ttl"): number | InvalidArgument => {
  const millis = Duration.isDuration(ttl) ? Duration.toMillis(ttl) : typeof ttl === "number" ? ttl : Number.NaN
  // Excludes NaN, zero or less, infinity and unsafe integers: those take the long way (and fail there).
  if (millis > 0 && millis <= Number.MAX_SAFE_INTEGER) return Math.ceil(millis)
  const checked = checkTtl(ttl, argument)
  return checked instanceof InvalidArgument ? checked : Duration.toMillis(checked)
}

export const validateTtl = (ttl: unknown, argument = "ttl"): Effect.Effect<Duration.Duration, InvalidArgument> => {
  const checked = checkTtl(ttl, argument)
  return checked instanceof InvalidArgument ? Effect.fail(checked) : Effect.succeed(checked)
}

/** The Redis cluster hash tag of a key, per the cluster spec: first `{`, next `}`, non-empty between. */
const hashTag = (fullKey: string): string | undefined => {
  const open = fullKey.indexOf("{")
  if (open === -1) return undefined
  const close = fullKey.indexOf("}", open + 1)
  if (close === -1 || close === open + 1) return undefined
  return fullKey.slice(open + 1, close)
}

/**
 * The name of a key the library keeps beside a lock key (its fencing counter,
 * its queue of waiters), placed in the same Redis Cluster slot: the key's own
 * hash tag when it has one, else the whole key wrapped as the tag.
 *
 * With a hash tag the companion must start like the lock key, i.e. with
 * `<namespace>:`, where every lock key lives too. `<key>:fence` would then be
 * the lock key of the caller's key `<key>:fence` (locks "{a}" and "{a}:fence"
 * would share a Redis key, and a script would fail on the other's value), so
 * the suffix follows a NUL character, which keys may not contain.
 */
export const companionKey = (fullKey: string, suffix: string): string =>
  hashTag(fullKey) !== undefined ? `${fullKey}${companionSeparator}${suffix}` : `{${fullKey}}:${suffix}`

/** The key prefix when none is configured (`LOCK_NAMESPACE`, the `namespace` option). */
export const defaultNamespace = "lock"

/** Keys are stored as `<namespace>:<key>`. */
export const namespaced = (namespace: string, key: string): string => `${namespace}:${key}`

/** The pub/sub channel on which releases in a namespace are announced (message = the caller's key). */
export const releaseChannel = (namespace: string): string => `${namespace}:__released__`

/** `set` options, checked and normalized once for every backend. */
export interface NormalizedSet {
  readonly condition: "NX" | "XX" | undefined
  readonly ttlMillis: number | undefined
}

export const validateSetOptions = (
  options: {
    readonly NX?: boolean | undefined
    readonly XX?: boolean | undefined
    readonly PX?: number | undefined
    readonly ttl?: Duration.DurationInput | undefined
  } | undefined
): Effect.Effect<NormalizedSet, InvalidArgument> => {
  if (options === undefined) return Effect.succeed({ condition: undefined, ttlMillis: undefined })
  if (typeof options !== "object" || options === null) {
    return Effect.fail(new InvalidArgument({ argument: "options", message: "set options must be an object" }))
  }
  if (options.NX === true && options.XX === true) {
    return Effect.fail(new InvalidArgument({ argument: "options", message: "NX and XX cannot be combined" }))
  }
  if (options.PX !== undefined && options.ttl !== undefined) {
    return Effect.fail(new InvalidArgument({ argument: "options", message: "PX and ttl cannot be combined" }))
  }
  const condition = options.NX === true ? "NX" : options.XX === true ? "XX" : undefined
  if (options.PX !== undefined) {
    if (typeof options.PX !== "number" || !Number.isSafeInteger(options.PX) || options.PX <= 0) {
      return Effect.fail(
        new InvalidArgument({ argument: "PX", message: "PX must be a positive whole number of milliseconds" })
      )
    }
    return Effect.succeed({ condition, ttlMillis: options.PX })
  }
  if (options.ttl !== undefined) {
    return Effect.map(validateTtl(options.ttl), (ttl) => ({ condition, ttlMillis: Duration.toMillis(ttl) }))
  }
  return Effect.succeed({ condition, ttlMillis: undefined })
}

/** Owner tokens travel in release messages beside the key, separated by "|", so a token never contains "|". */
export const checkToken = (token: unknown): InvalidArgument | undefined =>
  checkKey(token, "token") ??
    ((token as string).includes("|")
      ? new InvalidArgument({ argument: "token", message: "token must not contain \"|\"" })
      : undefined)

/**
 * The largest semaphore `limit`: a read-write lock's writer takes this many
 * permits (every reader takes one). Far below 2^53, so sums of permits stay exact.
 */
export const maxPermitLimit = 2 ** 30

/** A whole number of permits in `1..max`, or why not. */
const checkCount = (value: unknown, argument: string, max: number, why: string): InvalidArgument | undefined =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 1 && value <= max
    ? undefined
    : new InvalidArgument({
      argument,
      message: `${argument} must be a whole number from 1 to ${max} (${why}), got ${
        typeof value === "number" ? String(value) : typeof value
      }`
    })

/** A semaphore's `limit` and the `permits` a caller asks for, checked synchronously. */
export const checkPermits = (permits: unknown, limit: unknown): InvalidArgument | undefined =>
  checkCount(limit, "limit", maxPermitLimit, "the permits the semaphore has in all") ??
    checkCount(permits, "permits", limit as number, "at most the limit")

/** The `limit` a caller gave differs from the one the current holders of `key` use. */
export const limitMismatch = (key: string, held: number, given: number): InvalidArgument =>
  new InvalidArgument({
    argument: "limit",
    message:
      `semaphore "${key}" is held with limit ${held} by its current holders or waiters, got limit ${given}: every user of a key must give the same limit`
  })
