/**
 * Durations as people type them on a command line or in an environment
 * variable: `500ms`, `30s`, `2m`, `1h`, `1m30s`, Effect's own `30 seconds` /
 * `500 millis`, and `infinity` where the caller allows it.
 *
 * The project's one short-form duration parser (the CLI's flags use it; no CLI
 * code is imported here). A bare number is refused (except `0`) unless the
 * caller reads it as milliseconds: `--ttl 30` could mean seconds (flock,
 * timeout) or milliseconds (Effect's `DurationInput`), and guessing wrong by a
 * factor of a thousand on a lock's TTL is worse than asking for a unit.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

const shortUnits: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

const longUnits: Record<string, number> = {
  nano: 1e-6,
  micro: 1e-3,
  milli: 1,
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000
}

const number = "(\\d+(?:\\.\\d+)?|\\.\\d+)"
const shortUnit = "(ns|us|µs|ms|s|m|h|d|w)"
const compact = new RegExp(`^(?:${number}\\s*${shortUnit}\\s*)+$`)
const compactPart = new RegExp(`${number}\\s*${shortUnit}`, "g")
const long = new RegExp(`^${number}\\s*(nano|micro|milli|second|minute|hour|day|week)s?$`)
const bare = /^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$/

/** The spelling of an endless duration, where one is allowed. */
export const infinityWord = "infinity"

/** The formats, for error messages and help. */
export const formats = "e.g. 500ms, 30s, 2m, 1m30s or \"30 seconds\""

/** What a caller accepts besides a finite duration of zero or more. */
export interface ParseOptions {
  /** Accept `infinity` (`Duration.infinity`); refused by default. */
  readonly infinity?: boolean | undefined
  /** Refuse zero. */
  readonly positive?: boolean | undefined
  /** Read a bare number as milliseconds; by default a bare number other than `0` is refused. */
  readonly bareMillis?: boolean | undefined
}

/**
 * Parses a duration. `Left` carries a one-line reason that quotes the input
 * (callers prefix the name of the flag or variable).
 */
export const parse = (input: string, options?: ParseOptions): Either.Either<Duration.Duration, string> => {
  const allowInfinity = options?.infinity === true
  const shown = JSON.stringify(input)
  const accepted = allowInfinity ? `${formats}, or ${infinityWord}` : formats
  const text = input.trim().toLowerCase()
  const checked = (millis: number): Either.Either<Duration.Duration, string> => {
    // A long enough string of digits is Infinity as a number: never let it in as `Duration.infinity`.
    if (!Number.isFinite(millis)) return Either.left(`${shown} is too large`)
    if (options?.positive === true && !(millis > 0)) return Either.left(`${shown} must be greater than zero`)
    return Either.right(Duration.millis(millis))
  }
  if (text === infinityWord) {
    return allowInfinity
      ? Either.right(Duration.infinity)
      : Either.left(`${shown} is not allowed here: a finite duration is required (${formats})`)
  }
  if (text.startsWith("-")) return Either.left(`${shown} is negative`)
  if (bare.test(text)) {
    if (options?.bareMillis === true) return checked(Number(text))
    if (Number(text) === 0) return checked(0)
    return Either.left(`${shown} has no unit (${accepted})`)
  }
  const longMatch = long.exec(text)
  if (longMatch !== null) return checked(Number(longMatch[1]) * longUnits[longMatch[2]!]!)
  if (compact.test(text)) {
    let millis = 0
    for (const part of text.matchAll(compactPart)) {
      millis += Number(part[1]) * shortUnits[part[2]!]!
    }
    return checked(millis)
  }
  return Either.left(`cannot read ${shown} as a duration (${accepted})`)
}

/** "3.2s", "1m05s": short, for progress lines and messages. */
export const format = (millis: number): string => {
  if (!Number.isFinite(millis)) return infinityWord
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)}s`
  const minutes = Math.floor(millis / 60_000)
  const seconds = Math.floor((millis % 60_000) / 1000)
  return `${minutes}m${String(seconds).padStart(2, "0")}s`
}
