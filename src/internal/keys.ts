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
 * The last key and the last token accepted: a lock cycle checks both several
 * times (the engine, then the store), and one slot would thrash between them.
 * They start as a value no input can be (not `undefined`, which an untyped
 * caller can pass, and which must then fail).
 */
const noneYet: unique symbol = Symbol("none accepted yet")
let lastValidKey: string | typeof noneYet = noneYet
let lastValidToken: string | typeof noneYet = noneYet

/**
 * Rejects keys that cannot name a lock: empty, too long, not a string, holding a
 * NUL character, or not well-formed Unicode. Synchronous (the error, or
 * `undefined` when valid) for the lock's hot path; `validateKey` wraps it.
 */
export const checkKey = (key: unknown, argument = "key"): InvalidArgument | undefined => {
  if (key === lastValidKey) return undefined
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
    return new InvalidArgument({ argument, message: `${argument} must be well-formed Unicode (it has a lone surrogate)` })
  }
  if (argument === "key") lastValidKey = key
  return undefined
}

export const validateKey = (key: unknown, argument = "key"): Effect.Effect<string, InvalidArgument> => {
  const error = checkKey(key, argument)
  return error === undefined ? Effect.succeed(key as string) : Effect.fail(error)
}

/**
 * Checks a time to live from raw input: `Duration.decode` turns -1 and NaN
 * into zero quietly, so numbers (milliseconds) are checked before decoding.
 * Gives whole milliseconds, at least 1 and at most `Number.MAX_SAFE_INTEGER`.
 */
export const checkTtl = (ttl: unknown, argument = "ttl"): Duration.Duration | InvalidArgument => {
  const invalid = (why: string) =>
    new InvalidArgument({ argument, message: `${argument} must be a positive finite duration (${why})` })
  if (typeof ttl === "number") {
    if (!(Number.isFinite(ttl) && ttl > 0)) return invalid(`got ${String(ttl)}`)
    if (ttl > Number.MAX_SAFE_INTEGER) return invalid(`got more than ${Number.MAX_SAFE_INTEGER} ms`)
    return Duration.millis(Math.ceil(ttl))
  }
  if (typeof ttl === "bigint" && ttl <= 0n) return invalid(`got ${String(ttl)}`)
  let decoded: Duration.Duration
  try {
    decoded = Duration.decode(ttl as Duration.DurationInput)
  } catch {
    return invalid(`cannot read ${JSON.stringify(String(ttl))}`)
  }
  if (!Duration.isFinite(decoded)) return invalid("got infinity")
  const millis = Duration.toMillis(decoded)
  if (!(millis > 0) || Number.isNaN(millis)) return invalid("got zero or less")
  // Redis refuses a PX it cannot add to its clock, and larger numbers lose precision anyway.
  if (millis > Number.MAX_SAFE_INTEGER) return invalid(`got more than ${Number.MAX_SAFE_INTEGER} ms`)
  // Redis PX takes whole milliseconds; round up so a sub-millisecond ttl stays positive.
  return Duration.millis(Math.ceil(millis))
}

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
export const checkToken = (token: unknown): InvalidArgument | undefined => {
  if (token === lastValidToken) return undefined
  const error = checkKey(token, "token") ??
    ((token as string).includes("|")
      ? new InvalidArgument({ argument: "token", message: "token must not contain \"|\"" })
      : undefined)
  if (error === undefined) lastValidToken = token as string
  return error
}

export const validateToken = (token: unknown): Effect.Effect<string, InvalidArgument> => {
  const error = checkToken(token)
  return error === undefined ? Effect.succeed(token as string) : Effect.fail(error)
}
