/**
 * Model-based: random sequences of store operations give the same results on
 * the memory and the Redis backends. TTLs are a minute or more, so real time
 * never expires anything during a run; `pttl` is compared by presence only.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as LockKv from "../../src/LockKv.js"
import { uniqueNamespace } from "../support/backends.js"
import { redisUrl } from "../support/redisUrl.js"

const keys = FastCheck.constantFrom(
  "k",
  "k:1",
  "{k}",
  "{k}:fence",
  "{k}:queue",
  "ü ✓",
  "a|b",
  "line\nbreak",
  "lone\uD800"
)
const values = FastCheck.constantFrom("a", "b", "t1", "t2", "")
const longTtl = FastCheck.integer({ min: 60_000, max: 120_000 })

type Command =
  | { readonly op: "get"; readonly key: string }
  | {
    readonly op: "set"
    readonly key: string
    readonly value: string
    readonly options: LockKv.LockKv.SetOptions | undefined
  }
  | { readonly op: "del"; readonly key: string }
  | { readonly op: "compareAndDelete"; readonly key: string; readonly value: string }
  | { readonly op: "compareAndExpire"; readonly key: string; readonly value: string; readonly ttl: number }
  | { readonly op: "pttl"; readonly key: string }
  | { readonly op: "acquire"; readonly key: string; readonly value: string; readonly ttl: number }
  | { readonly op: "release"; readonly key: string; readonly value: string }
  | { readonly op: "fence"; readonly key: string }

const setOptions: FastCheck.Arbitrary<LockKv.LockKv.SetOptions | undefined> = FastCheck.oneof(
  FastCheck.constant(undefined),
  FastCheck.constant({}),
  FastCheck.record({ NX: FastCheck.constant(true) }),
  FastCheck.record({ XX: FastCheck.constant(true) }),
  FastCheck.record({ PX: longTtl }),
  FastCheck.record({ ttl: longTtl.map((ms) => Duration.millis(ms)) }),
  FastCheck.record({ NX: FastCheck.constant(true), PX: longTtl }),
  FastCheck.record({ XX: FastCheck.constant(true), PX: longTtl }),
  FastCheck.record({ NX: FastCheck.constant(false), XX: FastCheck.constant(false) })
)

const command: FastCheck.Arbitrary<Command> = FastCheck.oneof(
  FastCheck.record({ op: FastCheck.constant("get" as const), key: keys }),
  FastCheck.record({ op: FastCheck.constant("set" as const), key: keys, value: values, options: setOptions }),
  FastCheck.record({ op: FastCheck.constant("del" as const), key: keys }),
  FastCheck.record({ op: FastCheck.constant("compareAndDelete" as const), key: keys, value: values }),
  FastCheck.record({ op: FastCheck.constant("compareAndExpire" as const), key: keys, value: values, ttl: longTtl }),
  FastCheck.record({ op: FastCheck.constant("pttl" as const), key: keys }),
  FastCheck.record({
    op: FastCheck.constant("acquire" as const),
    key: keys,
    value: FastCheck.constantFrom("t1", "t2"),
    ttl: longTtl
  }),
  FastCheck.record({
    op: FastCheck.constant("release" as const),
    key: keys,
    value: FastCheck.constantFrom("t1", "t2", "a")
  }),
  FastCheck.record({ op: FastCheck.constant("fence" as const), key: keys })
)

/** Runs one command; the result in a comparable form (TTLs as presence). */
const run = (
  kv: LockKv.LockKv.Service,
  prefix: string,
  c: Command
): Effect.Effect<unknown, LockKv.LockKvError | LockKv.InvalidArgument> => {
  const key = prefix + c.key
  switch (c.op) {
    case "get":
      return kv.get(key)
    case "set":
      return kv.set(key, c.value, c.options)
    case "del":
      return kv.del(key)
    case "compareAndDelete":
      return kv.compareAndDelete(key, c.value)
    case "compareAndExpire":
      return kv.compareAndExpire(key, c.value, Duration.millis(c.ttl))
    case "pttl":
      return Effect.map(kv.pttl(key), Option.isSome)
    case "acquire":
      return Effect.map(kv.acquire(key, c.value, Duration.millis(c.ttl)), (result) =>
        result._tag === "Acquired"
          ? { acquired: result.fence }
          : { held: Option.isSome(result.remaining) })
    case "release":
      return kv.release(key, c.value)
    case "fence":
      return kv.fence(key)
  }
}

const outcome = (kv: LockKv.LockKv.Service, prefix: string, commands: ReadonlyArray<Command>) =>
  Effect.forEach(commands, (c) =>
    Effect.either(run(kv, prefix, c)).pipe(
      Effect.map((result) => result._tag === "Right" ? { ok: result.right } : { error: result.left._tag })
    ))

describe("property: the memory and Redis backends agree", () => {
  it.scopedLive("on random sequences of store operations", () =>
    Effect.gen(function*() {
      const memory = yield* LockKv.makeMemory({ namespace: "model" })
      const redis = yield* LockKv.makeRedis({ url: redisUrl(), namespace: uniqueNamespace("model") })
      let runs = 0
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(FastCheck.array(command, { minLength: 1, maxLength: 40 }), async (commands) => {
            // Fresh keys for every run (and every shrink), on both stores.
            const prefix = `r${runs++}/`
            const [onMemory, onRedis] = await Effect.runPromise(
              Effect.all([outcome(memory, prefix, commands), outcome(redis, prefix, commands)])
            )
            expect(onRedis).toEqual(onMemory)
          }),
          { numRuns: 150 }
        )
      )
    }), 60_000)
})
