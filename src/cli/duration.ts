/**
 * Durations as people type them on a command line: `500ms`, `30s`, `2m`, `1h`,
 * `1m30s`, and Effect's own `30 seconds` / `500 millis`.
 *
 * A bare number is refused (except `0`): `--ttl 30` could mean seconds (flock,
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
const compact = new RegExp(`^(?:${number}(ns|us|µs|ms|s|m|h|d|w))+$`)
const compactPart = new RegExp(`${number}(ns|us|µs|ms|s|m|h|d|w)`, "g")
const long = new RegExp(`^${number}\\s*(nano|micro|milli|second|minute|hour|day|week)s?$`)

/** The formats, for error messages and help. */
export const formats = "e.g. 500ms, 30s, 2m, 1m30s or \"30 seconds\""

/**
 * Parses a command-line duration. `Left` carries a one-line reason.
 */
export const parse = (input: string): Either.Either<Duration.Duration, string> => {
  const text = input.trim().toLowerCase()
  if (text === "0") return Either.right(Duration.zero)
  if (/^[+-]?\d+(?:\.\d+)?$/.test(text)) {
    return Either.left(`"${input}" has no unit (${formats})`)
  }
  if (text.startsWith("-")) return Either.left(`"${input}" is negative`)
  const longMatch = long.exec(text)
  if (longMatch !== null) {
    return Either.right(Duration.millis(Number(longMatch[1]) * longUnits[longMatch[2]!]!))
  }
  if (compact.test(text)) {
    let millis = 0
    for (const part of text.matchAll(compactPart)) {
      millis += Number(part[1]) * shortUnits[part[2]!]!
    }
    return Either.right(Duration.millis(millis))
  }
  return Either.left(`cannot read "${input}" as a duration (${formats})`)
}

/** Parses a duration that must be greater than zero (a TTL). */
export const parsePositive = (input: string): Either.Either<Duration.Duration, string> =>
  Either.flatMap(parse(input), (duration) =>
    Duration.toMillis(duration) > 0
      ? Either.right(duration)
      : Either.left(`"${input}" must be greater than zero`))

/** "3.2s", "1m05s": short, for progress lines and messages. */
export const format = (millis: number): string => {
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)}s`
  const minutes = Math.floor(millis / 60_000)
  const seconds = Math.floor((millis % 60_000) / 1000)
  return `${minutes}m${String(seconds).padStart(2, "0")}s`
}
