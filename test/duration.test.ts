/** The one short-form duration parser (src/internal/duration.ts): the CLI's flags, and config values. */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import * as DurationParser from "../src/internal/duration.js"

const millis = (text: string, options?: DurationParser.ParseOptions) =>
  Either.map(DurationParser.parse(text, options), Duration.toMillis)

describe("duration parser", () => {
  it("reads short units, compounds and Effect's spelling; no bare numbers", () => {
    expect(millis("500ms")).toEqual(Either.right(500))
    expect(millis("30s")).toEqual(Either.right(30_000))
    expect(millis("2m")).toEqual(Either.right(120_000))
    expect(millis("1m30s")).toEqual(Either.right(90_000))
    expect(millis("1m 30s")).toEqual(Either.right(90_000))
    expect(millis("5 s")).toEqual(Either.right(5_000))
    expect(millis("1.5h")).toEqual(Either.right(5_400_000))
    expect(millis("30 seconds")).toEqual(Either.right(30_000))
    expect(millis("500 millis")).toEqual(Either.right(500))
    expect(millis("1 minute")).toEqual(Either.right(60_000))
    expect(millis(" 2D ")).toEqual(Either.right(172_800_000))
    expect(millis("0")).toEqual(Either.right(0))
    for (const bad of ["30", "-1s", "abc", "", "5 parsecs", "1x", "s", "1s2", "Infinity", "inf", "-0"]) {
      expect(Either.isLeft(DurationParser.parse(bad)), bad).toBe(true)
    }
    expect(DurationParser.parse("30")).toEqual(
      Either.left("\"30\" has no unit (e.g. 500ms, 30s, 2m, 1m30s or \"30 seconds\")")
    )
    expect(DurationParser.parse("-1s")).toEqual(Either.left("\"-1s\" is negative"))
  })

  it("accepts infinity only where the caller allows it", () => {
    const endless = DurationParser.parse("infinity", { infinity: true })
    expect(Either.isRight(endless) && Duration.equals(endless.right, Duration.infinity)).toBe(true)
    expect(Either.isRight(DurationParser.parse(" Infinity ", { infinity: true }))).toBe(true)
    expect(DurationParser.parse("infinity")).toEqual(
      Either.left(
        "\"infinity\" is not allowed here: a finite duration is required (e.g. 500ms, 30s, 2m, 1m30s or \"30 seconds\")"
      )
    )
    // A number too large for a double must not slip in as Duration.infinity.
    expect(DurationParser.parse(`${"9".repeat(400)}s`)).toEqual(Either.left(`"${"9".repeat(400)}s" is too large`))
    expect(DurationParser.parse(`${"9".repeat(400)}s`, { infinity: true })._tag).toBe("Left")
    // Where infinity is allowed, errors say so.
    expect(DurationParser.parse("forever", { infinity: true })).toEqual(
      Either.left("cannot read \"forever\" as a duration (e.g. 500ms, 30s, 2m, 1m30s or \"30 seconds\", or infinity)")
    )
  })

  it("positive refuses zero; bareMillis reads a bare number as milliseconds", () => {
    expect(DurationParser.parse("0s", { positive: true })).toEqual(Either.left("\"0s\" must be greater than zero"))
    expect(DurationParser.parse("0", { positive: true })._tag).toBe("Left")
    expect(millis("1500", { bareMillis: true })).toEqual(Either.right(1_500))
    expect(millis("2.5", { bareMillis: true })).toEqual(Either.right(2.5))
    expect(DurationParser.parse("-5", { bareMillis: true })).toEqual(Either.left("\"-5\" is negative"))
  })

  it("formats short", () => {
    expect(DurationParser.format(3_210)).toBe("3.2s")
    expect(DurationParser.format(65_000)).toBe("1m05s")
    expect(DurationParser.format(Infinity)).toBe("infinity")
  })
})
