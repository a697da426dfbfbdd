/**
 * The Redis backend of `LockKv`: one ioredis client for commands and one
 * for the release channel, both held for the store's lifetime; clients of one
 * server (standalone, or the primary Sentinel names) or of a Redis Cluster
 * (`cluster.ts`, `shardedChannel.ts`). WAIT after a write: `wait.ts`.
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
import { type Call, makeCall, watchStalls } from "./call.js"
import { acquireCluster, type ClusterWiring } from "./cluster.js"
import { acquireConnections, type Client, connect } from "./connection.js"
import { unexpected } from "./errors.js"
import { clientOptions, type ResolvedOptions, resolveOptions } from "./options.js"
import { makeReleaseChannel, type ReleaseChannel, type Routing, tellInProcess } from "./releaseChannel.js"
import * as scripts from "./scripts.js"
import { probeSharded, shardedRouting } from "./shardedChannel.js"
import { acquiredWithReplicas, checkReplication, expiredWithReplicas, withWait } from "./wait.js"

const invalidValue = (argument: string) => new InvalidArgument({ argument, message: `${argument} must be a string` })

const asIs = <A>(reply: A): Effect.Effect<A> => Effect.succeed(reply)

const releaseReply = scripts.releaseReply(tellInProcess)
const permitsReleaseReply = scripts.permitsReleaseReply(tellInProcess)
const toPermitsResult = scripts.toPermitsResult(tellInProcess)

/** What the store sends through, on one server or a cluster. */
interface Wiring {
  readonly client: Client
  readonly script: scripts.Scripts
  readonly call: Call
  readonly channel: ReleaseChannel
  /** The connection to `lock`'s master and the scripts sent on it. */
  readonly masterOf: (lock: string) => { readonly node: scripts.ScriptClient; readonly scripts: scripts.Scripts }
  /** A cluster's: where a MOVED or ASK met on a master's connection points. */
  readonly redirect: ClusterWiring["redirect"] | undefined
  /** Per-key channels (sharded pub/sub on a cluster); none: the store's channel for every key. */
  readonly routing: Routing | undefined
}

/**
 * Connects: one server (standalone, or the primary Sentinel names), or a
 * cluster (cluster.ts); two connections each, one for commands and one for
 * the release channel, held in the Scope.
 */
const connectTo = (resolved: ResolvedOptions): Effect.Effect<Wiring, LockKvError, Scope.Scope> =>
  Effect.gen(function*() {
    const { topology } = resolved
    if (topology._tag === "Cluster") {
      const cluster = yield* acquireCluster(resolved, topology.nodes)
      const channel = yield* makeReleaseChannel(resolved.namespace, cluster.subscriber.client)
      yield* connect(cluster.main, cluster.subscriber, channel.name, resolved)
      const sharded = yield* probeSharded(cluster.subscriber.client, channel)
      return {
        routing: sharded ? yield* shardedRouting(cluster.subscriber.client, channel) : undefined,
        client: cluster.main.client,
        script: scripts.makeScripts(cluster.main.client),
        call: yield* makeCall(cluster.main, resolved.secrets, cluster.watch),
        channel,
        masterOf: cluster.masterOf,
        redirect: cluster.redirect
      }
    }
    const { main, subscriber } = yield* acquireConnections(
      resolved,
      (retryStrategy) => new Redis(clientOptions(resolved, retryStrategy))
    )
    const channel = yield* makeReleaseChannel(resolved.namespace, subscriber.client)
    yield* connect(main, subscriber, channel.name, resolved)
    const script = scripts.makeScripts(main.client)
    const master = { node: main.client, scripts: script }
    return {
      client: main.client,
      script,
      call: yield* makeCall(main, resolved.secrets, watchStalls(main.client)),
      channel,
      masterOf: () => master,
      redirect: undefined,
      routing: undefined
    }
  })

/** @internal */
export const make = (
  options: LockKv.LockKv.RedisOptions
): Effect.Effect<LockKv.LockKv.Service, LockKvError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options)
    const { namespace } = resolved
    const { call, channel, client, masterOf, redirect, routing, script } = yield* connectTo(resolved)
    yield* Effect.logDebug(`effect-lock: connected to Redis at ${resolved.where}, database ${resolved.db}`)

    /**
     * The write `send` makes, on the connection to the key's master, then WAIT
     * there (`withWait`). On a cluster that connection is used directly, so a
     * MOVED or ASK (the slot is moving) is followed here, once: the pair is
     * sent again to the node it names (after ASKING for an ASK). The write did
     * not run where it was refused.
     */
    const replicated = (
      lock: string,
      replication: { readonly replicas: number; readonly timeoutMillis: number },
      send: (scripts: scripts.Scripts) => Promise<unknown>
    ): Promise<unknown> => {
      const master = masterOf(lock)
      const sent = withWait(master.node, send(master.scripts), replication)
      if (redirect === undefined) return sent
      return sent.catch((error: unknown) => {
        const target = redirect(error)
        if (target === undefined) throw error
        if (target.asking) target.node.asking().catch(() => {})
        return withWait(target.node, send(target.scripts), replication)
      })
    }

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
      compareAndExpire: (key, expected, ttl, replication) =>
        Effect.gen(function*() {
          const k = yield* full(key)
          const e = yield* str(expected, "expected")
          const millis = String(Duration.toMillis(yield* validateTtl(ttl)))
          if (replication === undefined) {
            return yield* call(
              "compareAndExpire",
              (reload) => script.compareAndExpire(reload, k, e, millis),
              scripts.isOne
            )
          }
          const asked = checkReplication(replication)
          if (asked instanceof InvalidArgument) return yield* asked
          return yield* call(
            "compareAndExpire",
            (reload) => replicated(k, asked, (on) => on.compareAndExpire(reload, k, e, millis)),
            expiredWithReplicas(asked.replicas, asked.timeoutMillis)
          )
        }),
      pttl: (key) =>
        Effect.flatMap(
          full(key),
          (k) => call("pttl", () => client.pttl(k), (reply) => Effect.succeed(scripts.toRemaining(reply as number)))
        ),
      // The hot path of every lock cycle: synchronous checks (pure, so done when
      // the Effect is built), then one command, whose reply is read in its callback.
      acquire: (key, token, ttl, queue, replication) => {
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
        const waiterChannel = routing === undefined ? channel.name : routing.channelFor(keys[0])
        if (replication === undefined) {
          return call(
            "acquire",
            (reload) => script.acquire(reload, keys, token, ttlArg, placeArg, waiterChannel),
            scripts.toAcquireResult
          )
        }
        const asked = checkReplication(replication)
        if (asked instanceof InvalidArgument) return Effect.fail(asked)
        return call(
          "acquire",
          (reload) =>
            replicated(keys[0], asked, (on) => on.acquire(reload, keys, token, ttlArg, placeArg, waiterChannel)),
          acquiredWithReplicas(scripts.toAcquireResult)
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
      watchReleases: routing === undefined ?
        channel.hub.watch :
        (key, token, mark) =>
          Effect.map(channel.hub.watch(key, token, mark), (watcher) => {
            const stop = routing.listen(namespaced(namespace, key))
            return {
              next: watcher.next,
              onNext: watcher.onNext,
              close: () => {
                stop()
                watcher.close()
              }
            }
          }),
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
        // The waiter's channel as a lock's of the same name (per key and sharded on a cluster): watchReleases hears it.
        const waiterChannel = routing === undefined ? channel.name : routing.channelFor(namespaced(namespace, key))
        const argv = [token, String(permits), String(limit), String(millis), String(place), waiterChannel, key]
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
