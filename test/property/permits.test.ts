/**
 * Model-based: random sequences of semaphore operations on both backends,
 * each step checked against a reference model of the specification (a FIFO
 * whose head blocks later waiters, grants while the head fits, one limit per
 * key), and the invariant checked after every step: never more than `limit`
 * permits in use. TTLs and queue places are a minute, so real time expires
 * nothing during a run.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as LockKv from "../../src/LockKv.js"
import * as ReadWriteLock from "../../src/ReadWriteLock.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"

const tokens = ["t0", "t1", "t2", "t3", "t4", "t5"] as const
const limits = [4, 4, 4, 5] as const

type Command =
  | {
    readonly op: "acquire"
    readonly token: number
    readonly permits: number
    readonly limit: number
    readonly queue: boolean
  }
  | { readonly op: "release"; readonly token: number }
  | { readonly op: "extend"; readonly token: number }

const token = FastCheck.integer({ min: 0, max: tokens.length - 1 })
const commands = (
  permits: FastCheck.Arbitrary<number>,
  limit: FastCheck.Arbitrary<number>
): FastCheck.Arbitrary<Command> =>
  FastCheck.oneof(
    {
      weight: 3,
      arbitrary: FastCheck.record({
        op: FastCheck.constant("acquire" as const),
        token,
        permits,
        limit,
        queue: FastCheck.boolean()
      })
    },
    { weight: 2, arbitrary: FastCheck.record({ op: FastCheck.constant("release" as const), token }) },
    { weight: 1, arbitrary: FastCheck.record({ op: FastCheck.constant("extend" as const), token }) }
  )
const command = commands(FastCheck.integer({ min: 1, max: 4 }), FastCheck.constantFrom(...limits))
/** A read-write lock's calls: a reader takes 1 permit of `maxReaders`, a writer all of them. */
const rwCommand = commands(
  FastCheck.constantFrom(1, ReadWriteLock.maxReaders),
  FastCheck.constant(ReadWriteLock.maxReaders)
)

type Result =
  | { readonly acquired: number }
  | { readonly held: true }
  | { readonly ok: boolean }
  | { readonly error: string }

/** The specification, written plainly. */
class Model {
  limit = 0
  fence = 0
  readonly holders = new Map<string, { readonly permits: number; readonly fence: number }>()
  readonly queue: Array<{ readonly token: string; readonly permits: number }> = []
  used(): number {
    let used = 0
    for (const h of this.holders.values()) used += h.permits
    return used
  }
  grant(self: string | undefined): number | undefined {
    let mine: number | undefined
    while (this.queue.length > 0 && this.used() + this.queue[0]!.permits <= this.limit) {
      const head = this.queue.shift()!
      this.holders.set(head.token, { permits: head.permits, fence: ++this.fence })
      if (head.token === self) mine = this.fence
    }
    return mine
  }
  step(c: Command): Result {
    const t = tokens[c.token]!
    switch (c.op) {
      case "acquire": {
        const mine = this.holders.get(t)
        if (mine !== undefined) return { acquired: mine.fence }
        if (this.holders.size === 0 && this.queue.length === 0) this.limit = c.limit
        else if (this.limit !== c.limit) return { error: "InvalidArgument" }
        const head = this.queue[0]
        if ((head === undefined || head.token === t) && this.used() + c.permits <= c.limit) {
          if (head !== undefined) this.queue.shift()
          this.holders.set(t, { permits: c.permits, fence: ++this.fence })
          const fence = this.fence
          this.grant(undefined)
          return { acquired: fence }
        }
        if (c.queue && !this.queue.some((w) => w.token === t)) this.queue.push({ token: t, permits: c.permits })
        const granted = this.grant(t)
        return granted === undefined ? { held: true } : { acquired: granted }
      }
      case "release": {
        const held = this.holders.delete(t)
        if (!held) {
          const index = this.queue.findIndex((w) => w.token === t)
          if (index !== -1) this.queue.splice(index, 1)
        }
        if (this.limit > 0) this.grant(undefined)
        return { ok: held }
      }
      case "extend":
        return { ok: this.holders.has(t) }
    }
  }
}

const minute = Duration.minutes(1)

const run = (kv: LockKv.LockKv.Service, key: string, c: Command): Effect.Effect<Result> => {
  const t = tokens[c.token]!
  const effect: Effect.Effect<Result, LockKv.LockKvError | LockKv.InvalidArgument> = c.op === "acquire"
    ? Effect.map(
      kv.acquirePermits(key, t, c.permits, c.limit, minute, c.queue ? minute : undefined),
      (r): Result => r._tag === "Acquired" ? { acquired: r.fence } : { held: true }
    )
    : c.op === "release"
    ? Effect.map(kv.releasePermits(key, t), (ok) => ({ ok }))
    : Effect.map(kv.extendPermits(key, t, minute), (ok) => ({ ok }))
  return Effect.catchAll(effect, (e) => Effect.succeed({ error: e._tag }))
}

/** Runs `commands` on `kv` beside the model; fails the property at the first difference. */
const check = (kv: LockKv.LockKv.Service, key: string, commands: ReadonlyArray<Command>, rw = false) =>
  Effect.gen(function*() {
    const model = new Model()
    for (const [i, c] of commands.entries()) {
      const expected = model.step(c)
      const actual = yield* run(kv, key, c)
      expect(actual, `step ${i} of ${JSON.stringify(commands)}`).toEqual(expected)
      const inUse = yield* Effect.orDie(kv.permitsInUse(key))
      expect(inUse).toBe(model.used())
      expect(inUse).toBeLessThanOrEqual(model.limit)
      if (rw) {
        // A writer holds alone: never a reader with a writer, never two writers.
        const writers = [...model.holders.values()].filter((h) => h.permits === ReadWriteLock.maxReaders).length
        expect(writers === 0 || model.holders.size === 1).toBe(true)
      }
    }
  })

describe("property: semaphore operations follow the model on both backends", () => {
  it.scopedLive("random sequences of acquire / release / extend", () =>
    Effect.gen(function*() {
      const memory = yield* LockKv.makeMemory({ namespace: "permits-model" })
      const redis = yield* LockKv.makeRedis({ url: redisUrl(), namespace: uniqueNamespace("permits-model") })
      let runs = 0
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(FastCheck.array(command, { minLength: 1, maxLength: 40 }), async (commands) => {
            // A fresh key for every run (and every shrink).
            const key = `sem${runs++}`
            await Effect.runPromise(Effect.all([check(memory, key, commands), check(redis, key, commands)]))
          }),
          { numRuns: 120 }
        )
      )
    }), 90_000)

  it.scopedLive("read-write: random readers and writers, never a reader with a writer", () =>
    Effect.gen(function*() {
      const memory = yield* LockKv.makeMemory({ namespace: "rw-model" })
      const redis = yield* LockKv.makeRedis({ url: redisUrl(), namespace: uniqueNamespace("rw-model") })
      let runs = 0
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(FastCheck.array(rwCommand, { minLength: 1, maxLength: 40 }), async (commands) => {
            const key = `rw${runs++}`
            await Effect.runPromise(Effect.all([check(memory, key, commands, true), check(redis, key, commands, true)]))
          }),
          { numRuns: 120 }
        )
      )
    }), 90_000)
})
