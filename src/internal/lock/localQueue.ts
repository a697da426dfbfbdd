import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { LockKv } from "../../LockKv.js"
import * as time from "./time.js"

/**
 * The fibers of one process that want the same key of the same store take turns
 * here, first come first served, so that only one of them at a time contends in
 * the store (or waits in its queue). A turn is passed on when its holder
 * releases the lock, loses it or gives up.
 */
export interface Turn {
  /** Hands the turn to the next waiting fiber. Idempotent. */
  readonly pass: () => void
}

interface Line {
  readonly waiters: Array<Deferred.Deferred<void>>
}

/** Per store, so two stores (two Redis servers or namespaces) never share a line. */
const linesByStore = new WeakMap<LockKv.Service, Map<string, Line>>()

const linesOf = (store: LockKv.Service): Map<string, Line> => {
  let lines = linesByStore.get(store)
  if (lines === undefined) {
    lines = new Map()
    linesByStore.set(store, lines)
  }
  return lines
}

const makeTurn = (lines: Map<string, Line>, key: string): Turn => {
  let passed = false
  return {
    pass: () => {
      if (passed) return
      passed = true
      handOn(lines, key)
    }
  }
}

const handOn = (lines: Map<string, Line>, key: string): void => {
  const line = lines.get(key)
  if (line === undefined) return
  const next = line.waiters.shift()
  if (next === undefined) {
    lines.delete(key)
  } else {
    Deferred.unsafeDone(next, Effect.void)
  }
}

/** The turn at once when no other fiber of this process holds or awaits `key`, else `undefined` (synchronous). */
export const tryEnter = (store: LockKv.Service, key: string): Turn | undefined => {
  const lines = linesOf(store)
  if (lines.has(key)) return undefined
  lines.set(key, { waiters: [] })
  return makeTurn(lines, key)
}

/**
 * Waits for this fiber's turn on `key` until `deadline` (Clock millis), waking
 * at the delays `backoff` gives (each wake without the turn is a failed try; the
 * backoff may give up). `None` when it gave up. Interruption leaves the line intact.
 */
export const enter = (
  store: LockKv.Service,
  key: string,
  deadline: number,
  backoff: (now: number) => Effect.Effect<Option.Option<number>>
): Effect.Effect<Option.Option<Turn>> =>
  Effect.suspend(() => {
    const lines = linesOf(store)
    const line = lines.get(key)
    if (line === undefined) {
      lines.set(key, { waiters: [] })
      return Effect.succeed(Option.some(makeTurn(lines, key)))
    }
    return Effect.flatMap(Deferred.make<void>(), (turn) => {
      line.waiters.push(turn)
      const waitForTurn: Effect.Effect<boolean> = Effect.gen(function*() {
        while (true) {
          if (yield* Deferred.isDone(turn)) return true
          const now = yield* time.now
          if (now >= deadline) return false
          const delay = yield* backoff(now)
          if (Option.isNone(delay)) return false
          yield* Effect.raceFirst(
            Deferred.await(turn),
            // Capped at an hour: a JavaScript timer cannot sleep past 2^31 − 1 ms.
            Effect.sleep(Duration.millis(Math.max(0, Math.ceil(Math.min(delay.value, deadline - now, 3_600_000)))))
          )
        }
      })
      return waitForTurn.pipe(
        Effect.map((got) => got ? Option.some(makeTurn(lines, key)) : Option.none<Turn>()),
        Effect.onExit((exit) =>
          Effect.flatMap(Deferred.isDone(turn), (given) => {
            if (exit._tag === "Success" && Option.isSome(exit.value)) return Effect.void
            const index = line.waiters.indexOf(turn)
            if (index !== -1) line.waiters.splice(index, 1)
            // The turn reached us as we gave up: hand it on, or the line stalls.
            if (given) handOn(lines, key)
            return Effect.void
          })
        )
      )
    })
  })
