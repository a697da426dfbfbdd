/** `replicas` / `replicasTimeout` options: checked before the store is touched; none on the memory store. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import { Lock, LockKv } from "../src/index.js"

const run = (options: Lock.Options) =>
  Effect.either(Lock.withLock(Effect.succeed("ran"), "k", options).pipe(Effect.provide(LockKv.layerMemory)))

const untyped = <A>(value: unknown): A => value as A

describe("Lock options replicas and replicasTimeout", () => {
  it.effect("invalid values are InvalidArgument naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Lock.Options, string]> = [
        [{ replicas: -1 }, "replicas"],
        [{ replicas: 1.5 }, "replicas"],
        [{ replicas: Number.NaN }, "replicas"],
        [{ replicas: untyped<number>("1") }, "replicas"],
        [{ replicas: 1, replicasTimeout: -1 }, "replicasTimeout"],
        [{ replicas: 1, replicasTimeout: untyped<Lock.Options["replicasTimeout"]>("soon") }, "replicasTimeout"],
        // Checked even while replicas is off: a typo must not wait to be found.
        [{ replicasTimeout: 0 }, "replicasTimeout"]
      ]
      for (const [options, argument] of cases) {
        const result = yield* run(options)
        expect(Either.isLeft(result) && result.left, JSON.stringify(options)).toMatchObject({
          _tag: "InvalidArgument",
          argument
        })
      }
    }))

  it.effect("replicas 0 (or unset) is off; replicas on the memory store is InvalidArgument, nothing is locked", () =>
    Effect.gen(function*() {
      expect(yield* run({ replicas: 0 })).toEqual(Either.right("ran"))
      expect(yield* run({ replicasTimeout: "1 second" })).toEqual(Either.right("ran"))
      const refused = yield* run({ replicas: 2 })
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "InvalidArgument", argument: "replicas" })
      const kv = yield* LockKv.makeMemory()
      const store = yield* Effect.either(
        kv.acquire("k", "token", Lock.minimumTtl, undefined, { replicas: 1, timeout: Lock.minimumTtl })
      )
      expect(Either.isLeft(store)).toBe(true)
      expect(Option.isNone(yield* kv.get("k"))).toBe(true)
    }).pipe(Effect.scoped))
})
