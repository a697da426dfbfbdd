/**
 * Invalid input always fails with a typed `InvalidArgument`: never a defect,
 * never another error, and never after touching the store.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { vi } from "vitest"
import * as Lock from "../../src/Lock.js"
import * as LockKv from "../../src/LockKv.js"
import { redisServerScoped } from "../support/redisServer.js"
import { key } from "./arbitraries.js"

/** A value the type system would refuse, as the untyped callers (JS, JSON config) can pass it. */
const untyped = <A>(value: unknown): A => value as A

/** Not a positive finite duration, in every shape a DurationInput (or a mistake) can take. */
const invalidTtl: FastCheck.Arbitrary<Duration.DurationInput> = FastCheck.oneof(
  FastCheck.double({ max: 0 }),
  FastCheck.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0),
  FastCheck.bigInt({ max: 0n }),
  FastCheck.constantFrom(Duration.zero, Duration.infinity),
  FastCheck.tuple(FastCheck.double({ max: 0, noNaN: true }), FastCheck.double({ max: 0, noNaN: true }))
    .map(([s, ns]) => untyped<Duration.DurationInput>([s, ns])),
  FastCheck.tuple(FastCheck.constantFrom(Number.NaN, Number.POSITIVE_INFINITY), FastCheck.nat())
    .map(([s, ns]) => untyped<Duration.DurationInput>([s, ns])),
  FastCheck.tuple(FastCheck.integer({ min: 0, max: 1_000 }), FastCheck.constantFrom("seconds", "millis", "minutes"))
    .map(([n, unit]) => untyped<Duration.DurationInput>(`-${n + 1} ${unit}`)),
  FastCheck.constantFrom("0 millis", "0 seconds", "forever", "", "10", "1e3 millis", "NaN seconds", " 5 seconds")
    .map((s) => untyped<Duration.DurationInput>(s)),
  FastCheck.string().filter((s) => !/^-?\d/.test(s)).map((s) => untyped<Duration.DurationInput>(s)),
  FastCheck.constantFrom(null, {}, [], [1], true, Symbol.for("ttl")).map((v) => untyped<Duration.DurationInput>(v)),
  // Finite, but no store can keep it: more milliseconds than a safe integer.
  FastCheck.double({ min: 2 ** 53, max: 1e300, noNaN: true }).map((ms) => Duration.millis(ms))
)

/** A negative or NaN wait, as a number or a bigint. */
const invalidWaitNumber: FastCheck.Arbitrary<Duration.DurationInput> = FastCheck.oneof(
  FastCheck.double({ max: -Number.MIN_VALUE }),
  FastCheck.constant(Number.NaN),
  FastCheck.bigInt({ max: -1n })
)

const invalidKey: FastCheck.Arbitrary<string> = FastCheck.oneof(
  FastCheck.constant(""),
  FastCheck.integer({ min: 1025, max: 5_000 }).map((n) => "k".repeat(n)),
  FastCheck.tuple(key, key).map(([a, b]) => `${a.slice(0, 500)}\u0000${b.slice(0, 500)}`),
  // Ill-formed UTF-16: a lone surrogate (Redis would store U+FFFD, merging distinct keys).
  FastCheck.tuple(key, FastCheck.integer({ min: 0xd800, max: 0xdfff }), key)
    .map(([a, unit, b]) => `${a.slice(0, 500)}${String.fromCharCode(unit)}${b.slice(0, 500)}`),
  FastCheck.constantFrom(null, undefined, 42, {}, ["k"]).map((v) => untyped<string>(v))
)

const invalidSetOptions: FastCheck.Arbitrary<LockKv.LockKv.SetOptions> = FastCheck.oneof(
  FastCheck.constant({ NX: true, XX: true }),
  FastCheck.record({ PX: FastCheck.integer({ min: 1, max: 100_000 }), ttl: FastCheck.constant("1 second" as const) }),
  FastCheck.record({
    PX: FastCheck.oneof(FastCheck.double({ max: 0 }), FastCheck.constant(Number.NaN), FastCheck.constant(1.5))
  }),
  FastCheck.record({ PX: FastCheck.constantFrom("100", null, 2 ** 60).map((v) => untyped<number>(v)) }),
  invalidTtl.map((ttl) => ({ ttl })),
  FastCheck.constantFrom(null, "NX", 5).map((v) => untyped<LockKv.LockKv.SetOptions>(v))
)

/**
 * A ttl no lock accepts: invalid anywhere, or a valid store TTL below
 * `Lock.minimumTtl` (in milliseconds, as a string, or as a Duration).
 */
const invalidLockTtl: FastCheck.Arbitrary<Duration.DurationInput> = FastCheck.oneof(
  invalidTtl,
  FastCheck.integer({ min: 1, max: 92 }),
  FastCheck.integer({ min: 1, max: 92 }).map((ms) => untyped<Duration.DurationInput>(`${ms} millis`)),
  FastCheck.double({ min: 0.001, max: 92, noNaN: true }).map((ms) => Duration.millis(ms))
)

/** Options with at least one invalid field (ttl, wait or retry). */
const invalidOptions = (wait: FastCheck.Arbitrary<Duration.DurationInput>): FastCheck.Arbitrary<Lock.Options> =>
  FastCheck.oneof(
    invalidLockTtl.map((ttl) => ({ ttl })),
    wait.map((w) => ({ wait: w })),
    FastCheck.tuple(invalidLockTtl, wait).map(([ttl, w]) => ({ ttl, wait: w })),
    FastCheck.constantFrom("1 second", 5, {}).map((retry) => ({ retry: untyped<Lock.Options["retry"]>(retry) }))
  )

/** A memory store whose every method dies: any call to the store turns into a defect and is recorded. */
const poisoned = Effect.map(LockKv.makeMemory(), (inner) => {
  const touched: Array<string> = []
  const store = new Proxy(inner, {
    get: (target, property, receiver) => {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== "function") return value
      return () => {
        touched.push(String(property))
        return Effect.die(new Error(`the store was touched: ${String(property)}`))
      }
    }
  })
  return { touched, layer: Layer.succeed(LockKv.LockKv, store) }
})

/** The exit must be a failure whose only cause is an InvalidArgument. */
const expectInvalid = <A, E>(exit: Exit.Exit<A, E>, input: unknown) => {
  const label = String(
    typeof input === "symbol" ?
      input.toString() :
      JSON.stringify(input, (_, v: unknown) => typeof v === "bigint" ? `${v}n` : v)
  )
  expect(Exit.isFailure(exit), label).toBe(true)
  if (Exit.isFailure(exit)) {
    expect(Cause.isDie(exit.cause), `${label}: ${Cause.pretty(exit.cause)}`).toBe(false)
    const failure = Cause.failureOption(exit.cause)
    expect(
      Option.isSome(failure) && (failure.value as { _tag?: unknown })._tag,
      `${label}: ${Cause.pretty(exit.cause)}`
    )
      .toBe("InvalidArgument")
  }
}

describe("property: invalid input fails with InvalidArgument before the store is touched", () => {
  it.scopedLive("Lock.withLock / tryWithLock / acquire with an invalid key or options", () =>
    Effect.gen(function*() {
      const { layer, touched } = yield* poisoned
      const lockCalls = (k: string, options: Lock.Options) => [
        Lock.withLock(Effect.void, k, options),
        Lock.tryWithLock(Effect.void, k, options),
        Effect.scoped(Lock.acquire(k, options))
      ]
      yield* Effect.promise(() =>
        FastCheck.assert(
          FastCheck.asyncProperty(
            FastCheck.oneof(
              FastCheck.tuple(invalidKey, FastCheck.constant<Lock.Options>({})),
              FastCheck.tuple(key, invalidOptions(invalidWaitNumber))
            ),
            async ([k, options]) => {
              for (const call of lockCalls(k, options)) {
                expectInvalid(await Effect.runPromise(Effect.exit(Effect.provide(call, layer))), { k, options })
              }
            }
          ),
          { numRuns: 300 }
        )
      )
      expect(touched).toEqual([])
    }))

  it.scopedLive(
    "store methods, memory and Redis (frozen, so a call that reached it could not answer)",
    () =>
      Effect.gen(function*() {
        const server = yield* redisServerScoped()
        const redis = yield* LockKv.makeRedis({ url: server.url, namespace: "inv" })
        const memory = yield* LockKv.makeMemory({ namespace: "inv" })
        server.pause()
        yield* Effect.addFinalizer(() => Effect.sync(() => server.resume()))
        const calls = (
          kv: LockKv.LockKv.Service,
          k: string,
          options: LockKv.LockKv.SetOptions,
          ttl: Duration.DurationInput
        ): Array<Effect.Effect<unknown, LockKv.LockKvError | LockKv.InvalidArgument>> => [
          kv.set("k", "v", options),
          kv.set(k, "v"),
          kv.get(k),
          kv.del(k),
          kv.pttl(k),
          kv.fence(k),
          kv.compareAndDelete(k, "v"),
          kv.compareAndExpire(k, "v", "1 second"),
          kv.compareAndExpire("k", "v", ttl),
          kv.acquire(k, "token", Duration.seconds(1)),
          kv.release(k, "token"),
          // The lock primitives check their other arguments on Redis only: the memory
          // store trusts the engine (which validates first) with the token and the ttl.
          ...(kv.backend === "redis"
            ? [
              kv.acquire("k", "token", untyped<Duration.Duration>(ttl)),
              kv.acquire("k", "token", Duration.seconds(1), untyped<Duration.Duration>(ttl)),
              kv.acquire("k", k, Duration.seconds(1)),
              kv.acquire("k", "to|ken", Duration.seconds(1)),
              kv.release("k", k)
            ]
            : [])
        ]
        yield* Effect.promise(() =>
          FastCheck.assert(
            FastCheck.asyncProperty(invalidKey, invalidSetOptions, invalidTtl, async (k, options, ttl) => {
              for (const kv of [memory, redis]) {
                for (const call of calls(kv, k, options, ttl)) {
                  const started = Date.now()
                  const exit = await Effect.runPromise(Effect.exit(call))
                  expectInvalid(exit, { backend: kv.backend, k, options, ttl })
                  // Failing fast is the proof that Redis (frozen) was not asked.
                  expect(Date.now() - started).toBeLessThan(500)
                }
              }
            }),
            { numRuns: 100 }
          )
        )
      }),
    30_000
  )

  // The checks once remembered the last valid key and token. Before any was
  // seen, `undefined` must not pass for one: the property above found it only
  // when its first case was an undefined key, so it is pinned here, in a fresh
  // copy of the modules where nothing was checked yet.
  it("an undefined key or token fails before any valid one was checked", async () => {
    vi.resetModules()
    const keys = await import("../../src/internal/keys.js")
    expect(keys.checkKey(undefined)?._tag).toBe("InvalidArgument")
    expect(keys.checkToken(undefined)?._tag).toBe("InvalidArgument")
    const fresh = await import("../../src/index.js")
    const exit = await Effect.runPromiseExit(
      fresh.Lock.withLock(Effect.void, untyped<string>(undefined), {}).pipe(Effect.provide(fresh.LockKv.layerMemory))
    )
    expect(Exit.isFailure(exit) && Option.getOrUndefined(Cause.failureOption(exit.cause))).toMatchObject({
      _tag: "InvalidArgument",
      argument: "key"
    })
    // Once a valid key was seen, undefined still fails.
    expect(keys.checkKey("a")).toBeUndefined()
    expect(keys.checkKey(undefined)?._tag).toBe("InvalidArgument")
  })
})
