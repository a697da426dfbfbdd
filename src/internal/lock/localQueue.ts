import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { LockKv } from "../../LockKv.js"
import { storeState } from "./storeState.js"
import * as time from "./time.js"
import * as timers from "./timers.js"

/**
 * The fibers of one process that want the same key of the same store take turns
 * here, first come first served, so that only one of them at a time contends in
 * the store (or waits in its queue). A turn is passed on when its holder
 * releases the lock, loses it or gives up.
 */
export interface Turn {
  /** Set (synchronously) once the turn is this fiber's. */
  readonly given: boolean
  /**
   * Done with the line: hands the turn to the next waiting fiber, or leaves
   * the line when the turn never came (handing it on if it came meanwhile).
   * Idempotent.
   */
  readonly pass: () => void
}

interface Line {
  readonly waiters: Array<Place>
  /** A fiber has the turn. A line nobody holds has no waiters either. */
  held: boolean
}

/**
 * The lines of one store. A line whose turn ends with nobody waiting stays in
 * the map, free, so that the next lock cycle on its key reuses it rather than
 * deleting and re-adding a map entry every cycle (measured: ~5 % of an
 * uncontended in-memory cycle); once more than `maxFree` are free they are all
 * dropped, so the map stays bounded whatever the number of keys.
 */
export interface Lines {
  readonly byKey: Map<string, Line>
  free: number
}

const maxFree = 256

/** A fiber's place in a line: waiting, then holding the turn. */
class Place implements Turn {
  given = false
  passed = false
  /** Resumes the waiting fiber, while it waits. */
  resume: (() => void) | undefined = undefined
  cancelAlarm: (() => void) | undefined = undefined
  constructor(readonly lines: Lines, readonly key: string) {}
  readonly pass = (): void => {
    if (this.passed) return
    this.passed = true
    this.stopWaiting()
    if (this.given) return handOn(this.lines, this.key)
    const line = this.lines.byKey.get(this.key)
    const index = line === undefined ? -1 : line.waiters.indexOf(this)
    if (index !== -1) line!.waiters.splice(index, 1)
  }
  stopWaiting(): void {
    this.resume = undefined
    const cancel = this.cancelAlarm
    this.cancelAlarm = undefined
    cancel?.()
  }
}

const handOn = (lines: Lines, key: string): void => {
  const line = lines.byKey.get(key)
  if (line === undefined || !line.held) return
  const next = line.waiters.shift()
  if (next === undefined) {
    line.held = false
    if (++lines.free > maxFree) dropFree(lines)
    return
  }
  next.given = true
  const resume = next.resume
  next.stopWaiting()
  resume?.()
}

const dropFree = (lines: Lines): void => {
  for (const [key, line] of lines.byKey) if (!line.held) lines.byKey.delete(key)
  lines.free = 0
}

/** The turn for the first fiber of a line: a new one, or `free`, which nobody holds. */
const given = (lines: Lines, key: string, free: Line | undefined): Place => {
  if (free === undefined) {
    lines.byKey.set(key, { waiters: [], held: true })
  } else {
    free.held = true
    lines.free--
  }
  const place = new Place(lines, key)
  place.given = true
  return place
}

/** The turn at once when no other fiber of this process holds or awaits `key`, else `undefined` (synchronous). */
export const tryEnter = (store: LockKv.Service, key: string): Turn | undefined => {
  const lines = storeState(store).lines
  const line = lines.byKey.get(key)
  return line?.held ? undefined : given(lines, key, line)
}

/**
 * A place in the line for `key` (synchronous): the turn at once when nobody
 * else holds or awaits it, else the last place, to wait in with `waitForTurn`.
 * Whatever happens next, the caller ends with `pass`.
 */
export const join = (store: LockKv.Service, key: string): Turn => {
  const lines = storeState(store).lines
  const line = lines.byKey.get(key)
  if (line === undefined || !line.held) return given(lines, key, line)
  const place = new Place(lines, key)
  line.waiters.push(place)
  return place
}

/** Suspends until the turn reaches `place` or the store's Clock reaches `wakeAt` (a plain callback, no fiber). */
const sleepUntilTurn = (store: LockKv.Service, place: Place, wakeAt: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (place.given) return resume(Effect.void)
    place.cancelAlarm = timers.setAlarm(store, wakeAt, () => {
      place.cancelAlarm = undefined
      place.resume = undefined
      resume(Effect.void)
    })
    place.resume = () => resume(Effect.void)
    // No canceler: an interrupted waiter still ends with `pass`, which stops the wait.
  })

const yes = Effect.succeed(true)
const no = Effect.succeed(false)

/**
 * Waits until the turn reaches `turn` (from `join`): `true`, or `false` once
 * `deadline` (millis of `clock`) has passed. With a `backoff` it also wakes at
 * the delays it gives (each wake without the turn is a failed try, and the
 * backoff may give up: `false`); without one (the default retry, which never
 * gives up by itself) it wakes only for its turn or at the deadline, so a line
 * of waiters sets no alarm per turn.
 */
export const waitForTurn = (
  store: LockKv.Service,
  clock: Clock.Clock,
  turn: Turn,
  deadline: number,
  backoff: ((now: number) => Effect.Effect<Option.Option<number>>) | undefined
): Effect.Effect<boolean> => {
  const place = turn as Place
  const wait = (): Effect.Effect<boolean> => {
    if (place.given) return yes
    const now = time.monotonicMillis(clock)
    if (now >= deadline) return no
    if (backoff === undefined) return Effect.flatMap(sleepUntilTurn(store, place, deadline), wait)
    return Effect.flatMap(backoff(now), (delay) =>
      delay._tag === "None"
        ? no
        : Effect.flatMap(
          sleepUntilTurn(store, place, now + Math.max(0, Math.ceil(Math.min(delay.value, deadline - now)))),
          wait
        ))
  }
  // `wait()` now: this runs as the caller's effect is built, right where it waits.
  return timers.whenStarted(store, wait())
}

/** How many lines the store keeps, held or free (for tests: it stays bounded). */
export const lineCount = (store: LockKv.Service): number => storeState(store).lines.byKey.size
