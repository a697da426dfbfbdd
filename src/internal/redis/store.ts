/**
 * The Redis backend of `LockKv`: one ioredis client for commands and one
 * duplicate for the release channel, both held for the store's lifetime.
 * The parts: `options.ts` (what to connect to), `connection.ts` (connecting,
 * readiness, closing), `call.ts` (a command as an Effect, and its timeouts),
 * `scripts.ts` (the Lua scripts and their replies), `releaseChannel.ts`
 * (hand-off notices), `errors.ts` (ioredis errors made safe to show).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type * as LockKv from "../../LockKv.js"
import { InvalidArgument, type LockKvError } from "../errors.js"
import {
  checkKey,
  checkPermits,
  checkToken,
  checkTtlMillis,
  companionKey,
  limitMismatch,
  namespaced,
  validateKey,
  validateSetOptions,
  validateTtl
} from "../keys.js"
import { makeCall } from "./call.js"
import { acquireConnections, connect } from "./connection.js"
import { unexpected } from "./errors.js"
import { clientOptions, resolveOptions } from "./options.js"
import { makeReleaseChannel, tellInProcess } from "./releaseChannel.js"
import * as scripts from "./scripts.js"

const invalidValue = (argument: string) => new InvalidArgument({ argument, message: `${argument} must be a string` })

const asIs = <A>(reply: A): Effect.Effect<A> => Effect.succeed(reply)

const releaseReply = scripts.releaseReply(tellInProcess)
const permitsReleaseReply = scripts.permitsReleaseReply(tellInProcess)
const toPermitsResult = scripts.toPermitsResult(tellInProcess)

/** @internal */
export const make = (
  options: LockKv.LockKv.RedisOptions
): Effect.Effect<LockKv.LockKv.Service, LockKvError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options)
    const { namespace } = resolved
    const { main, subscriber } = yield* acquireConnections(
      resolved,
      (retryStrategy) => new Redis(clientOptions(resolved, retryStrategy))
    )
    const channel = yield* makeReleaseChannel(namespace, subscriber.client)
    yield* connect(main, subscriber, channel.name, resolved)
    yield* Effect.logDebug(`effect-lock: connected to Redis at ${resolved.where}, database ${resolved.db}`)

    const client = main.client
    const script = scripts.makeScripts(client)
    const call = yield* makeCall(main, resolved.secrets)

    /** The KEYS of the lock scripts for `key`, or why `key` is invalid. */
    const lockKeys = (key: string): scripts.LockKeys | InvalidArgument =>
      checkKey(key) ?? scripts.lockKeys(namespaced(namespace, key))
    /** The KEYS of the semaphore scripts for `key`, or why `key` is invalid. */
    const permitKeys = (key: string): scripts.PermitKeys | InvalidArgument =>
      checkKey(key) ?? scripts.permitKeys(namespaced(namespace, key))
    const full = (key: string) => Effect.map(validateKey(key), (k) => namespaced(namespace, k))
    const str = (value: unknown, argument: string) =>
      typeof value === "string" ? Effect.succeed(value) : Effect.fail(invalidValue(argument))
    const lifetime = yield* Effect.scope
    return {
      backend: "redis",
      lifetime,
      namespace,
      get: (key) =>
        Effect.flatMap(
          full(key),
          (k) =>
            call("get", () => client.get(k), (reply) => Effect.succeed(Option.fromNullable(reply as string | null)))
        ),
      set: (key, value, setOptions) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const v = yield* str(value, "value")
          const normalized = yield* validateSetOptions(setOptions)
          const args: Array<string | number> = [k, v]
          if (normalized.ttlMillis !== undefined) args.push("PX", normalized.ttlMillis)
          if (normalized.condition !== undefined) args.push(normalized.condition)
          return yield* call("set", () => client.call("SET", ...args), (reply) => Effect.succeed(reply === "OK"))
        }),
      del: (key) =>
        Effect.flatMap(full(key), (k) => call("del", () => client.del(k), (n) => Effect.succeed((n as number) > 0))),
      compareAndDelete: (key, expected) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const e = yield* str(expected, "expected")
          return yield* call("compareAndDelete", (reload) => script.compareAndDelete(reload, k, e), scripts.isOne)
        }),
      compareAndExpire: (key, expected, ttl) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const e = yield* str(expected, "expected")
          const millis = String(Duration.toMillis(yield* validateTtl(ttl)))
          return yield* call(
            "compareAndExpire",
            (reload) => script.compareAndExpire(reload, k, e, millis),
            scripts.isOne
          )
        }),
      pttl: (key) =>
        Effect.flatMap(
          full(key),
          (k) => call("pttl", () => client.pttl(k), (reply) => Effect.succeed(scripts.toRemaining(reply as number)))
        ),
      // The hot path of every lock cycle: synchronous checks (pure, so done when
      // the Effect is built), then one command, whose reply is read in its callback.
      acquire: (key, token, ttl, queue) => {
        const keys = lockKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        const millis = checkTtlMillis(ttl)
        if (millis instanceof InvalidArgument) return Effect.fail(millis)
        let place = 0
        if (queue !== undefined) {
          const placeMillis = checkTtlMillis(queue, "queue")
          if (placeMillis instanceof InvalidArgument) return Effect.fail(placeMillis)
          place = placeMillis
        }
        const ttlArg = String(millis)
        const placeArg = String(place)
        return call(
          "acquire",
          (reload) => script.acquire(reload, keys, token, ttlArg, placeArg, channel.name),
          scripts.toAcquireResult
        )
      },
      release: (key, token) => {
        const keys = lockKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        return call("release", (reload) => script.release(reload, keys, token, key), releaseReply)
      },
      fence: (key) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const reply = yield* call("fence", () => client.get(companionKey(k, "fence")), asIs)
          if (reply === null) return Option.none()
          const fence = Number(reply)
          if (!Number.isSafeInteger(fence)) return yield* unexpected("fence", reply)
          return Option.some(fence)
        }),
      watchReleases: channel.hub.watch,
      notificationMark: channel.hub.mark,
      acquirePermits: (key, token, permits, limit, ttl, queue) => {
        const keys = permitKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        const invalid = checkToken(token) ?? checkPermits(permits, limit)
        if (invalid !== undefined) return Effect.fail(invalid)
        const millis = checkTtlMillis(ttl)
        if (millis instanceof InvalidArgument) return Effect.fail(millis)
        const place = queue === undefined ? 0 : checkTtlMillis(queue, "queue")
        if (place instanceof InvalidArgument) return Effect.fail(place)
        const argv = [token, String(permits), String(limit), String(millis), String(place), channel.name, key]
        return Effect.flatMap(
          call("acquirePermits", (reload) => script.permits(reload, "acquire", keys, argv), toPermitsResult),
          (result) =>
            result._tag === "Mismatch" ? Effect.fail(limitMismatch(key, result.limit, limit)) : Effect.succeed(result)
        )
      },
      releasePermits: (key, token) => {
        const keys = permitKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        return call(
          "releasePermits",
          (reload) => script.permits(reload, "release", keys, [token, key]),
          permitsReleaseReply
        )
      },
      extendPermits: (key, token, ttl) => {
        const keys = permitKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        const invalid = checkToken(token)
        if (invalid !== undefined) return Effect.fail(invalid)
        const millis = checkTtlMillis(ttl)
        if (millis instanceof InvalidArgument) return Effect.fail(millis)
        return call(
          "extendPermits",
          (reload) => script.permits(reload, "extend", keys, [token, String(millis)]),
          scripts.isOne
        )
      },
      permitsInUse: (key) => {
        const keys = permitKeys(key)
        if (keys instanceof InvalidArgument) return Effect.fail(keys)
        return call(
          "permitsInUse",
          (reload) => script.permits(reload, "inUse", keys, []),
          (reply) => typeof reply === "number" ? Effect.succeed(reply) : unexpected("permitsInUse", reply)
        )
      }
    }
  })
