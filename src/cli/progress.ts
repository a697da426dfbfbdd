/**
 * A one-line "waiting for lock <key>… 3.2s" on stderr while an effect runs,
 * redrawn in place and erased at the end. Only on a TTY: logs and pipes get
 * nothing. It appears after a short delay, so an uncontended lock prints nothing.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { format } from "../internal/duration.js"

const clearLine = "\r\x1b[2K"

/** The part of a `tty.WriteStream` the progress line needs. */
export interface Output {
  readonly isTTY?: boolean | undefined
  readonly write: (chunk: string) => unknown
}

export interface ProgressOptions {
  /** Where to draw; default `process.stderr`. */
  readonly stream?: Output | undefined
  /** How long before the first line appears; default 200 ms. */
  readonly delayMillis?: number | undefined
}

/** Shows the progress line while `self` runs (only when the stream is a TTY). */
export const whileWaiting =
  (key: string, options?: ProgressOptions) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
    const stream = options?.stream ?? process.stderr
    if (stream.isTTY !== true) return self
    const delayMillis = options?.delayMillis ?? 200
    return Effect.suspend(() => {
      let drawn = false
      const draw = (elapsed: number) =>
        Effect.sync(() => {
          drawn = true
          stream.write(`${clearLine}waiting for lock ${key}… ${format(elapsed)}`)
        })
      const display: Effect.Effect<never> = Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        yield* Effect.sleep(delayMillis)
        while (true) {
          yield* draw((yield* Clock.currentTimeMillis) - start)
          yield* Effect.sleep("100 millis")
        }
      })
      // raceFirst: whichever ends first (always `self`) interrupts the other.
      return Effect.raceFirst(self, display).pipe(
        Effect.ensuring(Effect.sync(() => {
          if (drawn) stream.write(clearLine)
        }))
      )
    })
  }
