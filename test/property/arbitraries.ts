/** Arbitraries shared by the property suites (effect/FastCheck re-exports fast-check). */
import type * as Duration from "effect/Duration"
import * as FastCheck from "effect/FastCheck"
import { maxKeyLength } from "../../src/internal/keys.js"

/** At most `units` UTF-16 units of `s`, never cutting a surrogate pair in half (a lone half is an invalid key). */
export const truncate = (s: string, units: number = maxKeyLength): string => {
  if (s.length <= units) return s
  const last = s.charCodeAt(units - 1)
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? units - 1 : units)
}

/** Pieces that mean something to Redis, to our key layout or to a terminal. */
const special = FastCheck.constantFrom(
  ":",
  "::",
  "*",
  "?",
  "[",
  "]",
  "\\",
  "{",
  "}",
  "{}",
  "}{",
  "{a}",
  "{lock:",
  "|",
  " ",
  "\n",
  "\r\n",
  "\t",
  ":fence",
  ":queue",
  ":places",
  "}:fence",
  "__released__",
  "lock",
  "other",
  "é",
  "✓",
  "😀",
  "\u200b",
  "\u0301",
  "\x7f",
  "\x01",
  "\uFEFF",
  "%s",
  "$",
  "\"",
  "'"
)

const fragment = FastCheck.oneof(
  { weight: 3, arbitrary: special },
  { weight: 1, arbitrary: FastCheck.string({ unit: "binary", maxLength: 6 }) },
  { weight: 1, arbitrary: FastCheck.string({ unit: "grapheme-ascii", maxLength: 6 }) }
)

/** Any valid key: 1..maxKeyLength UTF-16 units, mostly short and full of special pieces. */
export const key: FastCheck.Arbitrary<string> = FastCheck.oneof(
  { weight: 6, arbitrary: FastCheck.array(fragment, { minLength: 1, maxLength: 10 }).map((parts) => parts.join("")) },
  {
    weight: 1,
    // Long keys, up to the limit exactly, ending with a special piece.
    arbitrary: FastCheck.tuple(
      FastCheck.array(fragment, { minLength: 1, maxLength: 4 }),
      FastCheck.integer({ min: 900, max: maxKeyLength })
    )
      .map(([parts, length]) => {
        const tail = parts.join("")
        const filler = "é{x}:* |".repeat(Math.ceil(length / 8)).slice(0, Math.max(0, length - tail.length))
        return truncate(filler + tail)
      })
  }
).filter((k) => k.length > 0 && k.length <= maxKeyLength && !k.includes("\u0000"))

/**
 * Two distinct keys where the second is the first plus a suffix the store uses
 * for its own companion keys, or the first in braces: the likeliest way for two
 * locks to share a Redis key.
 */
export const lookalikePair: FastCheck.Arbitrary<readonly [string, string]> = FastCheck.tuple(
  key.filter((k) => k.length <= maxKeyLength - 20),
  FastCheck.constantFrom(":fence", ":queue", ":places", "}:fence", "}:queue", "}:places", "{", "}"),
  FastCheck.boolean()
).map(([base, suffix, braced]) => {
  const first = braced ? `{${base}}` : base
  return [first, first + suffix] as const
}).filter(([a, b]) => a !== b && b.length <= maxKeyLength - 10) // room for a run prefix

const untyped = (value: unknown): Duration.DurationInput => value as Duration.DurationInput

/**
 * A negative wait written as a string or a [seconds, nanos] tuple, which
 * `Duration.decode` quietly turns into zero (used by the report of an engine issue).
 */
export const invalidWaitDecoded: FastCheck.Arbitrary<Duration.DurationInput> = FastCheck.oneof(
  FastCheck.integer({ min: 1, max: 10_000 }).map((n) => untyped(`-${n} millis`)),
  FastCheck.integer({ min: 1, max: 100 }).map((n) => untyped(`-${n} seconds`)),
  FastCheck.integer({ min: 1, max: 100 }).map((n) => untyped([-n, 0]))
)
